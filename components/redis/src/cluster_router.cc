#include "cluster_router.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <thread>
#include <utility>

#include "command_key.h"
#include "streamfleet/base/log.h"

namespace streamfleet {

namespace {

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 :6381" -> slot and node; an empty host means "the host you asked".
bool ParseRedirect(const std::string& error, const std::string& asked_node, int* slot, std::string* node) {
  auto sp1 = error.find(' ');
  auto sp2 = sp1 == std::string::npos ? std::string::npos : error.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) return false;
  try {
    *slot = std::stoi(error.substr(sp1 + 1, sp2 - sp1 - 1));
  } catch (...) {
    return false;
  }
  std::string target = error.substr(sp2 + 1);
  auto hp = SplitHostPort(target);
  if (!hp) return false;
  if (hp->first.empty()) {
    auto asked = SplitHostPort(asked_node);
    if (!asked) return false;
    target = asked->first + ":" + std::to_string(hp->second);
  }
  *node = target;
  return true;
}

}  // namespace

ClusterRouter::ClusterRouter(RedisConfig config) : config_(std::move(config)) {}

RedisClient& ClusterRouter::Node(const std::string& name) {
  auto it = nodes_.find(name);
  if (it != nodes_.end()) return *it->second;
  RedisConfig c = config_;
  c.cluster = false;
  c.seeds = {name};
  c.db = 0;
  if (auto hp = SplitHostPort(name)) {
    c.host = hp->first;
    c.port = hp->second;
  }
  c.quiet_sends = false;  // see Send: a redirection must be read to be followed
  auto client = RedisClient::Lazy(c);
  client->track_sent_ = true;
  for (const LuaScript* s : scripts_) client->Register(*s);
  return *nodes_.emplace(name, std::move(client)).first->second;
}

Status ClusterRouter::Refresh() {
  std::vector<std::string> candidates = map_.Masters();
  for (const auto& s : config_.seeds) candidates.push_back(s);
  for (const auto& [name, client] : nodes_) candidates.push_back(name);
  std::set<std::string> tried;
  Status last = Status::Unavailable("redis cluster: no seed nodes configured");
  for (const auto& name : candidates) {
    if (!tried.insert(name).second) continue;
    auto r = Node(name).Command({"CLUSTER", "SLOTS"});
    if (!r.ok()) {
      last = r.status();
      continue;
    }
    auto hp = SplitHostPort(name);
    auto ranges = ParseClusterSlots(*r, hp ? hp->first : "");
    if (!ranges.ok() || ranges->empty()) {
      last = Status::Unavailable("redis cluster: " + name + " has no usable slot map");
      continue;
    }
    map_.Assign(*ranges);
    ++map_epoch_;
    stale_ = false;
    broken_ = false;
    // Drop connections to nodes that no longer serve slots (old masters, replicas used as seeds).
    std::vector<std::string> masters = map_.Masters();
    std::set<std::string> keep(masters.begin(), masters.end());
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      if (keep.count(it->first)) {
        ++it;
        continue;
      }
      // What was sent to it and not answered yet is read first (a node that lost its slots answers MOVED),
      // and the redirections are still owed a resend (ResendRedirected).
      if (it->second->unread_ > 0) Note(it->second->AwaitSent());
      if (it->second->replies_lost_) replies_lost_ = true;  // the node goes: its flag is the router's now
      redirect_errors_ += it->second->DeferredErrors();
      for (auto& [cmd, error] : it->second->redirected_) {
        orphaned_.push_back({std::move(cmd), std::move(error), it->first});
      }
      it = nodes_.erase(it);
    }
    return Status::Ok();
  }
  stale_ = true;
  broken_ = true;
  // Callers retry kUnavailable with backoff; whatever the last node said, the cluster is unreachable.
  return Status::Unavailable("redis cluster: no node answered CLUSTER SLOTS (last: " + last.message() + ")");
}

Status ClusterRouter::EnsureMap() {
  if (!stale_ && !map_.empty()) return Status::Ok();
  return Refresh();
}

void ClusterRouter::Register(const LuaScript& script) {
  if (std::find(scripts_.begin(), scripts_.end(), &script) != scripts_.end()) return;
  scripts_.push_back(&script);
  for (auto& [name, client] : nodes_) client->Register(script);
}

std::optional<std::string> ClusterRouter::Route(const std::vector<std::string>& argv) {
  auto key = CommandKey(argv);
  if (key) return map_.NodeOf(KeySlot(*key));
  // Keyless: always the same master (the first in sorted order), so e.g. SCRIPT LOAD then EVALSHA of a
  // keyless script meet on one node.
  auto masters = map_.Masters();
  if (masters.empty()) return std::nullopt;
  return masters.front();
}

namespace {

// WAIT has no key: it counts the replicas holding this connection's writes, so in a pipeline it belongs on the
// node the command before it wrote to (ingest's append then WAIT, INGEST_WAIT_REPLICAS). Routed like other
// keyless commands it went to the first master, whose connection had written none of them: it answered at
// once, and the chunks of every other shard were acknowledged with no replica holding them.
bool IsWait(const std::vector<std::string>& argv) {
  return !argv.empty() && argv[0].size() == 4 &&
         std::equal(argv[0].begin(), argv[0].end(), "WAIT",
                    [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; });
}

}  // namespace

bool IsRedirection(const std::string& error_reply) {
  return StartsWith(error_reply, "MOVED ") || StartsWith(error_reply, "ASK ") || StartsWith(error_reply, "TRYAGAIN");
}

std::optional<ClusterRouter::Hop> ClusterRouter::Follow(const std::string& error, const std::string& asked) {
  int slot = 0;
  std::string target;
  if (StartsWith(error, "MOVED ") && ParseRedirect(error, asked, &slot, &target)) {
    // The slot has a new owner for good: fix this slot now, reload the whole map on the next call (a reshard
    // usually moves many slots).
    map_.Set(slot, target);
    ++map_epoch_;
    stale_ = true;
    return Hop{target, false, false};
  }
  if (StartsWith(error, "ASK ") && ParseRedirect(error, asked, &slot, &target)) {
    // Only this command, only this time: the slot is being migrated and the key is already there.
    return Hop{target, true, false};
  }
  if (StartsWith(error, "TRYAGAIN")) {
    // A multi-key command during a migration with its keys split between nodes: retry shortly.
    return Hop{asked, false, true};
  }
  return std::nullopt;
}

StatusOr<std::vector<ClusterRouter::Routed>> ClusterRouter::SendOnce(
    const std::vector<std::vector<std::string>>& commands, const std::vector<Routed>& batch, int extra_timeout_ms,
    std::vector<RedisValue>* out, bool* try_again) {
  // Group by node, keeping the caller's order within a node (commands on one slot stay in order).
  std::map<std::string, std::vector<const Routed*>> by_node;
  for (const auto& r : batch) by_node[r.node].push_back(&r);
  std::vector<Routed> again;
  for (const auto& [node, items] : by_node) {
    std::vector<std::vector<std::string>> wire;
    for (const Routed* r : items) {
      if (r->asking) wire.push_back({"ASKING"});
      wire.push_back(commands[r->index]);
    }
    auto replies = Node(node).Pipeline(wire, extra_timeout_ms);
    if (!replies.ok()) {
      // The node is down or a timeout left it out of step: the topology may have changed (failover).
      stale_ = true;
      broken_ = true;
      return replies.status();
    }
    // Its earlier Sends' replies were read first: what they redirected goes out before this pipeline's own
    // redirections are followed, so it stays ahead of them.
    if (HasRedirected()) (void)ResendRedirected();
    size_t k = 0;
    for (const Routed* r : items) {
      if (r->asking) ++k;  // ASKING's +OK
      RedisValue& v = (*replies)[k++];
      if (v.is_error()) {
        if (auto hop = Follow(v.str, node)) {
          if (hop->try_again) *try_again = true;
          // A TRYAGAIN at the node an ASK sent it to is retried there with ASKING again: without it that node
          // answers MOVED back to the source, which asks again, and the rounds run out on the bounce.
          again.push_back({r->index, hop->node, hop->asking || (hop->try_again && r->asking)});
        }
      }
      (*out)[r->index] = std::move(v);
    }
  }
  return again;
}

StatusOr<std::vector<RedisValue>> ClusterRouter::Pipeline(const std::vector<std::vector<std::string>>& commands,
                                                          int extra_timeout_ms) {
  SF_RETURN_IF_ERROR(EnsureMap());
  Settle();
  std::vector<RedisValue> out(commands.size());
  std::vector<Routed> batch;
  batch.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    auto node = Route(commands[i]);
    if (!node) {
      out[i] = RedisValue{RedisValue::Type::kError, "CLUSTERDOWN Hash slot not served (client slot map)", 0, {}};
      stale_ = true;
      continue;
    }
    if (IsWait(commands[i]) && !batch.empty() && batch.back().index + 1 == i) node = batch.back().node;
    batch.push_back({i, *node, false});
  }
  for (int attempt = 0; !batch.empty() && attempt <= kMaxRedirects; ++attempt) {
    bool try_again = false;
    auto again = SendOnce(commands, batch, extra_timeout_ms, &out, &try_again);
    if (!again.ok()) return again.status();
    batch.clear();
    for (const Routed& r : *again) {
      batch.push_back(r);
      // A redirected write takes its WAIT along: the WAIT's first answer was about the node it left.
      if (r.index + 1 < commands.size() && IsWait(commands[r.index + 1])) batch.push_back({r.index + 1, r.node, false});
    }
    if (try_again && !batch.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
  }
  // Whatever is still redirected after kMaxRedirects keeps its last error reply in its slot.
  return out;
}

Status ClusterRouter::Send(const std::vector<std::vector<std::string>>& commands) {
  SF_RETURN_IF_ERROR(EnsureMap());
  // Redirections read since the last call (a node's deferred replies are read before its next command's).
  Settle();
  std::map<std::string, std::vector<std::vector<std::string>>> by_node;
  for (const auto& cmd : commands) {
    auto node = Route(cmd);
    if (!node) {
      stale_ = true;
      return Status::Unavailable("CLUSTERDOWN Hash slot not served (client slot map)");
    }
    by_node[*node].push_back(cmd);
  }
  Status first;
  for (const auto& [node, cmds] : by_node) {
    RedisClient& client = Node(node);
    Status s = client.Send(cmds);
    if (!s.ok()) {
      stale_ = true;
      broken_ = true;
      if (first.ok()) first = s;
      continue;
    }
    if (client.unread_ > kMaxUnreadPerNode) Note(client.AwaitSent());
  }
  if (HasRedirected()) (void)ResendRedirected();
  return first;
}

bool ClusterRouter::HasRedirected() const {
  if (!orphaned_.empty()) return true;
  for (const auto& [name, client] : nodes_) {
    if (!client->redirected_.empty()) return true;
  }
  return false;
}

void ClusterRouter::Settle() {
  if (map_epoch_ != settled_epoch_) {
    settled_epoch_ = map_epoch_;
    for (auto& [name, client] : nodes_) {
      if (client->unread_ > 0) Note(client->AwaitSent());
    }
  }
  if (HasRedirected()) (void)ResendRedirected();
}

void ClusterRouter::Note(const Status& s) {
  // A read the router made for itself of a node's owed replies that did not confirm them (lost with the
  // connection, or failed reading): kept for the caller's AwaitSent.
  if (!s.ok()) replies_lost_ = true;
}

Status ClusterRouter::AwaitSent() {
  Status first = AwaitNodes();
  // Once, as a node client says it: unless an error of this call already says something failed.
  const bool lost = std::exchange(replies_lost_, false);
  if (lost && first.ok()) return RepliesLost();
  return first;
}

Status ClusterRouter::AwaitNodes() {
  Status first;
  for (int round = 0;; ++round) {
    for (auto& [name, client] : nodes_) {
      Status s = client->AwaitSent();
      if (s.code() == StatusCode::kDataLoss) {
        replies_lost_ = true;
      } else if (!s.ok() && first.ok()) {
        first = s;
      }
    }
    if (!HasRedirected()) return first;
    if (round == kMaxRedirects) break;
    if (round > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20 * round));  // TRYAGAIN, a map settling
    auto resent = ResendRedirected();
    if (!resent.ok()) return resent.status();
  }
  std::vector<std::string> errors;
  for (auto& o : orphaned_) errors.push_back(std::move(o.error));
  orphaned_.clear();
  for (auto& [name, client] : nodes_) {
    for (auto& [cmd, error] : client->redirected_) errors.push_back(std::move(error));
    client->redirected_.clear();
  }
  // Not applied where they went: the next AwaitSent must not confirm them (as for a resend that failed).
  if (!errors.empty()) replies_lost_ = true;
  for (const auto& error : errors) {
    ++redirect_errors_;
    SF_LOG_WARN("redis cluster: a command sent without waiting for its reply was still redirected after {} "
                "attempts: {}",
                kMaxRedirects, error);
  }
  return first;
}

StatusOr<size_t> ClusterRouter::ResendRedirected() {
  std::vector<Redirected> all = std::move(orphaned_);
  orphaned_.clear();
  for (auto& [asked, client] : nodes_) {
    for (auto& [cmd, error] : client->redirected_) all.push_back({std::move(cmd), std::move(error), asked});
    client->redirected_.clear();
  }
  std::map<std::string, std::vector<std::vector<std::string>>> by_node;
  size_t n = 0;
  for (auto& [cmd, error, asked] : all) {
    if (cmd.empty()) continue;
    // A redirection that does not parse goes back where it went (AwaitSent bounds the rounds).
    auto hop = Follow(error, asked);
    const std::string to = hop ? hop->node : asked;
    if (hop && hop->asking) by_node[to].push_back({"ASKING"});
    by_node[to].push_back(std::move(cmd));
    ++n;
  }
  Status first;
  for (auto& [node, cmds] : by_node) {
    Status s = Node(node).Send(cmds);
    if (!s.ok()) {
      stale_ = true;
      broken_ = true;
      // These commands left every list: most callers resend from Send, Pipeline or Settle without looking
      // at this status, so the next AwaitSent must not confirm them (a worker's XACK lost here ran its task
      // again while the worker counted it acknowledged).
      replies_lost_ = true;
      if (first.ok()) first = s;
    }
  }
  if (!first.ok()) return first;
  return n;
}

int64_t ClusterRouter::DeferredErrors() const {
  int64_t n = redirect_errors_;
  for (const auto& [name, client] : nodes_) n += client->DeferredErrors();
  return n;
}

StatusOr<std::vector<std::string>> ClusterRouter::Masters() {
  SF_RETURN_IF_ERROR(EnsureMap());
  return map_.Masters();
}

StatusOr<RedisValue> ClusterRouter::CommandOn(const std::string& node, const std::vector<std::string>& argv,
                                              int extra_timeout_ms) {
  if (!SplitHostPort(node)) return Status::InvalidArgument("not a host:port node: " + node);
  auto r = Node(node).Command(argv, extra_timeout_ms);
  if (!r.ok() && (r.status().code() == StatusCode::kUnavailable ||
                  r.status().code() == StatusCode::kDeadlineExceeded)) {
    stale_ = true;
    broken_ = true;
  }
  return r;
}

}  // namespace streamfleet
