#include "streamfleet/http/http_server.h"

#include <civetweb.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
#include <nlohmann/json.hpp>

namespace streamfleet {

namespace {

// The civetweb side of HttpExchange: a request on a civetweb worker thread.
class CivetExchange final : public HttpExchange {
 public:
  explicit CivetExchange(mg_connection* conn);
  std::optional<std::string> Header(const char* name) const override;
  int Read(char* buf, size_t n) override;

 private:
  // Written before this returns: the hold goes with the exchange.
  void SendResponse(std::string bytes, std::shared_ptr<void> /*hold*/) override {
    mg_write(conn_, bytes.data(), bytes.size());
  }

  mg_connection* conn_;
  int64_t content_length_ = -1;
  int64_t body_read_ = 0;
};

CivetExchange::CivetExchange(mg_connection* conn) : conn_(conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  method_ = ri->request_method ? ri->request_method : "";
  path_ = ri->local_uri ? ri->local_uri : "";
  query_ = ri->query_string ? ri->query_string : "";
  content_length_ = ri->content_length;  // -1 when absent (chunked or no body)
}

std::optional<std::string> CivetExchange::Header(const char* name) const {
  const char* v = mg_get_header(conn_, name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

int CivetExchange::Read(char* buf, size_t n) {
  int r = mg_read(conn_, buf, n);
  if (r > 0) body_read_ += r;
  // civetweb reports a connection closed before Content-Length bytes as a plain end of body: a truncated
  // request would pass for a complete one (an NDJSON body cut at a line boundary, say).
  if (r == 0 && content_length_ >= 0 && body_read_ < content_length_) return -1;
  return r;
}

// The address a local client reaches a server listening on `listen` ("host:port") at: the wildcard means
// loopback.
std::string LocalHost(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0" || host == "*") return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

// Opens and closes one connection to the first of `addrs` that takes it; false when every one refused (the
// server closed its listening socket) or there is nothing to connect to.
bool Poke(const addrinfo* addrs) {
  for (const addrinfo* a = addrs; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const bool connected = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    close(fd);
    if (connected) return true;
  }
  return false;
}

}  // namespace

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
  s->local_host_ = LocalHost(listen);
  return s;
}

int HttpServer::Dispatch(mg_connection* conn, void* cbdata) {
  auto* self = static_cast<HttpServer*>(cbdata);
  CivetExchange ex(conn);
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
  if (ctx_ == nullptr) return;
  // civetweb's master thread sees the stop flag only between polls of the listening socket, which wait up to
  // 2 s each (SOCKET_TIMEOUT_QUANTUM): every stop took that long (a process's SIGTERM exit, every test with a
  // metrics server or a fake HTTP receiver). A connection ends the poll, so one is made every few ms until
  // mg_stop returns.
  // The address is looked up once, here; once no connection is taken any more the listening socket is closed
  // and the poking stops (the port may be another server's by then).
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  if (getaddrinfo(local_host_.c_str(), std::to_string(port_).c_str(), &hints, &addrs) != 0) addrs = nullptr;
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    while (!stopped.load() && Poke(addrs)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  mg_stop(ctx_);  // joins worker threads: in-flight requests finish first
  stopped = true;
  waker.join();
  if (addrs != nullptr) freeaddrinfo(addrs);
  ctx_ = nullptr;
}

}  // namespace streamfleet
