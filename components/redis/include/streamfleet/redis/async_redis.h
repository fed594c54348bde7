#pragma once
// AsyncRedis: one Redis connection on a libuv event loop running on its own thread.
//
// Why: a process with many request threads (ingest's HTTP handlers) shares ONE connection through it.
// Commands submitted while earlier ones are in flight go out together in one write, so concurrent requests
// are pipelined to Redis without any caller batching -- fewer connections and far fewer syscalls on both
// sides than a connection per thread.
//
// How the connection is made: plain TCP through hiredis's async context. Over TLS (hiredis 0.14 has none)
// or behind Sentinel, a RedisClient opens it exactly as for a blocking command -- TLS handshake with
// verification, the sentinels' master, AUTH, SELECT, a replica refused -- on the loop thread (bounded by the
// connect and command timeouts), and hands the socket over to a UvRespConnection (src/), which drives it on
// the loop with OpenSSL and hiredis's RESP reader. Everything below holds for both.
//
// Guarantees (tested against real redis-servers in components/redis/tests/async_redis_test.cc, tls_test.cc
// and sentinel_test.cc):
//  - every callback is called exactly once, on the loop thread: with the reply; with the translated error
//    reply (TranslateRedisError); kUnavailable when the connection is refused, fails or closes before the
//    reply came (the command may or may not have run -- effects are idempotent in this fleet);
//    kDeadlineExceeded when Redis does not answer within command_timeout_ms (+ the call's extra), after
//    which the connection is dropped, because a connection that skipped a reply is out of step for good.
//  - hiredis 0.14 has no async timeouts, so connect and command timeouts are enforced by a loop timer.
//  - reconnects lazily on the next command after a failure, with jittered backoff (JitteredBackoff);
//    while backing off, commands fail fast with kUnavailable instead of queueing without bound.
//  - AUTH and SELECT are sent first on every new connection.
//  - EVALSHA answered NOSCRIPT is re-sent once as EVAL, which also loads the script.
//  - behind Sentinel it leaves a master that answers -READONLY (demoted) or that a +switch-master replaced
//    (the process's SentinelWatcher): the commands in flight fail with kUnavailable, the next one asks the
//    sentinels. It never writes on to a master it knows was replaced.
//  - Redis Cluster is not supported: with config.cluster every command fails with kFailedPrecondition
//    (PooledRedisCommands is the cluster-capable RedisCommands).
// Callbacks must not block. The blocking Command/Eval are for other threads; called on the loop thread
// they would deadlock, so they return kFailedPrecondition there instead.
//
// Hosted on another component's loop (OnLoop): no thread of its own. A command sent on that loop's thread
// goes to the connection at once, and its callback runs on the same thread: a request served on an event
// loop and its Redis call never cross threads (ingest's fast path: docs/performance.md). The first command
// of a loop turn, and every 4th after it, is written at once rather than at the next writable event, so
// Redis works while the loop goes on. So a callback may run before Send returns (backing off, a refused
// connect, or a connection that such a write found broken: then every command pending on it, sent earlier
// by other requests, is answered inside this Send, and the rest of that loop turn's commands are answered
// "connection lost" rather than sent on a new connection behind the ones that failed): hold no lock
// across Send that a callback takes. A command sent from inside one of this client's callbacks waits for the loop's next turn (the
// connection may be in the middle of changing), behind commands sent directly in the same turn. Other
// threads may still send; their commands reach the loop through a wake-up as in the threaded form.
//
// A host name (not an IP address) is looked up on libuv's thread pool before each connect, within the
// connect timeout: hiredis would call a blocking getaddrinfo on the loop thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "streamfleet/base/backoff.h"
#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"

struct redisAsyncContext;
struct redisReply;
struct uv_loop_s;
struct uv_getaddrinfo_s;
struct addrinfo;

namespace streamfleet {

class UvRespConnection;

class AsyncRedis final : public RedisCommands {
 public:
  using Callback = std::function<void(StatusOr<RedisValue>)>;

  // Starts the loop thread; connects on the first command.
  explicit AsyncRedis(RedisConfig config);
  // Hosted on `loop`, which the caller runs. Call on the thread that runs (or will run) `loop`; that thread
  // is then this client's loop thread. Close() it there before the loop ends, and destroy it only after the
  // loop has run once more (libuv finishes closing handles on its next turn).
  static std::unique_ptr<AsyncRedis> OnLoop(RedisConfig config, uv_loop_s* loop);
  // Threaded: stops the loop. Either form: callbacks still pending are called with
  // kUnavailable("redis client stopped").
  ~AsyncRedis() override;
  // Hosted form only, on the loop thread: fails what is queued or in flight with kUnavailable, closes the
  // connection and the handles, and answers later commands with kUnavailable at once. Idempotent.
  void Close();
  AsyncRedis(const AsyncRedis&) = delete;
  AsyncRedis& operator=(const AsyncRedis&) = delete;

  // Thread-safe. `cb` runs on the loop thread.
  void Send(std::vector<std::string> argv, Callback cb, int extra_timeout_ms = 0);
  void SendEval(const LuaScript& script, const std::vector<std::string>& keys,
                const std::vector<std::string>& args, Callback cb);

  // Blocking forms for threads other than the loop's.
  StatusOr<RedisValue> Command(const std::vector<std::string>& argv, int extra_timeout_ms = 0) override;
  StatusOr<RedisValue> Eval(const LuaScript& script, const std::vector<std::string>& keys,
                            const std::vector<std::string>& args) override;
  // Queued together, so they go out in one write; error replies stay in their slots (not translated).
  StatusOr<std::vector<RedisValue>> Pipeline(const std::vector<std::vector<std::string>>& commands,
                                             int extra_timeout_ms = 0) override;

  bool connected() const { return connected_.load(); }
  // Successful connects so far (1 + reconnects): lets tests and metrics see a reconnect happen.
  int64_t connects() const { return connects_.load(); }

 private:
  struct Request {
    std::vector<std::string> argv;
    std::string eval_source;  // set for an EVALSHA: re-sent as EVAL with this source on NOSCRIPT
    Callback cb;
    int extra_timeout_ms = 0;
    bool raw_errors = false;  // deliver error replies as RedisValue{kError} (Pipeline) instead of a Status
  };
  struct InFlight;
  struct Resolving;    // a host name lookup in progress (the .cc)
  struct Loop;         // libuv handles, defined in the .cc so uv.h stays out of this header
  struct DirectOwner;  // receives a UvRespConnection's replies (src/uv_resp_connection.h)

  AsyncRedis(RedisConfig config, uv_loop_s* hosted_on);
  void RunLoop();
  // Sends now when on the loop thread outside any callback of ours (the connection's state is not in the
  // middle of changing); otherwise queues for the loop's wake-up.
  void Submit(Request req);
  // Calls a command's callback on the loop thread, marked so a command it sends is queued, not issued from
  // inside the reply or teardown being handled.
  void Answer(const Callback& cb, StatusOr<RedisValue> v);
  void OnWake();
  void OnTick();
  void Dispatch(Request req);
  void Issue(Request req);
  // Plain TCP: writes the buffered commands now when this one is the first of the loop iteration, or every
  // few after it, rather than at the next writable event (the .cc says why).
  void WriteEarly();
  void Connect();
  std::string Where() const;  // "host:port", for messages
  // Plain TCP to a host name: looked up on libuv's thread pool, then ConnectTo the address. Commands sent
  // meanwhile wait in awaiting_ (bounded by the connect timeout).
  void Resolve();
  static void OnResolved(uv_getaddrinfo_s* req, int status, addrinfo* res);
  void AbandonLookup(const Status& why);  // the lookup's result will be dropped; awaiting_ answered with `why`
  void ConnectTo(const std::string& ip);
  // TLS or Sentinel: a connection opened by opener_ and handed over to a UvRespConnection.
  void ConnectHandedOver();
  void Connected();
  void ConnectFailed();
  bool HasConnection() const { return ctx_ != nullptr || direct_ != nullptr; }
  // A reply (or nullptr: the connection went down first) for one in-flight command, from either connection
  // kind; `current` says the connection it came on is still the one in use (a NOSCRIPT retry goes there).
  void Deliver(std::unique_ptr<InFlight> f, redisReply* reply, const std::string& lost, bool current);
  void DropConnection(Status reason);
  // The connection went down by itself: not connected, and one warning per outage.
  void ConnectionLost(const std::string& why);
  void Shutdown();
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnConnect(const redisAsyncContext* ac, int status);
  static void OnDisconnect(const redisAsyncContext* ac, int status);

  const RedisConfig config_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;           // threaded form only
  std::thread::id loop_thread_;  // the thread that runs the loop (ours, or the host's)
  const bool hosted_;

  std::mutex mu_;                 // guards queue_ and stopping_
  std::vector<Request> queue_;    // submitted, not yet handed to hiredis
  bool stopping_ = false;

  // Loop-thread state.
  int answering_ = 0;    // callbacks of ours on the stack (Answer)
  bool eager_write_spent_ = false;  // this loop iteration wrote a command at once (WriteEarly)
  int buffered_since_write_ = 0;    // commands buffered since that write
  bool lost_by_early_write_ = false;  // that write found the connection broken, in this loop iteration
  Resolving* resolving_ = nullptr;  // the current host name lookup
  std::vector<Request> awaiting_;   // commands waiting for it, or for the handshake below
  // Plain TCP: the connection whose AUTH/SELECT replies are still owed (nullptr: none). Commands wait for them
  // in awaiting_: pipelined behind a refused AUTH or SELECT they ran as the default user or in database 0.
  redisAsyncContext* handshaking_ = nullptr;
  int handshake_left_ = 0;
  void HandshakeStep(redisAsyncContext* ac, const char* what, const StatusOr<RedisValue>& r);
  bool closed_ = false;  // Shutdown ran: the handles are closed
  redisAsyncContext* ctx_ = nullptr;     // plain TCP: hiredis's async context
  UvRespConnection* direct_ = nullptr;   // TLS / Sentinel: the handed-over connection (frees itself)
  std::unique_ptr<DirectOwner> direct_owner_;
  std::unique_ptr<RedisClient> opener_;  // opens the handed-over connections (and watches the sentinels)
  std::string direct_lost_;              // why the handed-over connection went down by itself
  bool ready_ = false;  // connect completed
  std::chrono::steady_clock::time_point connect_deadline_{};
  std::chrono::steady_clock::time_point next_attempt_{};
  JitteredBackoff backoff_;
  bool refused_after_connect_ = false;  // the last reply was the server's maxclients refusal (Deliver)
  std::deque<std::chrono::steady_clock::time_point> deadlines_;  // in-flight commands, in reply order
  std::optional<Status> fail_reason_;  // why pending callbacks are being failed right now
  Status last_error_ = Status::Unavailable("redis: not connected yet");
  bool outage_logged_ = false;

  std::atomic<bool> connected_{false};
  std::atomic<int64_t> connects_{0};
};

}  // namespace streamfleet
