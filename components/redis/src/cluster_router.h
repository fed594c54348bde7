#pragma once
// Internal to common: the Redis Cluster side of RedisClient (which delegates to it when config.cluster).
//
// One standard-mode RedisClient per node, so connecting, AUTH, timeouts, reconnect backoff and NOSCRIPT
// repair are the single-node client's, unchanged; this class only decides where each command goes and
// follows the cluster's redirections. Not thread-safe, like RedisClient.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamfleet/redis/cluster_slots.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

// A cluster's redirection (MOVED, ASK, TRYAGAIN) rather than the command's own error.
bool IsRedirection(const std::string& error_reply);

class ClusterRouter {
 public:
  // Redirections (MOVED/ASK/TRYAGAIN) followed per command before its error reply is handed back.
  static constexpr int kMaxRedirects = 5;

  explicit ClusterRouter(RedisConfig config);

  // Loads the slot map (CLUSTER SLOTS) from the first reachable node: known masters first, then the seeds.
  // kUnavailable when none answers.
  Status Refresh();

  // Same contract as RedisClient::Pipeline: commands grouped into one pipeline per master, replies in the
  // caller's order; fails only on connection errors (then the map is reloaded on the next call).
  StatusOr<std::vector<RedisValue>> Pipeline(const std::vector<std::vector<std::string>>& commands,
                                             int extra_timeout_ms);
  void Register(const LuaScript& script);
  // RedisClient::Send / AwaitSent: each command written to its slot's master, replies read later by that
  // node's client. A sent command answered with a redirection (a reshard or migration since the map was
  // loaded) did nothing there: it is sent again where the reply points, with the next Send or within
  // AwaitSent, which follows up to kMaxRedirects of them and counts a command still redirected then as a
  // deferred error. Node clients never send quietly (RedisConfig::quiet_sends), or the redirection would
  // not be seen: the worker's finished tasks would stay pending and run again after a reshard.
  Status Send(const std::vector<std::vector<std::string>>& commands);
  Status AwaitSent();
  int64_t DeferredErrors() const;
  StatusOr<std::vector<std::string>> Masters();
  StatusOr<RedisValue> CommandOn(const std::string& node, const std::vector<std::string>& argv,
                                 int extra_timeout_ms);
  // A slot map is loaded and no connection error since (a MOVED does not count: it is routine).
  bool ready() const { return !broken_ && !map_.empty(); }

 private:
  struct Routed {
    size_t index;      // in the caller's command list
    std::string node;  // where to send it
    bool asking;       // prefix with ASKING (an ASK redirection)
  };

  // Where a command `asked` answered with `error` goes next; nullopt when that is not a redirection. A MOVED
  // fixes the slot in the map (stale_: the whole map is reloaded on the next call).
  struct Hop {
    std::string node;
    bool asking;     // prefix with ASKING (ASK)
    bool try_again;  // TRYAGAIN: the same node, after a pause
  };
  std::optional<Hop> Follow(const std::string& error, const std::string& asked);

  Status EnsureMap();
  RedisClient& Node(const std::string& name);
  // The node for a fresh command: its key's slot owner, or the first master for a keyless command.
  std::optional<std::string> Route(const std::vector<std::string>& argv);
  // Sends `batch` (one pipeline per node) and fills `out`; returns the commands to send again.
  StatusOr<std::vector<Routed>> SendOnce(const std::vector<std::vector<std::string>>& commands,
                                         const std::vector<Routed>& batch, int extra_timeout_ms,
                                         std::vector<RedisValue>* out, bool* try_again);

  // The sent commands the nodes' replies redirected so far, sent again where they point (Send's contract).
  // Returns how many were sent again.
  StatusOr<size_t> ResendRedirected();
  bool HasRedirected() const;
  // Before a command is routed: once the slot map changed, every node's unread replies are read, and what
  // they redirected is sent again first, so a resent command (a task's "running" record) never lands after
  // a newer one on the same key ("succeeded") sent with the new map.
  void Settle();
  // A node client with more unread replies than this is read at once (Send): a node only written to would
  // otherwise keep every sent command here and every reply in Redis' output buffer.
  static constexpr size_t kMaxUnreadPerNode = 256;

  RedisConfig config_;  // the cluster's; node clients get a standard-mode copy
  // Replies of Sends lost with a node's connection (RedisClient::AwaitSent's flag), met by the router's own
  // reads (Settle, a full node's unread replies, a node dropped from the map): AwaitSent says so, once.
  bool replies_lost_ = false;
  void Note(const Status& s);
  Status AwaitNodes();  // AwaitSent's rounds: every node's replies and the redirections they owe
  int64_t redirect_errors_ = 0;  // sent commands still redirected after kMaxRedirects rounds, and the
                                 // deferred errors of node clients Refresh dropped
  uint64_t map_epoch_ = 0;       // changes whenever the slot map does
  uint64_t settled_epoch_ = 0;   // the map Settle last read every node's replies for
  struct Redirected {
    std::vector<std::string> command;
    std::string error;  // the reply: MOVED / ASK / TRYAGAIN
    std::string asked;  // the node that answered it
  };
  std::vector<Redirected> orphaned_;  // read from node clients Refresh dropped since
  SlotMap map_;
  bool stale_ = true;    // reload the map before the next call
  bool broken_ = false;  // a connection error since the last successful reload
  std::map<std::string, std::unique_ptr<RedisClient>> nodes_;
  std::vector<const LuaScript*> scripts_;
};

}  // namespace streamfleet
