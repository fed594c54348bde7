#pragma once
// An HTTP/1.1 server on one libuv event loop (sockets, parsing with nodejs http_parser, timeouts, writes)
// plus a small worker-thread pool for handlers that block. Serves the same HttpExchange API as HttpServer.
//
// Why (docs/performance.md, ingest): civetweb's thread per connection plus the hand-off to the Redis
// loop thread cost about four context switches per request; here a request whose body is complete can be
// answered without any thread blocking: `fast` runs on the loop thread and may answer later from any thread
// (ingest answers from the AsyncRedis callback; replies come back to the loop batched, one wake for many).
//
// Per connection: keep-alive; pipelined requests are answered in order (one request at a time: the next is
// parsed once the previous answer is written); Content-Length and chunked bodies; a head over
// kMaxHeaderBytes or kMaxHeaderLines -> 431 and close; malformed HTTP -> 400 and close; a request whose body was not read to
// the end is answered and then the connection is closed. request_timeout_ms bounds how long a client may
// take to send a request's headers (from the first byte: slowloris), how long a body may stall, and (capped
// at 30 s) how long an idle keep-alive connection stays open.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "streamfleet/http/http_exchange.h"
#include "streamfleet/http/http_server.h"
#include "streamfleet/base/status.h"

struct uv_loop_s;

namespace streamfleet {

// Called on the loop thread for a request whose body is complete (bodies up to kMaxFastBodyBytes with a
// Content-Length, not chunked, not NDJSON or SSE: those stream to a worker as they arrive). Returns false to decline: the request then goes to `handler` on a worker thread. When it
// returns true it owns the answer: ex->Respond from any thread, exactly once, without blocking the loop.
using FastHttpHandler = std::function<bool(const std::shared_ptr<HttpExchange>& ex)>;

// Something that lives on the server's loop thread beside the connections, so `fast` can use it without a
// thread hand-off (ingest: its fast path's Redis connection, an AsyncRedis::OnLoop). on_start runs on the
// loop thread before the first request; on_finish once the server is finishing (every request answered,
// every connection closed): it must close the guest's handles there, or the loop never ends.
struct LoopGuest {
  std::function<void(uv_loop_s* loop)> on_start;
  std::function<void()> on_finish;
};

// Connection admission. A process has a file descriptor and some memory per open connection; without a cap a
// flood of connections (or one client's leak) takes the descriptors its Redis connections and every other
// client need.
struct LoopHttpLimits {
  // Open connections (requests' and handed-over streams') at which a new one is answered 503
  // too_many_connections (Connection: close, Retry-After: 1) and closed; 0: no cap.
  int64_t max_connections = 0;
  std::function<void()> on_refused;  // on the loop thread, for each connection refused so
};

class LoopHttpServer {
 public:
  static constexpr size_t kMaxHeaderBytes = 16 * 1024;
  static constexpr size_t kMaxHeaderLines = 64;  // civetweb's limit, which clients of ingest already meet
  static constexpr size_t kMaxFastBodyBytes = 64 * 1024;

  // listen: "host:port" (IPv4, or [IPv6]:port; port 0 = any free port). handler runs on one of `threads`
  // worker threads and may block (reading a streamed body, a synchronous Redis call).
  static StatusOr<std::unique_ptr<LoopHttpServer>> Start(const std::string& listen, int threads, HttpHandler handler,
                                                         int64_t request_timeout_ms = 60000,
                                                         FastHttpHandler fast = nullptr, LoopGuest guest = {},
                                                         LoopHttpLimits limits = {});
  ~LoopHttpServer();
  LoopHttpServer(const LoopHttpServer&) = delete;
  LoopHttpServer& operator=(const LoopHttpServer&) = delete;

  int port() const;
  // Connections open now: the loop's and the handed-over streams' (any thread).
  int64_t open_connections() const;
  // Stops accepting, closes idle connections, waits for every request already handed to a handler to be
  // answered and written, then closes the rest. Idempotent. A request body still arriving after grace_ms (a
  // long NDJSON/SSE upload, a client trickling bytes) is cut off: its handler sees a read error and answers
  // with what it has, so a SIGTERM'd process exits within its termination grace period (Kubernetes: 30 s).
  static constexpr int64_t kStopGraceMs = 20000;
  void Stop(int64_t grace_ms = kStopGraceMs);

  struct Impl;  // public for the connection code in src/; defined in loop_http_server.cc

 private:
  explicit LoopHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamfleet
