#include "streamfleet/redis/redis.h"

#include "cluster_router.h"
#include "redis_internal.h"
#include "redis_transport.h"
#include "sentinel.h"
#include "sentinel_watcher.h"
#include "streamfleet/base/log.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <string_view>
#include <thread>
#include <utility>

namespace streamfleet {
namespace {

// Writing to a socket the server has closed raises SIGPIPE, which kills a process that does not ignore it,
// and a library must not rely on its host doing so (the fleet's binaries do; a test or an SDK user may not).
// As libpq does: block SIGPIPE on this thread while writing, and swallow one the write raised, so a dead
// server is an error status, never a dead process.
//
// A process that ignores SIGPIPE (the fleet's binaries do: shutdown.cc) needs none of that, and the guard's four
// system calls per call were a third of a TLS worker's syscalls per task: once SIGPIPE is seen ignored, the
// guard is skipped (a process does not go back from ignoring it).
class SigpipeGuard {
 public:
  SigpipeGuard() {
    if (Ignored()) return;
    active_ = true;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeGuard() {
    if (!active_) return;
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  static bool Ignored() {
    static std::atomic<bool> ignored{false};
    if (ignored.load(std::memory_order_relaxed)) return true;
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) {
      ignored.store(true, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  bool active_ = false;
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

}  // namespace

long long RedisValue::AsInt() const {
  if (type == Type::kInteger) return integer;
  if (type == Type::kString || type == Type::kStatus) {
    try {
      return std::stoll(str);
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

bool IsMaxClientsError(const std::string& error_reply) {
  return error_reply.rfind("ERR max number of clients reached", 0) == 0;
}

bool IsReadonlyError(const std::string& error_reply) { return error_reply.rfind("READONLY", 0) == 0; }

Status TranslateRedisError(const std::string& e) {
  std::string prefix = e.substr(0, e.find_first_of(" \n"));
  // Errors raised by our own Lua scripts come back wrapped by Redis in some versions; look inside too.
  auto has = [&](const char* p) { return prefix == p || e.find(std::string(p) + " ") != std::string::npos; };
  if (has("SFINVALID")) return Status::InvalidArgument(e);
  if (has("SFLIMIT")) return Status::ResourceExhausted(e);
  if (has("SFCONFLICT")) return Status::FailedPrecondition(e);
  if (prefix == "NOGROUP") return Status::FailedPrecondition(e);
  if (prefix == "BUSYGROUP") return {StatusCode::kAlreadyExists, e};
  if (prefix == "NOSCRIPT") return Status::NotFound(e);
  if (prefix == "NOAUTH" || prefix == "WRONGPASS") return Status::Unauthenticated(e);
  if (prefix == "NOPERM") return Status::PermissionDenied(e);
  // A server at maxclients accepts, says so and closes: an outage to wait out (ingest answers 503), not a bug.
  if (IsMaxClientsError(e)) return Status::Unavailable(e);
  // OOM (maxmemory reached with noeviction) is retryable, not a limit of the request: memory comes back as
  // the compactors drain the buffers. Ingest answers 503 and consumers back off without acking anything.
  // MOVED / ASK reach a caller only when the cluster client's bounded redirects ran out while the topology
  // was still changing (a failover mid-election): retry later, with a reloaded slot map, never park the work.
  if (prefix == "OOM" || prefix == "LOADING" || prefix == "BUSY" || prefix == "TRYAGAIN" || prefix == "MASTERDOWN" ||
      prefix == "CLUSTERDOWN" || prefix == "READONLY" || prefix == "MOVED" || prefix == "ASK") {
    return Status::Unavailable(e);
  }
  return Status::Internal(e);
}

std::vector<std::string> AuthCommand(const RedisConfig& config) {
  if (config.username.empty()) return {"AUTH", config.password};
  return {"AUTH", config.username, config.password};
}

LuaScript::LuaScript(std::string source) : source_(std::move(source)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source_.data()), source_.size(), digest);
  static const char* hex = "0123456789abcdef";
  for (unsigned char b : digest) {
    sha_ += hex[b >> 4];
    sha_ += hex[b & 15];
  }
}

RedisValue OwnReply(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.type = RedisValue::Type::kString;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RedisValue::Type::kStatus;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = RedisValue::Type::kError;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::kInteger;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::kArray;
      v.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(OwnReply(r->element[i]));
      break;
    default:
      v.type = RedisValue::Type::kNil;
  }
  return v;
}

RedisClient::RedisClient(const RedisConfig& config) : config_(config) {
  if (config_.cluster) cluster_ = std::make_unique<ClusterRouter>(config_);
  if (!config_.sentinel.nodes.empty()) sentinel_watch_ = SentinelWatcher::For(config_);
}

StatusOr<std::unique_ptr<RedisClient>> RedisClient::Connect(const RedisConfig& config) {
  std::unique_ptr<RedisClient> c(new RedisClient(config));
  Status s = c->cluster_ ? c->cluster_->Refresh() : c->Open();
  if (!s.ok()) return s;
  return c;
}

bool RedisClient::connected() const { return cluster_ ? cluster_->ready() : conn_ != nullptr; }

std::vector<std::string> RedisClient::Masters() {
  if (!cluster_) return {config_.host + ":" + std::to_string(config_.port)};
  auto m = cluster_->Masters();
  if (!m.ok()) return {};
  return *m;
}

StatusOr<RedisValue> RedisClient::CommandOn(const std::string& node, const std::vector<std::string>& argv,
                                            int extra_timeout_ms) {
  if (cluster_) return cluster_->CommandOn(node, argv, extra_timeout_ms);
  if (node != config_.host + ":" + std::to_string(config_.port)) {
    return Status::InvalidArgument("not this client's server: " + node);
  }
  return Command(argv, extra_timeout_ms);
}

std::unique_ptr<RedisClient> RedisClient::Lazy(const RedisConfig& config) {
  return std::unique_ptr<RedisClient>(new RedisClient(config));
}

RedisClient::~RedisClient() { Drop(); }

void RedisClient::Drop() {
  // Their replies die with the connection (the commands were written: Send's contract), and whether the server
  // applied them is unknown: the next AwaitSent says so rather than confirm them.
  if (unread_ > 0 || replies_off_) replies_lost_ = true;
  unread_ = 0;
  sent_.clear();
  quiet_ok_ = false;
  replies_off_ = false;
  conn_.reset();
}

Status RedisClient::Broken(Status s) {
  Drop();
  return s;
}

void RedisClient::BackOffAfterRefusal() {
  // The next connect would be accepted and refused the same way: back off as after a failed connect (the
  // connect's success does not reset it; a working reply does, RawPipeline).
  refused_after_connect_ = true;
  next_attempt_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff_.Next());
}

Status RedisClient::RefusedFull(const std::string& error_reply) {
  Drop();  // the server closes this connection after saying so
  BackOffAfterRefusal();
  return Status::Unavailable(error_reply);
}

namespace {
// How long a client refuses to go back to a master the sentinels announced replaced (RedisClient::Open): longer
// than the sentinels need to agree, short enough that a watcher's mistake cannot strand a client.
constexpr auto kSentinelSwitchGrace = std::chrono::seconds(10);
}  // namespace

Status RedisClient::Open() {
  // Behind Sentinel, a server named master that answers ROLE as a replica is left for the next sentinel's
  // answer: the first sentinel asked may hold an old view (restarted with the original master in its file)
  // while the others name the promoted one; trusting the first kept every process away from the real master.
  std::set<std::string> refused;
  for (;;) {
    std::string named;
    bool not_master = false;
    Status s = OpenOnce(refused, &named, &not_master);
    if (s.ok() || !not_master || refused.size() >= config_.sentinel.nodes.size()) return s;
    refused.insert(named);
  }
}

Status RedisClient::OpenOnce(const std::set<std::string>& refused, std::string* named_out, bool* not_master) {
  Drop();
  RedisConfig target = config_;
  if (!config_.sentinel.nodes.empty()) {
    // Behind Sentinel: whoever is the master now (after a failover, the promoted replica). The failover count
    // is read first: a switch while this connects makes the next call connect again.
    sentinel_epoch_ = sentinel_watch_->epoch();
    auto master = AskSentinelsForMaster(config_, refused);
    if (!master.ok()) return master.status();
    target.host = master->first;
    target.port = master->second;
    const std::string named = master->first + ":" + std::to_string(master->second);
    // Sentinels learn of a failover from each other within a couple of seconds: until then the first one asked
    // may still name the master that was announced replaced (which may still answer as a master: split brain).
    if (named == sentinel_left_ && named != sentinel_watch_->master() &&
        std::chrono::steady_clock::now() - sentinel_left_at_ < kSentinelSwitchGrace) {
      return Status::Unavailable("the sentinels still name " + named + ", announced replaced (failover in progress)");
    }
    sentinel_master_ = named;
    *named_out = named;
    if (named != sentinel_left_) sentinel_left_.clear();
  }
  auto conn = ConnectTransport(target);
  if (!conn.ok()) return conn.status();
  conn_ = std::move(*conn);
  if (NeedsAuth(config_)) {
    auto r = RawPipeline({AuthCommand(config_)}, 0);
    if (!r.ok()) return r.status();
    if ((*r)[0].is_error()) return Broken(TranslateRedisError((*r)[0].str));
  }
  if (config_.db != 0) {
    auto r = RawPipeline({{"SELECT", std::to_string(config_.db)}}, 0);
    if (!r.ok()) return r.status();
    if ((*r)[0].is_error()) return Broken(TranslateRedisError((*r)[0].str));
  }
  if (!config_.sentinel.nodes.empty()) {
    // The sentinels may still name a master that was just demoted: never write to a replica.
    auto r = RawPipeline({{"ROLE"}}, 0);
    if (!r.ok()) return r.status();
    const RedisValue& role = (*r)[0];
    if (!role.is_array() || role.elements.empty() || role.elements[0].str != "master") {
      *not_master = true;
      return Broken(Status::Unavailable("redis " + target.host + ":" + std::to_string(target.port) +
                                        " named master by the sentinels is not a master (failover in progress)"));
    }
  }
  if (config_.quiet_sends) {
    // Asked once per connection (a round trip at connect): an ACL without client|reply, or a proxy that does
    // not know the command, leaves this connection's Sends as they are without quiet_sends.
    auto r = RawPipeline({{"CLIENT", "REPLY", "ON"}}, 0);
    if (!r.ok()) return r.status();
    quiet_ok_ = !(*r)[0].is_error();
    if (!quiet_ok_ && !quiet_refusal_logged_) {
      quiet_refusal_logged_ = true;
      SF_LOG_INFO("redis: CLIENT REPLY refused ({}): sends on this connection get their replies as usual", (*r)[0].str);
    }
  }
  return Status::Ok();
}

StatusOr<DetachedSocket> RedisClient::OpenForHandOver() {
  if (cluster_) return Status::FailedPrecondition("OpenForHandOver: not in cluster mode");
  Status s = Open();
  if (!s.ok()) {
    Drop();
    return s;
  }
  DetachedSocket socket = conn_->Detach();
  Drop();
  if (socket.fd < 0) return Status::Unavailable("redis: cannot hand the connection over (dup failed)");
  return socket;
}

bool RedisClient::HandedOverMasterReplaced() {
  if (sentinel_watch_ == nullptr || sentinel_watch_->epoch() == sentinel_epoch_) return false;
  sentinel_epoch_ = sentinel_watch_->epoch();
  // Same rule as EnsureConnected: an announcement naming the master already held changes nothing.
  if (sentinel_watch_->master() == sentinel_master_) return false;
  sentinel_left_ = sentinel_master_;
  sentinel_left_at_ = std::chrono::steady_clock::now();
  return true;
}

Status RedisClient::EnsureConnected() {
  // The sentinels announced a new master since this connected: leave the old one, once the replies owed to
  // earlier Send()s are read (a dropped connection would lose them).
  if (conn_ != nullptr && sentinel_watch_ != nullptr && sentinel_watch_->epoch() != sentinel_epoch_) {
    const uint64_t epoch = sentinel_watch_->epoch();
    if (sentinel_watch_->master() == sentinel_master_) {
      // Already on the announced master (this client followed the failover itself, on a lost connection).
      sentinel_epoch_ = epoch;
      return Status::Ok();
    }
    if (unread_ > 0 || replies_off_) {
      Status owed = RawPipeline({}, 0).status();
      if (!owed.ok()) return Broken(owed);
    }
    sentinel_left_ = sentinel_master_;
    sentinel_left_at_ = std::chrono::steady_clock::now();
    Drop();
  }
  if (conn_ != nullptr) return Status::Ok();
  auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) return Status::Unavailable("redis unavailable (reconnect backing off)");
  Status s = Open();
  if (s.ok()) {
    // A server at maxclients accepts the connect too: the backoff keeps growing until it answers.
    if (!refused_after_connect_) backoff_.Reset();
    return s;
  }
  // (Unless Open was refused after its connect and has set the backoff already: one step per refusal.)
  if (next_attempt_ <= now) next_attempt_ = now + std::chrono::milliseconds(backoff_.Next());
  return s;
}

StatusOr<std::vector<RedisValue>> RedisClient::RawPipeline(const std::vector<std::vector<std::string>>& commands,
                                                           int extra_timeout_ms) {
  if (conn_ == nullptr) return Status::Unavailable("not connected");
  if (extra_timeout_ms > 0) conn_->SetTimeout(config_.command_timeout_ms + extra_timeout_ms);
  SigpipeGuard no_sigpipe;  // the first read writes the appended commands
  // After quiet Sends, replies are turned on in the same write as the commands that want theirs.
  const bool turn_on = replies_off_;
  // With the role: a replica drops quiet writes without a word (their errors are replies too, and replies
  // were off), and accepts the ON; a master demoted since they were sent did not apply them. Behind
  // Sentinel, and without it too: a managed Redis fails over by moving its DNS name, and a connection to the
  // old primary stays open to what is a replica now. (A cluster's node clients have the router for that.)
  const bool ask_role = turn_on && !track_sent_;
  if (turn_on) conn_->Append({"CLIENT", "REPLY", "ON"});
  if (ask_role) conn_->Append({"ROLE"});
  for (const auto& argv : commands) conn_->Append(argv);
  SF_RETURN_IF_ERROR(ReadDeferred());
  if (turn_on) {
    auto reply = conn_->Read();
    if (!reply.ok()) return Broken(reply.status());
    RedisValue on = OwnReply(*reply);
    freeReplyObject(*reply);
    if (on.is_error() && IsMaxClientsError(on.str)) return RefusedFull(on.str);
    // Accepted at connect (Open asks the same way): a refusal now (an ACL changed since) leaves the
    // connection out of step.
    if (on.is_error()) return Broken(Status::Unavailable("redis: CLIENT REPLY ON refused: " + on.str));
    if (ask_role) {
      auto role = conn_->Read();
      if (!role.ok()) return Broken(role.status());
      RedisValue r = OwnReply(*role);
      freeReplyObject(*role);
      if (r.is_array() && !r.elements.empty() && r.elements[0].str != "master") return Demoted();
    }
    replies_off_ = false;
  }
  std::vector<RedisValue> out;
  out.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    auto reply = conn_->Read();
    if (!reply.ok()) return Broken(reply.status());
    out.push_back(OwnReply(*reply));
    freeReplyObject(*reply);
    // The server refused the connection (it was full) before reading any of it: no further reply comes.
    if (out.back().is_error() && IsMaxClientsError(out.back().str)) return RefusedFull(out.back().str);
  }
  if (extra_timeout_ms > 0) conn_->SetTimeout(config_.command_timeout_ms);
  // READONLY: the server was demoted under us (a failover while connected). The replies are the caller's
  // answer, but the connection is left (the next call asks the sentinels or, without them, connects again: a
  // managed Redis moves its DNS name to the promoted replica) and, not being a working reply, it keeps the
  // backoff growing rather than resetting it. (A cluster node client: its router handles READONLY.)
  if (!track_sent_) {
    for (const auto& v : out) {
      if (v.is_error() && IsReadonlyError(v.str)) {
        Drop();
        BackOffAfterRefusal();
        return out;
      }
    }
  }
  if (refused_after_connect_) {  // the server has room again
    refused_after_connect_ = false;
    backoff_.Reset();
  }
  return out;
}

Status RedisClient::ReadDeferred() {
  bool demoted = false;
  while (unread_ > 0) {
    auto reply = conn_->Read();
    if (!reply.ok()) return Broken(reply.status());
    --unread_;
    std::vector<std::string> sent;
    if (track_sent_ && !sent_.empty()) {
      sent = std::move(sent_.front());
      sent_.pop_front();
    }
    if ((*reply)->type == REDIS_REPLY_ERROR && track_sent_) {
      std::string error((*reply)->str, (*reply)->len);
      if (IsRedirection(error)) {
        redirected_.emplace_back(std::move(sent), std::move(error));  // the router sends it again
        freeReplyObject(*reply);
        continue;
      }
    }
    if ((*reply)->type == REDIS_REPLY_ERROR) {
      std::string error((*reply)->str, (*reply)->len);
      if (IsMaxClientsError(error)) {
        freeReplyObject(*reply);
        return RefusedFull(error);
      }
      ++deferred_errors_;
      SF_LOG_WARN("redis: a command sent without waiting for its reply failed: {}", error);
      if (!track_sent_ && IsReadonlyError(error)) demoted = true;
    }
    freeReplyObject(*reply);
  }
  if (demoted) return Demoted();
  return Status::Ok();
}

Status RedisClient::Demoted() {
  // The master was demoted under us (a failover while connected): writes sent without waiting were refused,
  // so the next AwaitSent must not confirm them, and the next call asks the sentinels (or, without them,
  // connects again: a failover that moved a DNS name is followed by the new connection's lookup).
  replies_lost_ = true;
  BackOffAfterRefusal();
  return Broken(Status::Unavailable(config_.sentinel.nodes.empty()
                                        ? "redis: the server is a replica now (READONLY: failed over); reconnecting"
                                        : "redis: the master was demoted to a replica; asking the sentinels"));
}

Status RedisClient::Send(const std::vector<std::vector<std::string>>& commands) {
  if (commands.empty()) return Status::Ok();
  if (cluster_) return cluster_->Send(commands);
  SF_RETURN_IF_ERROR(EnsureConnected());
  // Quiet: the OFF itself has no reply, nor has anything after it until the ON of the next read.
  if (quiet_ok_ && !replies_off_) conn_->Append({"CLIENT", "REPLY", "OFF"});
  for (const auto& argv : commands) conn_->Append(argv);
  // Written now (blocking, within the command timeout), so the server applies them while this thread goes
  // on; they would otherwise wait in the output buffer until the next read.
  SigpipeGuard no_sigpipe;
  Status w = conn_->Flush();
  if (!w.ok()) return Broken(w);
  if (quiet_ok_) {
    replies_off_ = true;
  } else {
    unread_ += commands.size();
    if (track_sent_) sent_.insert(sent_.end(), commands.begin(), commands.end());
  }
  return Status::Ok();
}

Status RedisClient::AwaitSent() {
  if (cluster_) return cluster_->AwaitSent();
  Status s;
  if (conn_ != nullptr) {
    // Quiet Sends are applied once the ON after them is answered (a connection's commands run in order).
    s = replies_off_ ? RawPipeline({}, 0).status() : ReadDeferred();
  }
  // Said once, by this call or by the error it returns (a read that failed here dropped the connection). Not a
  // retryable code: the connection may be back (a caller counting outages would count this one twice), and
  // nothing retries what is unknown.
  const bool lost = std::exchange(replies_lost_, false);
  if (lost && s.ok()) return RepliesLost();
  return s;
}

Status RepliesLost() {
  return Status::DataLoss("redis: a connection closed before the replies of commands sent on it were read; they "
                          "may not have been applied");
}

int64_t RedisClient::DeferredErrors() const { return cluster_ ? cluster_->DeferredErrors() : deferred_errors_; }

StatusOr<std::vector<RedisValue>> RedisClient::Pipeline(const std::vector<std::vector<std::string>>& commands,
                                                        int extra_timeout_ms) {
  if (cluster_) return cluster_->Pipeline(commands, extra_timeout_ms);
  SF_RETURN_IF_ERROR(EnsureConnected());
  // A server at maxclients or a demoted master (READONLY): RawPipeline drops the connection and backs off.
  auto r = RawPipeline(commands, extra_timeout_ms);
  if (!r.ok()) return r;
  // Repair NOSCRIPT (script cache flushed or a fresh server): load and re-run the failed EVALSHAs in order.
  std::vector<size_t> redo;
  for (size_t i = 0; i < r->size(); ++i) {
    if ((*r)[i].is_error() && (*r)[i].str.rfind("NOSCRIPT", 0) == 0) redo.push_back(i);
  }
  if (redo.empty()) return r;
  std::vector<std::vector<std::string>> loads;
  for (const LuaScript* s : scripts_) loads.push_back({"SCRIPT", "LOAD", s->source()});
  // An EVALSHA a cluster router sent after ASKING (a slot being imported) is re-run after it too: without it
  // the importing node answers MOVED, and the router bounces the script back to the source.
  std::vector<std::vector<std::string>> again;
  std::vector<size_t> reply_of;  // index in `again` of each redone command's own reply
  for (size_t i : redo) {
    if (i > 0 && commands[i - 1].size() == 1 && commands[i - 1][0] == "ASKING") again.push_back(commands[i - 1]);
    reply_of.push_back(again.size());
    again.push_back(commands[i]);
  }
  auto l = RawPipeline(loads, 0);
  if (!l.ok()) return l;
  auto a = RawPipeline(again, extra_timeout_ms);
  if (!a.ok()) return a;
  for (size_t k = 0; k < redo.size(); ++k) (*r)[redo[k]] = std::move((*a)[reply_of[k]]);
  return r;
}

StatusOr<RedisValue> RedisClient::Command(const std::vector<std::string>& argv, int extra_timeout_ms) {
  auto r = Pipeline({argv}, extra_timeout_ms);
  if (!r.ok()) return r.status();
  RedisValue v = std::move((*r)[0]);
  if (v.is_error()) return TranslateRedisError(v.str);
  return v;
}

std::vector<std::string> RedisClient::EvalArgv(const LuaScript& script, const std::vector<std::string>& keys,
                                               const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(script.sha());
  argv.push_back(std::to_string(keys.size()));
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

void RedisClient::Register(const LuaScript& script) {
  if (cluster_) cluster_->Register(script);
  if (std::find(scripts_.begin(), scripts_.end(), &script) == scripts_.end()) scripts_.push_back(&script);
}

StatusOr<RedisValue> RedisClient::Eval(const LuaScript& script, const std::vector<std::string>& keys,
                                       const std::vector<std::string>& args) {
  Register(script);
  return Command(EvalArgv(script, keys, args));
}

StatusOr<RedisPool::Lease> RedisPool::Acquire() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(c));
    }
    if (std::chrono::steady_clock::now() < next_connect_) {
      return Status::Unavailable("redis unavailable (reconnect backing off): " + connect_error_.message());
    }
  }
  auto c = RedisClient::Connect(config_);
  std::lock_guard<std::mutex> l(mu_);
  if (!c.ok()) {
    connect_error_ = c.status();
    next_connect_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(connect_backoff_.Next());
    return c.status();
  }
  next_connect_ = {};  // the backoff is reset once a client comes back working (Release)
  return Lease(this, std::move(*c));
}

void RedisPool::Release(std::unique_ptr<RedisClient> c) {
  // A broken cluster client is kept: its router reconnects node by node, each with its own backoff, and
  // reloads the slot map from the masters it knows before the seeds. A new one started from the seeds, and
  // behind a dead first seed every request waited out a connect timeout. A broken single-server client
  // holds nothing worth keeping.
  if (!c->connected() && !c->config().cluster) {
    if (c->RefusedAfterConnect()) {
      std::lock_guard<std::mutex> l(mu_);
      connect_error_ = Status::Unavailable(
          "redis refused the connection after it was made (at maxclients, or a replica answering READONLY)");
      next_connect_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(connect_backoff_.Next());
    }
    return;
  }
  std::lock_guard<std::mutex> l(mu_);
  connect_backoff_.Reset();
  idle_.push_back(std::move(c));
}

const std::string* StreamEntry::Field(const std::string& name) const {
  for (const auto& [k, v] : fields) {
    if (k == name) return &v;
  }
  return nullptr;
}

StreamEntry ParseEntry(const std::string& stream, const RedisValue& entry) {
  StreamEntry se;
  se.stream = stream;
  if (!entry.is_array() || entry.elements.empty()) return se;
  se.id = entry.elements[0].str;
  // Entries deleted or trimmed while pending come back as [id, nil]: keep the id, no fields.
  if (entry.elements.size() > 1 && entry.elements[1].is_array()) {
    const auto& f = entry.elements[1].elements;
    for (size_t i = 0; i + 1 < f.size(); i += 2) se.fields.emplace_back(f[i].str, f[i + 1].str);
  }
  return se;
}

std::vector<StreamEntry> ParseEntries(const std::string& stream, const RedisValue& entries) {
  std::vector<StreamEntry> out;
  for (const auto& e : entries.elements) {
    if (!e.is_array() || e.elements.empty()) continue;
    out.push_back(ParseEntry(stream, e));
  }
  return out;
}

std::vector<StreamEntry> ParseStreamReply(const RedisValue& reply) {
  std::vector<StreamEntry> out;
  if (!reply.is_array()) return out;
  for (const auto& s : reply.elements) {
    if (!s.is_array() || s.elements.size() < 2) continue;
    auto part = ParseEntries(s.elements[0].str, s.elements[1]);
    out.insert(out.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return out;
}

std::vector<std::pair<std::string, RedisValue>> ParsePairs(const RedisValue& v) {
  std::vector<std::pair<std::string, RedisValue>> out;
  for (size_t i = 0; i + 1 < v.elements.size(); i += 2) out.emplace_back(v.elements[i].str, v.elements[i + 1]);
  return out;
}

}  // namespace streamfleet
