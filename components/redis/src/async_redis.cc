#include "streamfleet/redis/async_redis.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include <condition_variable>
#include <future>

#include "host_lookup.h"
#include "redis_internal.h"
#include "streamfleet/base/log.h"
#include "redis_transport.h"
#include "uv_redis_adapter.h"
#include "uv_resp_connection.h"

namespace streamfleet {

using SteadyClock = std::chrono::steady_clock;

// How often the loop checks connect and command deadlines: the timeouts are seconds, so 25 ms of slack
// costs nothing and keeps the timer cheap.
constexpr int kTickMs = 25;

// WriteEarly: within one loop iteration, the first command and then every 4th are written at
// once (4 measured better than 1, 2 alike, 8 and 16 within the noise of 4).
constexpr int kWriteAtOnceEvery = 4;

struct AsyncRedis::Loop {
  uv_loop_t own;     // the threaded form's loop
  uv_loop_t* loop;   // &own, or the host's
  uv_async_t wake;   // commands were queued (by another thread, or from inside a callback), or stop
  uv_timer_t tick;   // deadline checks
  uv_check_t turn_ended;  // runs once the loop turn's I/O callbacks have: the early write is available again
};

// A host name lookup on libuv's thread pool: hiredis would look it up with a blocking getaddrinfo on the
// loop thread, and a hosted client's loop serves other work (ingest's HTTP requests) that a slow DNS server
// must not stall.
struct AsyncRedis::Resolving {
  uv_getaddrinfo_t req;
  AsyncRedis* self = nullptr;
  bool abandoned = false;  // timed out, or the client stopped: the result is dropped when it comes
};

struct AsyncRedis::InFlight {
  AsyncRedis* self;
  Request req;
};

struct AsyncRedis::DirectOwner final : UvRespConnection::Owner {
  explicit DirectOwner(AsyncRedis* s) : self(s) {}
  void OnRespReply(UvRespConnection* conn, redisReply* reply, void* privdata) override {
    self->Deliver(std::unique_ptr<InFlight>(static_cast<InFlight*>(privdata)), reply, self->direct_lost_,
                  conn == self->direct_);
  }
  void OnRespDown(UvRespConnection* conn, const std::string& why) override {
    if (conn != self->direct_) return;
    self->direct_ = nullptr;
    self->ready_ = false;
    self->direct_lost_ = why;
    self->ConnectionLost(why);
  }
  AsyncRedis* self;
};

AsyncRedis::AsyncRedis(RedisConfig config) : AsyncRedis(std::move(config), nullptr) {}

std::unique_ptr<AsyncRedis> AsyncRedis::OnLoop(RedisConfig config, uv_loop_s* loop) {
  return std::unique_ptr<AsyncRedis>(new AsyncRedis(std::move(config), loop));
}

AsyncRedis::AsyncRedis(RedisConfig config, uv_loop_s* hosted_on)
    : config_(std::move(config)),
      loop_(std::make_unique<Loop>()),
      hosted_(hosted_on != nullptr),
      direct_owner_(std::make_unique<DirectOwner>(this)) {
  if (hosted_) {
    loop_->loop = hosted_on;
  } else {
    loop_->loop = &loop_->own;
    uv_loop_init(loop_->loop);
  }
  uv_async_init(loop_->loop, &loop_->wake, [](uv_async_t* h) { static_cast<AsyncRedis*>(h->data)->OnWake(); });
  loop_->wake.data = this;
  uv_timer_init(loop_->loop, &loop_->tick);
  loop_->tick.data = this;
  uv_timer_start(
      &loop_->tick, [](uv_timer_t* h) { static_cast<AsyncRedis*>(h->data)->OnTick(); }, kTickMs, kTickMs);
  uv_check_init(loop_->loop, &loop_->turn_ended);
  loop_->turn_ended.data = this;
  if (hosted_) {
    loop_thread_ = std::this_thread::get_id();
  } else {
    thread_ = std::thread([this] { RunLoop(); });
    loop_thread_ = thread_.get_id();
  }
}

AsyncRedis::~AsyncRedis() {
  if (hosted_) {
    // Close() ran on the host's loop thread, which has closed the handles since; without it they would point
    // here after we are gone, which only the loop thread could have prevented.
    if (!closed_) SF_LOG_ERROR("a hosted AsyncRedis destroyed without Close(): its loop handles dangle");
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    uv_async_send(&loop_->wake);
  }
  thread_.join();
  uv_loop_close(loop_->loop);
}

void AsyncRedis::Close() {
  if (!hosted_ || closed_) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  OnWake();  // the stop path: what is queued answered "stopped", then Shutdown
}

void AsyncRedis::RunLoop() {
  BlockSigpipeOnThisThread();  // OpenSSL writes with write(2), without MSG_NOSIGNAL
  uv_run(loop_->loop, UV_RUN_DEFAULT);
}

void AsyncRedis::Answer(const Callback& cb, StatusOr<RedisValue> v) {
  struct Mark {  // undone also when the callback throws (the HTTP server catches a fast handler's exception)
    explicit Mark(int& n) : n(n) { ++n; }
    ~Mark() { --n; }
    int& n;
  } mark(answering_);
  cb(std::move(v));
}

void AsyncRedis::Submit(Request req) {
  // answering_ and closed_ are loop-thread state: read only once this is known to be the loop thread.
  if (std::this_thread::get_id() == loop_thread_ && answering_ == 0 && !closed_) {
    Dispatch(std::move(req));
    return;
  }
  std::unique_lock<std::mutex> l(mu_);
  if (stopping_) {
    l.unlock();
    req.cb(Status::Unavailable("redis client stopped"));
    return;
  }
  queue_.push_back(std::move(req));
  // Under the lock: the destructor cannot close the handle between our check and this call.
  uv_async_send(&loop_->wake);
}

void AsyncRedis::Send(std::vector<std::string> argv, Callback cb, int extra_timeout_ms) {
  Submit(Request{std::move(argv), std::string(), std::move(cb), extra_timeout_ms, false});
}

void AsyncRedis::SendEval(const LuaScript& script, const std::vector<std::string>& keys,
                          const std::vector<std::string>& args, Callback cb) {
  Submit(Request{RedisClient::EvalArgv(script, keys, args), script.source(), std::move(cb), 0, false});
}

StatusOr<RedisValue> AsyncRedis::Command(const std::vector<std::string>& argv, int extra_timeout_ms) {
  if (std::this_thread::get_id() == loop_thread_) {
    return Status::FailedPrecondition("blocking AsyncRedis::Command called on its own loop thread");
  }
  std::promise<StatusOr<RedisValue>> done;
  auto result = done.get_future();
  Send(std::vector<std::string>(argv), [&done](StatusOr<RedisValue> r) { done.set_value(std::move(r)); },
       extra_timeout_ms);
  return result.get();
}

StatusOr<RedisValue> AsyncRedis::Eval(const LuaScript& script, const std::vector<std::string>& keys,
                                      const std::vector<std::string>& args) {
  if (std::this_thread::get_id() == loop_thread_) {
    return Status::FailedPrecondition("blocking AsyncRedis::Eval called on its own loop thread");
  }
  std::promise<StatusOr<RedisValue>> done;
  auto result = done.get_future();
  SendEval(script, keys, args, [&done](StatusOr<RedisValue> r) { done.set_value(std::move(r)); });
  return result.get();
}

StatusOr<std::vector<RedisValue>> AsyncRedis::Pipeline(const std::vector<std::vector<std::string>>& commands,
                                                       int extra_timeout_ms) {
  if (std::this_thread::get_id() == loop_thread_) {
    return Status::FailedPrecondition("blocking AsyncRedis::Pipeline called on its own loop thread");
  }
  std::vector<RedisValue> out(commands.size());
  if (commands.empty()) return out;
  std::mutex mu;
  std::condition_variable cv;
  size_t left = commands.size();
  Status failed;
  auto done = [&](size_t i, StatusOr<RedisValue> r) {
    std::lock_guard<std::mutex> l(mu);
    if (r.ok()) {
      out[i] = std::move(*r);
    } else if (failed.ok()) {
      failed = r.status();
    }
    if (--left == 0) cv.notify_one();
  };
  {
    std::unique_lock<std::mutex> l(mu_);
    if (stopping_) return Status::Unavailable("redis client stopped");
    for (size_t i = 0; i < commands.size(); ++i) {
      queue_.push_back(Request{commands[i], std::string(), [&done, i](StatusOr<RedisValue> r) { done(i, std::move(r)); },
                               extra_timeout_ms, true});
    }
    uv_async_send(&loop_->wake);
  }
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return left == 0; });
  if (!failed.ok()) return failed;
  return out;
}

void AsyncRedis::OnWake() {
  std::vector<Request> batch;
  bool stop;
  {
    std::lock_guard<std::mutex> l(mu_);
    batch.swap(queue_);
    stop = stopping_;
  }
  if (stop) {
    if (closed_) return;  // Close() has answered everything already
    for (auto& r : batch) Answer(r.cb, Status::Unavailable("redis client stopped"));
    Shutdown();
    return;
  }
  for (auto& r : batch) Dispatch(std::move(r));
}

void AsyncRedis::Shutdown() {
  closed_ = true;
  AbandonLookup(Status::Unavailable("redis client stopped"));
  DropConnection(Status::Unavailable("redis client stopped"));
  uv_timer_stop(&loop_->tick);
  uv_close(reinterpret_cast<uv_handle_t*>(&loop_->wake), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&loop_->tick), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&loop_->turn_ended), nullptr);
}

void AsyncRedis::Dispatch(Request req) {
  if (closed_) {  // a callback of a batch being dispatched (OnWake) called Close(): no reconnect after it
    Answer(req.cb, Status::Unavailable("redis client stopped"));
    return;
  }
  if (config_.cluster) {
    // One async connection cannot follow a cluster's slots; refuse loudly rather than talk to one node.
    Answer(req.cb, Status::FailedPrecondition(
        "AsyncRedis does not support Redis Cluster (REDIS_CLUSTER=true): use PooledRedisCommands "
        "(pooled_redis_commands.h) over cluster-mode RedisClients"));
    return;
  }
  if (!HasConnection()) {
    if (lost_by_early_write_) {  // WriteEarly: the connection broke under this loop turn's earlier commands
      Answer(req.cb, Status::Unavailable("redis connection lost (a write failed in this loop turn)"));
      return;
    }
    if (resolving_ != nullptr) {  // the host name is being looked up: the command waits for the connection
      awaiting_.push_back(std::move(req));
      return;
    }
    if (SteadyClock::now() < next_attempt_) {
      Answer(req.cb, Status::Unavailable("redis unavailable (reconnect backing off): " + last_error_.message()));
      return;
    }
    Connect();
    if (resolving_ != nullptr) {
      awaiting_.push_back(std::move(req));
      return;
    }
    if (!HasConnection()) {
      Answer(req.cb, last_error_);
      return;
    }
  }
  if (handshaking_ != nullptr) {  // after AUTH and SELECT succeeded (HandshakeStep)
    awaiting_.push_back(std::move(req));
    return;
  }
  Issue(std::move(req));
}

void AsyncRedis::Issue(Request req) {
  auto* f = new InFlight{this, std::move(req)};
  deadlines_.push_back(SteadyClock::now() +
                       std::chrono::milliseconds(config_.command_timeout_ms + f->req.extra_timeout_ms));
  if (direct_ != nullptr) {
    direct_->Command(f->req.argv, f);
    return;
  }
  ArgvView argv(f->req.argv);
  if (redisAsyncCommandArgv(ctx_, &AsyncRedis::OnReply, f, argv.argc(), argv.ptrs.data(), argv.lens.data()) !=
      REDIS_OK) {
    // The context is already disconnecting: hiredis did not take the command, so we answer it.
    deadlines_.pop_back();
    std::unique_ptr<InFlight> owned(f);
    Answer(owned->req.cb, Status::Unavailable("redis connection closing"));
    return;
  }
  WriteEarly();
}

void AsyncRedis::WriteEarly() {
  // hiredis only buffers a command; it goes out when the loop next reports the socket writable, one loop
  // iteration later, with whatever else was sent meanwhile. Under load (ingest's 64 clients, one script
  // call each) Redis then idles while this loop parses the rest of the iteration's requests, and the
  // requests wait on the two hops in turn, each process about half busy. Writing the first command of an
  // iteration at once, and then every kWriteAtOnceEvery-th, lets Redis work while this loop parses; the
  // rest still go out together at the writable event. Measured on ingest's single-chunk path
  // (docs/performance.md, "Ingest against redis-benchmark XADD", 2026-12-07 seventeenth session): +17%
  // requests/s for about 2 us more CPU per request; writing every command at once gained less.
  if (!hosted_) return;  // the threaded form writes a batch from another thread once (OnWake): measured no need
  ++buffered_since_write_;
  if (eager_write_spent_ && buffered_since_write_ < kWriteAtOnceEvery) return;
  if (!ready_ || handshaking_ != nullptr || answering_ > 0) return;
  // Not from inside hiredis (a reply or connect callback, or its event): a failed write frees the context,
  // which hiredis 0.14 does at once, under the caller's feet.
  if ((ctx_->c.flags & REDIS_IN_CALLBACK) != 0 || uvredis::InsideEvent(ctx_)) return;
  eager_write_spent_ = true;
  buffered_since_write_ = 0;
  uv_check_start(&loop_->turn_ended, [](uv_check_t* h) {
    auto* self = static_cast<AsyncRedis*>(h->data);
    self->eager_write_spent_ = false;
    self->buffered_since_write_ = 0;
    self->lost_by_early_write_ = false;
    uv_check_stop(h);
  });
  // A failed write is handled as in the writable event: hiredis answers the pending commands (OnReply, from
  // here: the caller may see its answer before Send returns, as for a refused connect) and OnDisconnect
  // clears ctx_. The rest of this loop turn's commands are then answered too (Dispatch), not sent on a new
  // connection: one request's commands (a record, then its XADD) must not be split across two connections,
  // the first ones lost and the later ones applied.
  redisAsyncHandleWrite(ctx_);
  if (ctx_ == nullptr) lost_by_early_write_ = true;
}

std::string AsyncRedis::Where() const { return config_.host + ":" + std::to_string(config_.port); }

void AsyncRedis::Connect() {
  if (config_.tls.enabled || !config_.sentinel.nodes.empty()) {
    // hiredis's async context reads the socket itself (no TLS) and knows nothing of sentinels.
    ConnectHandedOver();
    return;
  }
  if (!IsIpLiteral(config_.host)) {
    Resolve();
    return;
  }
  ConnectTo(config_.host);
}

void AsyncRedis::Resolve() {
  auto* r = new Resolving;
  r->self = this;
  r->req.data = r;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(loop_->loop, &r->req, &AsyncRedis::OnResolved, config_.host.c_str(), nullptr, &hints);
  if (rc != 0) {
    delete r;
    last_error_ = Status::Unavailable("redis connect " + Where() + ": cannot look up the host: " + uv_strerror(rc));
    ConnectFailed();
    return;
  }
  resolving_ = r;
  connect_deadline_ = SteadyClock::now() + std::chrono::milliseconds(config_.connect_timeout_ms);
}

void AsyncRedis::OnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  std::unique_ptr<Resolving> r(static_cast<Resolving*>(req->data));
  char ip[INET6_ADDRSTRLEN] = "";
  if (status == 0) {
    // An IPv4 address when there is one: "localhost" often lists ::1 first, and redis-server binds to
    // 127.0.0.1 unless told otherwise (hiredis would have tried each address; one connect gets one).
    const addrinfo* pick = nullptr;
    for (const addrinfo* a = res; a != nullptr; a = a->ai_next) {
      if (a->ai_family == AF_INET) {
        pick = a;
        break;
      }
      if (pick == nullptr && a->ai_family == AF_INET6) pick = a;
    }
    if (pick != nullptr && pick->ai_family == AF_INET) {
      uv_ip4_name(reinterpret_cast<const sockaddr_in*>(pick->ai_addr), ip, sizeof(ip));
    } else if (pick != nullptr) {
      uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(pick->ai_addr), ip, sizeof(ip));
    }
  }
  uv_freeaddrinfo(res);
  if (r->abandoned) return;
  AsyncRedis* self = r->self;
  self->resolving_ = nullptr;
  std::vector<Request> waiting;
  waiting.swap(self->awaiting_);
  if (ip[0] == '\0') {
    self->last_error_ = Status::Unavailable("redis connect " + self->Where() + ": cannot look up the host: " +
                                            (status != 0 ? uv_strerror(status) : "no address"));
    self->ConnectFailed();
    for (auto& w : waiting) self->Answer(w.cb, self->last_error_);
    return;
  }
  self->ConnectTo(ip);
  for (auto& w : waiting) self->Dispatch(std::move(w));  // on the new connection, or answered with its failure
}

void AsyncRedis::AbandonLookup(const Status& why) {
  if (resolving_ == nullptr) return;
  resolving_->abandoned = true;
  uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->req));  // OnResolved still runs (and frees it)
  resolving_ = nullptr;
  std::vector<Request> waiting;
  waiting.swap(awaiting_);
  for (auto& w : waiting) Answer(w.cb, why);
}

void AsyncRedis::ConnectTo(const std::string& ip) {
  const std::string where = Where();
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), config_.port);
  if (ac == nullptr || ac->err) {
    last_error_ = Status::Unavailable("redis connect " + where + ": " + (ac ? ac->errstr : "out of memory"));
    if (ac != nullptr) redisAsyncFree(ac);
    ConnectFailed();
    return;
  }
  ac->data = this;
  if (uvredis::Attach(loop_->loop, ac) != REDIS_OK) {
    last_error_ = Status::Internal("redis connect " + where + ": cannot attach the socket to the event loop");
    redisAsyncFree(ac);
    ConnectFailed();
    return;
  }
  redisAsyncSetConnectCallback(ac, &AsyncRedis::OnConnect);
  redisAsyncSetDisconnectCallback(ac, &AsyncRedis::OnDisconnect);
  ctx_ = ac;
  ready_ = false;
  connect_deadline_ = SteadyClock::now() + std::chrono::milliseconds(config_.connect_timeout_ms);
  // hiredis queues these until the connect completes; later commands wait for their replies (Dispatch).
  const bool auth = NeedsAuth(config_);
  handshake_left_ = (auth ? 1 : 0) + (config_.db != 0 ? 1 : 0);
  handshaking_ = handshake_left_ > 0 ? ac : nullptr;
  auto step = [this, ac](const char* what) {
    return [this, ac, what](StatusOr<RedisValue> r) { HandshakeStep(ac, what, r); };
  };
  if (auth) Issue(Request{AuthCommand(config_), std::string(), step("AUTH"), 0, false});
  if (config_.db != 0) Issue(Request{{"SELECT", std::to_string(config_.db)}, std::string(), step("SELECT"), 0, false});
}

void AsyncRedis::HandshakeStep(redisAsyncContext* ac, const char* what, const StatusOr<RedisValue>& r) {
  if (handshaking_ != ac) return;  // an earlier step failed, or this connection is no longer the one in use
  std::vector<Request> waiting;
  if (r.ok()) {
    if (--handshake_left_ > 0) return;
    handshaking_ = nullptr;
    Connected();  // only now: a refused handshake is a failed connect, and keeps its backoff growing
    waiting.swap(awaiting_);
    for (auto& w : waiting) Dispatch(std::move(w));
    return;
  }
  // Refused (a wrong password, a database the server does not have) or the connection went down first: the
  // commands waiting get the reason, and the next one connects again after the backoff.
  handshaking_ = nullptr;
  handshake_left_ = 0;
  Status why(r.status().code(), std::string("redis ") + what + " on connect: " + r.status().message());
  SF_LOG_ERROR("{}", why.ToString());
  last_error_ = why;
  if (ctx_ == ac) DropConnection(why);
  ConnectFailed();
  waiting.swap(awaiting_);
  for (auto& w : waiting) Answer(w.cb, why);
}

void AsyncRedis::ConnectHandedOver() {
  if (opener_ == nullptr) opener_ = RedisClient::Lazy(config_);
  auto socket = opener_->OpenForHandOver();
  if (!socket.ok()) {
    last_error_ = socket.status();
    ConnectFailed();
    return;
  }
  auto* conn = new UvRespConnection(loop_->loop, std::move(*socket), direct_owner_.get());
  if (!conn->Start()) {  // it freed itself
    last_error_ = Status::Internal("redis: cannot attach the socket to the event loop");
    ConnectFailed();
    return;
  }
  direct_ = conn;
  direct_lost_.clear();
  Connected();  // AUTH, SELECT and the role check are done already
}

void AsyncRedis::Connected() {
  ready_ = true;
  connected_.store(true);
  connects_.fetch_add(1);
  if (!refused_after_connect_) backoff_.Reset();  // a full server accepts connects too
  if (outage_logged_) {
    if (config_.sentinel.nodes.empty()) {
      SF_LOG_INFO("redis {}:{}: connected again", config_.host, config_.port);
    } else {  // host/port are unused behind Sentinel
      SF_LOG_INFO("redis master '{}' (through the sentinels): connected again", config_.sentinel.master);
    }
    outage_logged_ = false;
  }
}

void AsyncRedis::ConnectFailed() {
  next_attempt_ = SteadyClock::now() + std::chrono::milliseconds(backoff_.Next());
  if (!outage_logged_) {
    // Once per outage, not once per attempt.
    SF_LOG_WARN("{} (reconnecting with backoff)", last_error_.message());
    outage_logged_ = true;
  }
}

void AsyncRedis::DropConnection(Status reason) {
  if (!HasConnection()) return;
  redisAsyncContext* ac = ctx_;
  UvRespConnection* conn = direct_;
  ctx_ = nullptr;
  direct_ = nullptr;
  ready_ = false;
  connected_.store(false);
  fail_reason_ = std::move(reason);
  // Either kind answers every pending command now, in order (hiredis with NULL replies).
  if (conn != nullptr) {
    conn->Close();  // frees itself once libuv has closed its handle
  } else {
    redisAsyncFree(ac);
  }
  fail_reason_.reset();
  deadlines_.clear();
}

void AsyncRedis::ConnectionLost(const std::string& why) {
  connected_.store(false);
  if (!outage_logged_) {
    SF_LOG_WARN("redis connection lost: {} (reconnecting on the next command)", why);
    outage_logged_ = true;
  }
}

void AsyncRedis::OnTick() {
  if (resolving_ != nullptr && SteadyClock::now() > connect_deadline_) {
    last_error_ = Status::Unavailable("redis connect " + Where() + ": looking up the host timed out after " +
                                      std::to_string(config_.connect_timeout_ms) + " ms");
    ConnectFailed();
    AbandonLookup(last_error_);
    return;
  }
  if (!HasConnection()) return;
  if (direct_ != nullptr && opener_->HandedOverMasterReplaced()) {
    // The sentinels announced another master: the one this talks to may still accept writes (cut off from
    // the sentinels, not from us), and whatever it takes now would be lost. Leave it; the next command asks.
    SF_LOG_WARN("redis: the sentinels announced a new master; leaving the old one");
    DropConnection(Status::Unavailable("redis master replaced by a failover (+switch-master)"));
    return;
  }
  auto now = SteadyClock::now();
  if (!ready_ && now > connect_deadline_) {
    last_error_ = Status::Unavailable("redis connect " + Where() + ": timed out after " +
                                      std::to_string(config_.connect_timeout_ms) + " ms");
    DropConnection(last_error_);
    ConnectFailed();
    return;
  }
  if (ready_ && !deadlines_.empty() && now > deadlines_.front()) {
    // Replies come in order: if the oldest is overdue, everything behind it is stuck too.
    SF_LOG_WARN("redis did not answer within {} ms; dropping the connection", config_.command_timeout_ms);
    DropConnection(Status::DeadlineExceeded("redis did not answer within the command timeout"));
  }
}

void AsyncRedis::OnReply(redisAsyncContext* ac, void* r, void* privdata) {
  std::unique_ptr<InFlight> f(static_cast<InFlight*>(privdata));
  AsyncRedis* self = f->self;
  if (r == nullptr) {
    // The connection failed or was freed before this reply arrived. hiredis calls the pending callbacks
    // before the disconnect callback: say "not connected" now, so a caller reacting to this failure sees it.
    self->connected_.store(false);
  }
  self->Deliver(std::move(f), static_cast<redisReply*>(r), ac->errstr != nullptr ? ac->errstr : "closed",
                self->ctx_ == ac);
}

void AsyncRedis::Deliver(std::unique_ptr<InFlight> f, redisReply* reply, const std::string& lost, bool current) {
  if (!deadlines_.empty()) deadlines_.pop_front();
  if (reply == nullptr) {
    if (fail_reason_) {
      Answer(f->req.cb, *fail_reason_);
    } else {
      Answer(f->req.cb, Status::Unavailable("redis connection lost: " + (lost.empty() ? std::string("closed") : lost)));
    }
    return;
  }
  RedisValue v = OwnReply(reply);
  if (v.is_error() && !f->req.raw_errors && !f->req.eval_source.empty() && v.str.rfind("NOSCRIPT", 0) == 0 &&
      current) {
    Request again = std::move(f->req);
    again.argv[0] = "EVAL";
    again.argv[1] = std::move(again.eval_source);
    again.eval_source.clear();
    Issue(std::move(again));
    return;
  }
  // -READONLY means the master was demoted under us (a failover): leave it once this command has its
  // answer, so the next one asks the sentinels, or without them connects again (a managed Redis moves its
  // DNS name to the promoted replica), instead of failing on a replica for as long as the connection lasts.
  const bool demoted = v.is_error() && current && HasConnection() && IsReadonlyError(v.str);
  // At maxclients the server closes this connection after saying so. Either way the next connect would be
  // accepted and refused the same way (a DNS name may point at the old primary for a while): back off as
  // after a failed connect (the connect's success does not reset it; a working reply does).
  const bool full = v.is_error() && IsMaxClientsError(v.str);
  if (full || demoted) {
    refused_after_connect_ = true;
    // Refused in the middle of AUTH/SELECT, the handshake's failure backs off (HandshakeStep).
    if (handshaking_ == nullptr) next_attempt_ = SteadyClock::now() + std::chrono::milliseconds(backoff_.Next());
    last_error_ = Status::Unavailable(v.str);
  } else if (current && refused_after_connect_) {  // the server works again
    refused_after_connect_ = false;
    backoff_.Reset();
  }
  if (v.is_error() && !f->req.raw_errors) {
    Answer(f->req.cb, TranslateRedisError(v.str));
  } else {
    Answer(f->req.cb, std::move(v));
  }
  if (demoted && HasConnection()) {  // (the answer's callback may have dropped it already)
    if (!outage_logged_) {  // once per outage, not per reconnect
      SF_LOG_WARN("redis master answered READONLY (demoted by a failover); {}",
                  config_.sentinel.nodes.empty() ? "connecting again" : "asking the sentinels again");
      outage_logged_ = true;
    }
    // On hiredis' own connection this runs inside its reply callback: it frees the context once the
    // callback returns, answering what is still pending then.
    DropConnection(Status::Unavailable("redis master demoted (READONLY): failover in progress"));
  }
}

void AsyncRedis::OnConnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<AsyncRedis*>(ac->data);
  if (status != REDIS_OK) {
    // hiredis frees the context right after this returns (pending callbacks get NULL replies).
    if (self->ctx_ == ac) {
      self->ctx_ = nullptr;
      self->ready_ = false;
    }
    self->last_error_ = Status::Unavailable("redis connect " + self->Where() + ": " +
                                            (ac->errstr != nullptr ? ac->errstr : "failed"));
    self->ConnectFailed();
    return;
  }
  if (self->handshaking_ == ac) {
    // Connected once AUTH/SELECT are answered (HandshakeStep): a refused password must not reset the backoff
    // and log "connected again" on every attempt.
    self->ready_ = true;
    return;
  }
  self->Connected();
}

void AsyncRedis::OnDisconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<AsyncRedis*>(ac->data);
  if (self->ctx_ == ac) {
    self->ctx_ = nullptr;
    self->ready_ = false;
  }
  if (status != REDIS_OK) {
    self->ConnectionLost(ac->errstr != nullptr ? ac->errstr : "closed");
  } else {
    self->connected_.store(false);
  }
}

}  // namespace streamfleet
