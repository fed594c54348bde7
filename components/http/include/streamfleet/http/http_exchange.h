#pragma once
// One HTTP request and its answer, as handlers see it. Two servers implement it: HttpServer (civetweb,
// thread per connection; metrics and admin servers) and LoopHttpServer (libuv + http_parser; ingest).
// Handlers are written once against this interface and run unchanged on either.
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "streamfleet/base/status.h"

namespace streamfleet {

class HttpExchange {
 public:
  virtual ~HttpExchange() = default;

  const std::string& method() const { return method_; }
  const std::string& path() const { return path_; }
  const std::string& query() const { return query_; }
  virtual std::optional<std::string> Header(const char* name) const = 0;
  // First value of a query parameter (URL-decoded, '+' as space).
  std::optional<std::string> QueryParam(const std::string& name) const;
  // Reads up to n body bytes (de-chunked when Transfer-Encoding: chunked). 0 at the end, <0 on error,
  // including a connection that closed before Content-Length bytes arrived, or no data for the request timeout.
  virtual int Read(char* buf, size_t n) = 0;
  // Reads the whole body, failing with kResourceExhausted past max_bytes.
  StatusOr<std::string> ReadBody(size_t max_bytes);

  // Answers the request; only the first call counts, also when two threads answer at once (the ingest fast
  // path answers from the Redis loop thread while the HTTP loop may answer a handler's exception).
  void Respond(int status, const std::string& content_type, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers = {});
  void RespondJson(int status, const std::string& json_body,
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    Respond(status, "application/json", json_body, headers);
  }
  int status() const { return status_.load(); }

 protected:
  // Writes one complete response (status line, headers and body in one buffer).
  virtual void SendResponse(std::string bytes) = 0;

  std::string method_, path_, query_;

 private:
  std::atomic<int> status_{0};
};

// {"error": error, "detail": detail}; bytes of detail that are not UTF-8 become U+FFFD.
std::string JsonError(const std::string& error, const std::string& detail);

// "Bad Request" for 400, ...; "Status" for codes it does not know.
const char* HttpReason(int status);

}  // namespace streamfleet
