#pragma once
// A small HTTP/1.1 server over civetweb (thread per connection, keep-alive). Used for /metrics, /healthz,
// /readyz on every process and the admin UI; ingest's API runs on LoopHttpServer (loop_http_server.h).
// Handlers run on civetweb worker threads, concurrently.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamfleet/http/http_exchange.h"
#include "streamfleet/base/status.h"

struct mg_connection;
struct mg_context;

namespace streamfleet {

using HttpHandler = std::function<void(HttpExchange&)>;

class HttpServer {
 public:
  // listen: "host:port" (port 0 = any free port). handler sees every request.
  // request_timeout_ms bounds how long a client may take to send a request's headers (all of them, from the
  // first byte: a slowloris client trickling a byte a second is cut off) and how long one body read may wait
  // for data. Each connection holds a worker thread while it is open, so this bounds how long a slow client
  // can keep one busy; `threads` slow clients at once still delay the others by up to this long.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen, int threads, HttpHandler handler,
                                                     int64_t request_timeout_ms = 60000);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Stops accepting and waits for in-flight requests to finish. Idempotent.
  void Stop();

 private:
  HttpServer() = default;
  static int Dispatch(mg_connection* conn, void* cbdata);

  HttpHandler handler_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  std::string local_host_;  // where Stop() connects to wake civetweb's master thread
};

}  // namespace streamfleet
