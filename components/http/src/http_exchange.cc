#include "streamfleet/http/http_exchange.h"

#include <strings.h>

#include <nlohmann/json.hpp>

#include "streamfleet/base/text.h"

namespace streamfleet {


const char* HttpReason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 302: return "Found";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string JsonError(const std::string& error, const std::string& detail) {
  // The detail often quotes what the client sent (a path, an id), which can be any bytes: invalid UTF-8 is
  // replaced with U+FFFD, or dump() would throw and a 400 would turn into a 500 (found by fuzz/fuzz_route).
  return nlohmann::json{{"error", error}, {"detail", detail}}.dump(-1, ' ', false,
                                                                   nlohmann::json::error_handler_t::replace);
}

std::optional<std::string> BearerToken(const std::optional<std::string>& authorization) {
  if (!authorization) return std::nullopt;
  const std::string& v = *authorization;
  constexpr size_t kScheme = 6;  // "Bearer"
  if (v.size() <= kScheme || strncasecmp(v.data(), "Bearer", kScheme) != 0 || v[kScheme] != ' ') return std::nullopt;
  size_t at = v.find_first_not_of(' ', kScheme);
  if (at == std::string::npos) return std::nullopt;
  return v.substr(at);
}

std::optional<std::string> HttpExchange::QueryParam(const std::string& name) const {
  size_t pos = 0;
  while (pos <= query_.size()) {
    size_t amp = query_.find('&', pos);
    std::string_view item = std::string_view(query_).substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    auto eq = item.find('=');
    std::string k = UrlDecode(item.substr(0, eq), true);
    if (k == name) return eq == std::string::npos ? std::string() : UrlDecode(item.substr(eq + 1), true);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return std::nullopt;
}

StatusOr<std::string> HttpExchange::ReadBody(size_t max_bytes) {
  std::string body;
  std::vector<char> buffer(16384);  // heap: civetweb worker stacks are small
  char* buf = buffer.data();
  while (true) {
    int n = Read(buf, buffer.size());
    if (n < 0) {
      return Status::InvalidArgument("error reading the request body (malformed chunked encoding, or the client "
                                     "stopped sending)");
    }
    if (n == 0) break;
    if (body.size() + static_cast<size_t>(n) > max_bytes) {
      return Status::ResourceExhausted("request body larger than " + std::to_string(max_bytes) + " bytes");
    }
    body.append(buf, static_cast<size_t>(n));
  }
  return body;
}

void HttpExchange::Respond(int status, const std::string& content_type, const std::string& body,
                           const std::vector<std::pair<std::string, std::string>>& headers) {
  int unanswered = 0;
  // Answered already: a second answer would corrupt the connection (or answer the next pipelined request).
  if (!status_.compare_exchange_strong(unanswered, status)) return;
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + HttpReason(status) + "\r\n";
  head += "Content-Type: " + content_type + "\r\n";
  head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  for (const auto& [k, v] : answer_headers_) head += k + ": " + v + "\r\n";
  head += "\r\n";
  // One write: headers and body in separate small segments would wait for the client's delayed ACK.
  if (method_ != "HEAD") head += body;
  SendResponse(std::move(head), std::move(answer_hold_));
}

std::shared_ptr<HttpStream> HttpExchange::StartStream(
    int status, const std::string& content_type, const std::vector<std::pair<std::string, std::string>>& headers) {
  if (!CanStream()) return nullptr;
  int unanswered = 0;
  if (!status_.compare_exchange_strong(unanswered, status)) return nullptr;
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + HttpReason(status) + "\r\n";
  head += "Content-Type: " + content_type + "\r\n";
  // Chunked, so a client can tell a complete stream (the last chunk) from a cut connection.
  head += "Transfer-Encoding: chunked\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  for (const auto& [k, v] : answer_headers_) head += k + ": " + v + "\r\n";
  head += "\r\n";
  return OpenStream(std::move(head));
}

}  // namespace streamfleet
