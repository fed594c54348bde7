#pragma once
// Synchronous Redis client over hiredis 0.14 (RESP2), the one place that talks to Redis.
//
// Threading: a RedisClient is NOT thread-safe; give each thread its own (RedisPool hands them out).
// A client parked in XREADGROUP ... BLOCK answers nothing else until the block ends, so processes keep a
// separate client for blocking reads and one for writes/acks.
//
// Errors, translated in one place (TranslateRedisError):
//   connection refused / reset / EOF -> kUnavailable (retry; the client reconnects with jittered backoff)
//   socket timeout                   -> kDeadlineExceeded
//   LOADING, READONLY, OOM, BUSY, TRYAGAIN, MASTERDOWN, CLUSTERDOWN, and MOVED/ASK left after the cluster
//   client's bounded redirects -> kUnavailable (retry with backoff)
//   NOGROUP -> kFailedPrecondition, BUSYGROUP -> kAlreadyExists, NOSCRIPT -> kNotFound
//   NOAUTH, WRONGPASS -> kUnauthenticated, NOPERM (ACL) -> kPermissionDenied
//   script errors "SFINVALID ..." -> kInvalidArgument, "SFLIMIT ..." -> kResourceExhausted,
//   "SFCONFLICT ..." -> kFailedPrecondition; anything else -> kInternal.
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "streamfleet/base/backoff.h"
#include "streamfleet/base/config.h"
#include "streamfleet/base/status.h"


namespace streamfleet {

class ClusterRouter;
class SentinelWatcher;
class RedisTransport;
struct DetachedSocket;

// An owned copy of a reply (hiredis replies die with their callback/free).
struct RedisValue {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisValue> elements;

  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
  bool is_array() const { return type == Type::kArray; }
  // Integer value, also parsing a bulk string holding digits; 0 otherwise.
  long long AsInt() const;
};

// Maps a Redis error reply ("NOGROUP No such key ...") to a Status.
Status TranslateRedisError(const std::string& error_reply);

// Whether a connection authenticates first: with a password, or with a user name alone (an ACL user of
// `nopass`, whose AUTH takes any password). Without this a user name with no password ran as `default`.
inline bool NeedsAuth(const RedisConfig& config) { return !config.password.empty() || !config.username.empty(); }
// AUTH [username] password, for a connection's first command.
std::vector<std::string> AuthCommand(const RedisConfig& config);

// What AwaitSent returns, once, when a connection closed before the replies of Sends on it were read: their
// fate is unknown (kDataLoss: not retryable, and no outage of its own; the failed read was one).
Status RepliesLost();

// A Lua script identified by its SHA1, run with EVALSHA and loaded on NOSCRIPT.
class LuaScript {
 public:
  explicit LuaScript(std::string source);
  const std::string& source() const { return source_; }
  const std::string& sha() const { return sha_; }

 private:
  std::string source_;
  std::string sha_;
};

// What request-path code needs from Redis, whichever client serves it: a RedisClient owned by the calling
// thread, or the shared AsyncRedis event loop (async_redis.h) that pipelines many threads' commands on one
// connection. Error replies become Statuses through TranslateRedisError in both.
class RedisCommands {
 public:
  virtual ~RedisCommands() = default;
  virtual StatusOr<RedisValue> Command(const std::vector<std::string>& argv, int extra_timeout_ms = 0) = 0;
  // All commands in one round trip, replies in order. Fails only on connection errors; per-command error
  // replies come back as RedisValue{kError} in their slot.
  virtual StatusOr<std::vector<RedisValue>> Pipeline(const std::vector<std::vector<std::string>>& commands,
                                                     int extra_timeout_ms = 0) = 0;
  // EVALSHA with NOSCRIPT fallback.
  virtual StatusOr<RedisValue> Eval(const LuaScript& script, const std::vector<std::string>& keys,
                                    const std::vector<std::string>& args) = 0;
  // Makes a script known before its EVALSHA is sent inside a Pipeline, so a NOSCRIPT reply there (a
  // restarted or failed-over server) is repaired by loading it. RedisClient does; the default does nothing,
  // for implementations whose pipelines do not repair NOSCRIPT (callers then use Eval).
  virtual void Register(const LuaScript& /*script*/) {}

  // Writes the commands to the server and returns without waiting for their replies: for effects the
  // caller does not act on (a task's ack and status record), so they cost no round trip of their own.
  // The replies are read before those of the next call on the same connection, or by AwaitSent; an error
  // reply among them is logged and counted (DeferredErrors), never returned. Not OK when they could not all
  // be written (a connection error): those not written did nothing. Meant for idempotent commands (XACK,
  // HSET, EXPIRE), so a caller may send them all again.
  // This default waits (a Pipeline) and drops the replies, for implementations without deferred replies.
  virtual Status Send(const std::vector<std::vector<std::string>>& commands) {
    return commands.empty() ? Status::Ok() : Pipeline(commands).status();
  }
  // Reads the replies of every earlier Send: when it returns OK the server has applied them all. Not OK (once)
  // when a connection closed before their replies were read: they may or may not have been applied.
  virtual Status AwaitSent() { return Status::Ok(); }
};

// Redis Cluster (config.cluster): the same calls, routed. Each command goes to the master of its first key's
// slot (keyless commands to one fixed master); a pipeline becomes one pipeline per master with the replies
// put back in order; MOVED / ASK / TRYAGAIN are followed (kMaxRedirects); after a connection error the slot
// map is reloaded from any reachable node on the next call, so a failover is followed once the cluster has
// promoted a replica (meanwhile calls fail with kUnavailable). docs/redis-cluster.md.
class RedisClient final : public RedisCommands {
 public:
  // Connects (and AUTH/SELECT). kUnavailable if the server cannot be reached.
  static StatusOr<std::unique_ptr<RedisClient>> Connect(const RedisConfig& config);
  // A client that connects on first use (and reconnects after errors, with jittered backoff): for
  // long-running processes that must stay up while Redis is down.
  static std::unique_ptr<RedisClient> Lazy(const RedisConfig& config);
  ~RedisClient() override;
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command; an error reply becomes a non-OK Status. extra_timeout_ms extends the socket timeout
  // for this call (blocking reads pass their BLOCK time).
  StatusOr<RedisValue> Command(const std::vector<std::string>& argv, int extra_timeout_ms = 0) override;

  // Sends all commands in one round trip. The call fails only on connection errors; per-command error
  // replies come back as RedisValue{kError} in their slot. EVALSHA commands answered NOSCRIPT are loaded
  // and re-run, in order.
  StatusOr<std::vector<RedisValue>> Pipeline(const std::vector<std::vector<std::string>>& commands,
                                             int extra_timeout_ms = 0) override;

  // EVALSHA with NOSCRIPT fallback; an error reply becomes a non-OK Status.
  StatusOr<RedisValue> Eval(const LuaScript& script, const std::vector<std::string>& keys,
                            const std::vector<std::string>& args) override;
  // The argv of an EVALSHA, for pipelines.
  static std::vector<std::string> EvalArgv(const LuaScript& script, const std::vector<std::string>& keys,
                                           const std::vector<std::string>& args);
  // Registers a script so NOSCRIPT replies in pipelines can be repaired.
  void Register(const LuaScript& script) override;

  // RedisCommands::Send without the wait: the commands are written to the socket now (cluster mode: to
  // each one's master), their replies stay unread until the next call. No NOSCRIPT repair (plain commands
  // only). A crash after Send returns loses at most what the kernel had not yet delivered.
  // With RedisConfig::quiet_sends (and a server that accepts CLIENT REPLY) the server sends no replies to
  // them at all: an error among them is then neither logged nor counted, and AwaitSent reads the one reply
  // of the CLIENT REPLY ON that ends the quiet run, which the server sends only after applying them.
  // Cluster mode never sends quietly: a command a reply redirects (MOVED, ASK) is sent again where it points.
  Status Send(const std::vector<std::vector<std::string>>& commands) override;
  Status AwaitSent() override;
  // Error replies to Send()s read so far, on this client (cluster mode: summed over its node clients).
  int64_t DeferredErrors() const;

  // Cluster mode: a slot map is loaded and no connection error happened since.
  bool connected() const;
  // The server's last word on this client's connection refused it after the connect succeeded: it is at
  // maxclients (it accepted the connection, said so and closed it), or it answered READONLY (a replica now:
  // the name may still point at the old primary for a while). A reconnect would succeed and be refused the
  // same way, so this client and a pool back off as after a failed connect, until a call works.
  bool RefusedAfterConnect() const { return refused_after_connect_; }
  const RedisConfig& config() const { return config_; }

  // host:port of every master, for commands that must run on each (SCAN, INFO, DBSIZE, FLUSHALL); in
  // standard mode the one server. Empty when the cluster cannot be reached.
  std::vector<std::string> Masters();
  // Runs a command on one node ("host:port", e.g. from Masters()), not routed; an error reply becomes a
  // non-OK Status. In standard mode `node` must be the server's own host:port.
  StatusOr<RedisValue> CommandOn(const std::string& node, const std::vector<std::string>& argv,
                                 int extra_timeout_ms = 0);

  // For AsyncRedis over TLS or behind Sentinel: a new connection opened exactly as for a command (TLS
  // handshake and verification, the sentinels' master, AUTH, SELECT, a replica refused), then handed over
  // (the caller owns the socket; this client is left unconnected). Not in cluster mode.
  StatusOr<DetachedSocket> OpenForHandOver();
  // Behind Sentinel, after OpenForHandOver: true when the sentinels announced a master other than the one
  // handed over (the holder must leave it); the client then refuses that old master for a grace period.
  bool HandedOverMasterReplaced();

 private:
  explicit RedisClient(const RedisConfig& config);
  Status EnsureConnected();
  Status Open();
  // One connect attempt. Behind Sentinel, the first sentinel answer not in `refused`; *not_master is set (with
  // *named) when that server answered ROLE as a replica.
  Status OpenOnce(const std::set<std::string>& refused, std::string* named, bool* not_master);
  void Drop();
  // A transport error: the connection is dropped (the next call reconnects) and the error returned.
  Status Broken(Status s);
  // Behind Sentinel, the server answered as a replica (READONLY, or ROLE after quiet sends): the connection is
  // dropped, the sends since the last AwaitSent count as lost, and kUnavailable returned.
  Status Demoted();
  StatusOr<std::vector<RedisValue>> RawPipeline(const std::vector<std::vector<std::string>>& commands,
                                                int extra_timeout_ms);
  // Reads the replies owed to earlier Send()s (they come before any later command's).
  Status ReadDeferred();

  RedisConfig config_;
  std::unique_ptr<RedisTransport> conn_;  // plain TCP or TLS (src/redis_transport.h); null: not connected
  size_t unread_ = 0;                      // replies of Send()s not read yet on conn_
  bool replies_lost_ = false;              // a connection dropped with unread_ or quiet Sends: AwaitSent fails once
  // A cluster node's client (ClusterRouter): the commands of Send()s whose replies are not read yet, and
  // those a reply redirected elsewhere (MOVED, ASK, TRYAGAIN) with that reply, for the router to send again.
  // Such a client never sends quietly: the redirection is in the reply.
  bool track_sent_ = false;
  std::deque<std::vector<std::string>> sent_;
  std::vector<std::pair<std::vector<std::string>, std::string>> redirected_;
  friend class ClusterRouter;
  bool quiet_ok_ = false;     // quiet_sends and this connection's server accepted CLIENT REPLY (Open)
  bool replies_off_ = false;  // conn_ is in CLIENT REPLY OFF: the next read must turn replies on first
  int64_t deferred_errors_ = 0;
  bool quiet_refusal_logged_ = false;  // a server refused CLIENT REPLY: said once per client, not per connect
  std::vector<const LuaScript*> scripts_;
  // Reconnect backoff: after a failed connect, calls fail fast until next_attempt_.
  std::chrono::steady_clock::time_point next_attempt_{};
  JitteredBackoff backoff_;
  bool refused_after_connect_ = false;  // RefusedAfterConnect: the backoff is not reset by the next connect
  Status RefusedFull(const std::string& error_reply);  // maxclients: drops the connection, backs off, kUnavailable
  void BackOffAfterRefusal();  // RefusedAfterConnect: the next connect waits out the backoff
  std::unique_ptr<ClusterRouter> cluster_;  // set in cluster mode: every call is delegated to it
  // Behind Sentinel: the process's +switch-master watcher (src/sentinel_watcher.h) and its count of failovers
  // when this client connected; a count that moved on means reconnect (to the new master) before the next call.
  std::shared_ptr<SentinelWatcher> sentinel_watch_;
  uint64_t sentinel_epoch_ = 0;
  std::string sentinel_master_;  // host:port this client is connected to behind Sentinel
  // The master it left on an announcement, and when: a sentinel that has not heard of the switch yet may still
  // name it for a moment, and connecting back to it would keep this client there (see Open).
  std::string sentinel_left_;
  std::chrono::steady_clock::time_point sentinel_left_at_{};
};

// A small pool of clients for request-handling threads. Thread-safe.
class RedisPool {
 public:
  explicit RedisPool(RedisConfig config) : config_(std::move(config)) {}

  class Lease {
   public:
    Lease(RedisPool* pool, std::unique_ptr<RedisClient> c) : pool_(pool), client_(std::move(c)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (client_) pool_->Release(std::move(client_));
    }
    RedisClient* operator->() { return client_.get(); }
    RedisClient& operator*() { return *client_; }

   private:
    RedisPool* pool_;
    std::unique_ptr<RedisClient> client_;
  };

  // A connected client, or kUnavailable. After a failed connect, or a client given back refused at the
  // server's maxclients, later calls fail at once with that error until a jittered backoff (50 ms doubling
  // to 2 s, reset when a working client is given back) has passed: a Redis whose address drops packets cost
  // every request the whole connect timeout before, and a full one took a new connection per request.
  StatusOr<Lease> Acquire();

 private:
  void Release(std::unique_ptr<RedisClient> c);

  RedisConfig config_;
  std::mutex mu_;
  std::vector<std::unique_ptr<RedisClient>> idle_;
  std::chrono::steady_clock::time_point next_connect_{};  // guarded by mu_
  JitteredBackoff connect_backoff_{50, 2000};
  Status connect_error_;
};

// Small helpers for reading stream replies.
struct StreamEntry {
  std::string stream;
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
  const std::string* Field(const std::string& name) const;
};
// Parses an XREADGROUP/XREAD reply ([[stream, [[id, [f, v, ...]], ...]], ...]) into entries.
std::vector<StreamEntry> ParseStreamReply(const RedisValue& reply);
// Parses an array of [id, [f, v, ...]] entries (XRANGE, XAUTOCLAIM's second element).
std::vector<StreamEntry> ParseEntries(const std::string& stream, const RedisValue& entries);
// Parses one [id, [f, v, ...]] entry (an empty id when it is not one).
StreamEntry ParseEntry(const std::string& stream, const RedisValue& entry);
// Parses a flat [k, v, k, v] array (HGETALL, XINFO) into pairs with string values.
std::vector<std::pair<std::string, RedisValue>> ParsePairs(const RedisValue& v);

}  // namespace streamfleet
