#pragma once
// A small HTTP/1.1 server over civetweb (thread per connection, keep-alive). Used for /metrics, /healthz,
// /readyz on every process and for the ingest API. Handlers run on civetweb worker threads, concurrently.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamfleet/common/status.h"

struct mg_connection;
struct mg_context;

namespace streamfleet {

class HttpExchange {
 public:
  explicit HttpExchange(mg_connection* conn);

  const std::string& method() const { return method_; }
  const std::string& path() const { return path_; }
  const std::string& query() const { return query_; }
  std::optional<std::string> Header(const char* name) const;
  // First value of a query parameter (URL-decoded).
  std::optional<std::string> QueryParam(const std::string& name) const;
  // Reads up to n body bytes (civetweb de-chunks Transfer-Encoding: chunked). 0 at the end, <0 on error,
  // including a connection that closed before Content-Length bytes arrived.
  int Read(char* buf, size_t n);
  // Reads the whole body, failing with kResourceExhausted past max_bytes.
  StatusOr<std::string> ReadBody(size_t max_bytes);

  void Respond(int status, const std::string& content_type, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers = {});
  void RespondJson(int status, const std::string& json_body,
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    Respond(status, "application/json", json_body, headers);
  }
  int status() const { return status_; }

 private:
  mg_connection* conn_;
  std::string method_, path_, query_;
  int64_t content_length_ = -1;
  int64_t body_read_ = 0;
  int status_ = 0;
};

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
};

// {"error": error, "detail": detail}; bytes of detail that are not UTF-8 become U+FFFD.
std::string JsonError(const std::string& error, const std::string& detail);

}  // namespace streamfleet
