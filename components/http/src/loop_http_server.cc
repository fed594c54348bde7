#include "streamfleet/http/loop_http_server.h"

#include <uv.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <unordered_map>

#include "http_outbox.h"
#include "http_stream_loop.h"
#include "loop_http_connection.h"
#include "streamfleet/base/shutdown.h"
#include "worker_pool.h"

namespace streamfleet {

struct LoopHttpServer::Impl {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_async_t wake;
  uv_timer_t timer;
  LoopHttpContext ctx;
  std::unique_ptr<WorkerPool> pool;
  std::unique_ptr<HttpStreamLoop> streams;  // streamed answers, once their head is due
  std::unordered_map<uint64_t, std::unique_ptr<LoopHttpConnection>> conns;
  std::atomic<int64_t> open_conns{0};  // conns.size(), for other threads
  LoopHttpLimits limits;
  uint64_t next_id = 1;
  int port = 0;
  std::atomic<bool> stop_requested{false};
  std::atomic<int64_t> stop_grace_ms{LoopHttpServer::kStopGraceMs};
  uint64_t stop_deadline_ms = 0;  // loop time after which bodies still arriving are cut off
  bool finishing = false;
  LoopGuest guest;
  std::thread thread;

  static void OnConnection(uv_stream_t* server, int status);
  static void OnWake(uv_async_t* a);
  static void OnTimer(uv_timer_t* t);
  void BeginStop();
  void MaybeFinish();
  int64_t Open() const { return open_conns.load() + streams->open_sockets(); }
};

namespace {

Status ParseListen(const std::string& listen, sockaddr_storage* addr) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("listen address must be host:port: " + listen);
  std::string host = listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    return Status::InvalidArgument("bad port in " + listen);
  }
  if (port < 0 || port > 65535) return Status::InvalidArgument("bad port in " + listen);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    if (uv_ip6_addr(host.substr(1, host.size() - 2).c_str(), port, reinterpret_cast<sockaddr_in6*>(addr)) != 0) {
      return Status::InvalidArgument("bad IPv6 address in " + listen);
    }
    return Status::Ok();
  }
  if (host.empty()) host = "0.0.0.0";
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(addr)) != 0) {
    return Status::InvalidArgument("bad IPv4 address in " + listen);
  }
  return Status::Ok();
}

}  // namespace

void LoopHttpServer::Impl::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<Impl*>(server->data);
  if (status < 0 || self->ctx.stopping) return;
  // Before this one is counted: the cap is what may be open, this connection included. Refused connections
  // are open too, while their answer goes out and the client closes; past a tenth more (a flood) they are
  // closed at once, unanswered, so they cannot take the descriptors the cap is there to keep.
  const int64_t cap = self->limits.max_connections;
  const int64_t open = self->Open();
  const bool over = cap > 0 && open >= cap;
  const bool flood = over && open >= cap + cap / 10 + 16;
  uint64_t id = self->next_id++;
  auto& c = self->conns[id];
  c = std::make_unique<LoopHttpConnection>(self->ctx, id);
  self->open_conns.store(static_cast<int64_t>(self->conns.size()));
  if (uv_accept(server, c->stream()) != 0) {
    c->Close();  // freed by its close callback
    return;
  }
  if (flood) {
    c->Close();  // freed by its close callback
    if (self->limits.on_refused) self->limits.on_refused();
    return;
  }
  c->Start();
  if (over) {
    // Answered rather than reset, so the client knows to come back (or go to another replica); the refused
    // connection is open only until the answer is written and the client closes (the linger after it).
    c->RejectAndClose(503, "too_many_connections",
                      "this server holds its most connections (" + std::to_string(self->limits.max_connections) +
                          "); retry shortly or on another replica",
                      "Retry-After: 1\r\n");
    if (self->limits.on_refused) self->limits.on_refused();
  }
}

void LoopHttpServer::Impl::OnWake(uv_async_t* a) {
  auto* self = static_cast<Impl*>(a->data);
  for (auto& m : self->ctx.outbox->Take()) {
    using Kind = HttpOutMessage::Kind;
    if (m.kind == Kind::kResponse || m.kind == Kind::kStreamHead) --self->ctx.inflight;
    auto it = self->conns.find(m.conn);
    if (it == self->conns.end()) {  // the client went away before its answer
      if (m.kind == Kind::kStreamHead) LoopHttpConnection::RefuseStream(self->ctx, m.stream_id, m.stream);
      continue;
    }
    switch (m.kind) {
      case Kind::kResponse: it->second->OnResponse(std::move(m.bytes), std::move(m.hold)); break;
      case Kind::kResume: it->second->OnResume(); break;
      case Kind::kStreamHead:
        it->second->OnStreamHead(std::move(m.bytes), std::move(m.stream), m.stream_id);
        break;
      default: break;  // the stream loop's kinds are never posted here
    }
  }
  if (self->stop_requested.load() && !self->ctx.stopping) self->BeginStop();
  self->MaybeFinish();
}

void LoopHttpServer::Impl::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<Impl*>(t->data);
  uint64_t now = uv_now(&self->loop);
  for (auto& [id, c] : self->conns) c->CheckTimeout(now);
  if (self->ctx.stopping && now >= self->stop_deadline_ms) {
    for (auto& [id, c] : self->conns) {
      c->CutOffBody();
      c->GiveUpWriting();  // closes asynchronously: the map is not changed here
    }
  }
}

void LoopHttpServer::Impl::BeginStop() {
  ctx.stopping = true;
  stop_deadline_ms = uv_now(&loop) + static_cast<uint64_t>(std::max<int64_t>(0, stop_grace_ms.load()));
  uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
  for (auto& [id, c] : conns) c->OnStop();  // closes asynchronously: the map is not changed here
  streams->BeginStop();  // streams end now, not once the requests still being answered are
}

void LoopHttpServer::Impl::MaybeFinish() {
  if (!ctx.stopping || finishing || !conns.empty() || ctx.inflight > 0) return;
  finishing = true;
  if (guest.on_finish) guest.on_finish();  // its handles must close too, or uv_run never returns
  ctx.outbox->Close();  // late answers (none are expected) are dropped instead of touching a closed handle
  uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
}

LoopHttpServer::LoopHttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LoopHttpServer::~LoopHttpServer() { Stop(); }

int LoopHttpServer::port() const { return impl_->port; }

int64_t LoopHttpServer::open_connections() const { return impl_->Open(); }

StatusOr<std::unique_ptr<LoopHttpServer>> LoopHttpServer::Start(const std::string& listen, int threads,
                                                                 HttpHandler handler, int64_t request_timeout_ms,
                                                                 FastHttpHandler fast, LoopGuest guest,
                                                                 LoopHttpLimits limits) {
  sockaddr_storage addr{};
  Status parsed = ParseListen(listen, &addr);
  if (!parsed.ok()) return parsed;
  auto impl = std::make_unique<Impl>();
  Impl* s = impl.get();
  uv_loop_init(&s->loop);
  uv_tcp_init(&s->loop, &s->listener);
  s->listener.data = s;
  int r = uv_tcp_bind(&s->listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&s->listener), 1024, &Impl::OnConnection);
  if (r != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&s->listener), nullptr);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    return Status::Unavailable("cannot listen on " + listen + ": " + uv_strerror(r));
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_tcp_getsockname(&s->listener, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  uv_async_init(&s->loop, &s->wake, &Impl::OnWake);
  s->wake.data = s;
  uv_timer_init(&s->loop, &s->timer);
  s->timer.data = s;
  // Timeouts are checked on a tick: a slow client is cut off within a quarter of the timeout past it.
  uint64_t tick = static_cast<uint64_t>(std::clamp<int64_t>(request_timeout_ms / 4, 10, 250));
  uv_timer_start(&s->timer, &Impl::OnTimer, tick, tick);

  s->pool = std::make_unique<WorkerPool>(std::max(1, threads));
  s->streams = std::make_unique<HttpStreamLoop>();
  s->ctx.stream_outbox = s->streams->outbox();
  s->ctx.loop = &s->loop;
  s->ctx.handler = std::move(handler);
  s->ctx.fast = std::move(fast);
  s->ctx.pool = s->pool.get();
  s->ctx.outbox = std::make_shared<HttpOutbox>(&s->wake);
  s->ctx.request_timeout_ms = request_timeout_ms;
  s->ctx.keep_alive_ms = std::min<int64_t>(30000, request_timeout_ms);
  s->ctx.on_closed = [s](uint64_t id) {
    s->conns.erase(id);
    s->open_conns.store(static_cast<int64_t>(s->conns.size()));
    s->MaybeFinish();
  };
  s->guest = std::move(guest);
  s->limits = std::move(limits);
  s->thread = std::thread([s] {
    BlockSigpipeOnThisThread();  // a client that went away is a write error here, not the process's end
    if (s->guest.on_start) s->guest.on_start(&s->loop);
    uv_run(&s->loop, UV_RUN_DEFAULT);
  });
  return std::unique_ptr<LoopHttpServer>(new LoopHttpServer(std::move(impl)));
}

void LoopHttpServer::Stop(int64_t grace_ms) {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->stop_grace_ms.store(grace_ms);
  impl_->stop_requested.store(true);
  uv_async_send(&impl_->wake);
  impl_->thread.join();  // the loop ends once every handed-out request is answered and every socket closed
  impl_->streams->Stop();  // after: every stream handed over by then is ended
  impl_->pool->Stop();
  uv_loop_close(&impl_->loop);
}

}  // namespace streamfleet
