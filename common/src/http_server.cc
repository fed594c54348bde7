#include "streamfleet/common/http_server.h"

#include <civetweb.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>
#include <nlohmann/json.hpp>

namespace streamfleet {

namespace {

const char* Reason(int status) {
  switch (status) {
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
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string UrlDecode(const std::string& s) {
  std::string out(s.size() + 1, '\0');
  int n = mg_url_decode(s.data(), static_cast<int>(s.size()), out.data(), static_cast<int>(out.size()), 1);
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

}  // namespace

std::string JsonError(const std::string& error, const std::string& detail) {
  // The detail often quotes what the client sent (a path, an id), which can be any bytes: invalid UTF-8 is
  // replaced with U+FFFD, or dump() would throw and a 400 would turn into a 500 (found by fuzz/fuzz_route).
  return nlohmann::json{{"error", error}, {"detail", detail}}.dump(-1, ' ', false,
                                                                   nlohmann::json::error_handler_t::replace);
}

HttpExchange::HttpExchange(mg_connection* conn) : conn_(conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  method_ = ri->request_method ? ri->request_method : "";
  path_ = ri->local_uri ? ri->local_uri : "";
  query_ = ri->query_string ? ri->query_string : "";
  content_length_ = ri->content_length;  // -1 when absent (chunked or no body)
}

std::optional<std::string> HttpExchange::Header(const char* name) const {
  const char* v = mg_get_header(conn_, name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::optional<std::string> HttpExchange::QueryParam(const std::string& name) const {
  size_t pos = 0;
  while (pos <= query_.size()) {
    size_t amp = query_.find('&', pos);
    std::string item = query_.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    auto eq = item.find('=');
    std::string k = UrlDecode(item.substr(0, eq));
    if (k == name) return eq == std::string::npos ? std::string() : UrlDecode(item.substr(eq + 1));
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return std::nullopt;
}

int HttpExchange::Read(char* buf, size_t n) {
  int r = mg_read(conn_, buf, n);
  if (r > 0) body_read_ += r;
  // civetweb reports a connection closed before Content-Length bytes as a plain end of body: a truncated
  // request would pass for a complete one (an NDJSON body cut at a line boundary, say).
  if (r == 0 && content_length_ >= 0 && body_read_ < content_length_) return -1;
  return r;
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
  status_ = status;
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
  head += "Content-Type: " + content_type + "\r\n";
  head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  head += "\r\n";
  // One write: headers and body in separate small segments would wait for the client's delayed ACK.
  if (method_ != "HEAD") head += body;
  mg_write(conn_, head.data(), head.size());
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen, int threads,
                                                         HttpHandler handler, int64_t request_timeout_ms) {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->handler_ = std::move(handler);
  std::string port_opt = listen;
  if (port_opt.rfind("0.0.0.0:", 0) == 0) port_opt = port_opt.substr(8);  // civetweb: bare port = all addresses
  std::string threads_s = std::to_string(threads);
  std::string timeout_s = std::to_string(request_timeout_ms);
  // On a kept-alive connection civetweb waits keep_alive_timeout_ms for the next request's headers instead.
  std::string keep_alive_s = std::to_string(std::min<int64_t>(30000, request_timeout_ms));
  const char* options[] = {"listening_ports", port_opt.c_str(), "num_threads", threads_s.c_str(),
                           "enable_keep_alive", "yes", "keep_alive_timeout_ms", keep_alive_s.c_str(), "tcp_nodelay", "1",
                           "request_timeout_ms", timeout_s.c_str(), nullptr};
  mg_callbacks cb;
  std::memset(&cb, 0, sizeof(cb));
  s->ctx_ = mg_start(&cb, nullptr, options);
  if (s->ctx_ == nullptr) return Status::Unavailable("cannot listen on " + listen);
  mg_set_request_handler(s->ctx_, "/", &HttpServer::Dispatch, s.get());
  mg_server_port ports[4];
  int n = mg_get_server_ports(s->ctx_, 4, ports);
  if (n > 0) s->port_ = ports[0].port;
  return s;
}

int HttpServer::Dispatch(mg_connection* conn, void* cbdata) {
  auto* self = static_cast<HttpServer*>(cbdata);
  HttpExchange ex(conn);
  try {
    self->handler_(ex);
  } catch (const std::exception& e) {
    // A handler bug must not take the process down; the client gets a clear 500.
    if (ex.status() == 0) ex.RespondJson(500, JsonError("internal", e.what()));
  }
  if (ex.status() == 0) ex.RespondJson(500, JsonError("internal", "no response"));
  return ex.status();
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  if (ctx_ != nullptr) {
    mg_stop(ctx_);  // joins worker threads: in-flight requests finish first
    ctx_ = nullptr;
  }
}

}  // namespace streamfleet
