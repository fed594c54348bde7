#include "http_stream_loop.h"

#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "streamfleet/base/shutdown.h"

namespace streamfleet {
namespace {

constexpr uint64_t kTickMs = 250;  // how often ended streams past kEndFlushMs are looked for
constexpr const char kLastChunk[] = "0\r\n\r\n";

struct StreamWrite {
  uv_write_t req;
  std::string data;
  int64_t counted;  // bytes of the stream's body (HttpStreamState::buffered)
  bool close_after;
};

void Uncount(const HttpOutMessage& m) {
  if (m.kind == HttpOutMessage::Kind::kStreamData && m.stream) {
    m.stream->buffered.fetch_sub(static_cast<int64_t>(m.bytes.size()));
  }
}

}  // namespace

// One handed-over socket: writes the stream's pieces in order and reads only to notice the client closing
// (what it sends is dropped, so that closing never meets unread bytes, which would reset the connection).
class StreamSocket {
 public:
  StreamSocket(HttpStreamLoop::Impl& loop, uint64_t id, std::shared_ptr<HttpStreamState> state);
  bool Open(int fd);  // false: closing (the descriptor is closed either way)
  void Write(std::string bytes, int64_t counted, bool close_after);
  void End();         // the last chunk, then close once it is written
  void Close();       // at once; frees itself through the loop
  void CheckFlushed(uint64_t now_ms) {
    if (ended_ && !closing_ && now_ms >= end_deadline_ms_) Close();
  }

 private:
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  HttpStreamLoop::Impl& loop_;
  const uint64_t id_;
  std::shared_ptr<HttpStreamState> state_;
  uv_tcp_t tcp_;
  bool ended_ = false;
  bool closing_ = false;
  uint64_t end_deadline_ms_ = 0;
};

struct HttpStreamLoop::Impl {
  uv_loop_t loop;
  uv_async_t wake;
  uv_timer_t tick;
  std::shared_ptr<HttpOutbox> outbox;
  std::unordered_map<uint64_t, std::unique_ptr<StreamSocket>> sockets;
  std::atomic<int64_t> open_sockets{0};  // sockets.size(), for other threads (LoopHttpServer's connection cap)
  // Written before their socket came (kAdopt), in order.
  std::unordered_map<uint64_t, std::vector<HttpOutMessage>> waiting;
  std::vector<char> read_buffer = std::vector<char>(16 * 1024);  // what clients send is dropped
  std::atomic<bool> drain_requested{false};   // BeginStop: end every stream, and each one handed over later
  std::atomic<bool> finish_requested{false};  // Stop: nothing more can be handed over; close once all ended
  bool draining = false;
  bool finishing = false;
  bool finished = false;
  std::thread thread;

  static void OnWake(uv_async_t* a);
  static void OnTick(uv_timer_t* t);
  void Handle(HttpOutMessage m);
  void Adopt(HttpOutMessage m);
  void Forget(uint64_t id) {
    sockets.erase(id);
    open_sockets.store(static_cast<int64_t>(sockets.size()));
    MaybeFinish();
  }
  void MaybeFinish();
};

StreamSocket::StreamSocket(HttpStreamLoop::Impl& loop, uint64_t id, std::shared_ptr<HttpStreamState> state)
    : loop_(loop), id_(id), state_(std::move(state)) {
  uv_tcp_init(&loop_.loop, &tcp_);
  tcp_.data = this;
}

bool StreamSocket::Open(int fd) {
  if (uv_tcp_open(&tcp_, fd) != 0) {
    ::close(fd);
    Close();
    return false;
  }
  auto alloc = [](uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto& storage = static_cast<StreamSocket*>(h->data)->loop_.read_buffer;
    *buf = uv_buf_init(storage.data(), static_cast<unsigned>(storage.size()));
  };
  if (uv_read_start(stream(), alloc, &OnRead) != 0) {
    Close();
    return false;
  }
  return true;
}

void StreamSocket::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
  if (n < 0) static_cast<StreamSocket*>(s->data)->Close();  // the client went away (or the socket failed)
}

void StreamSocket::Write(std::string bytes, int64_t counted, bool close_after) {
  if (closing_ || (ended_ && !close_after)) {
    if (counted > 0) state_->buffered.fetch_sub(counted);
    return;
  }
  auto* w = new StreamWrite{{}, std::move(bytes), counted, close_after};
  w->req.data = this;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int r = uv_write(&w->req, stream(), &b, 1, [](uv_write_t* req, int status) {
    // Write callbacks run before the handle's close callback, also for writes a close cancelled.
    auto* w = reinterpret_cast<StreamWrite*>(req);
    auto* s = static_cast<StreamSocket*>(req->data);
    if (w->counted > 0) s->state_->buffered.fetch_sub(w->counted);
    if (status < 0 || w->close_after) s->Close();
    delete w;
  });
  if (r < 0) {
    if (counted > 0) state_->buffered.fetch_sub(counted);
    delete w;
    Close();
  }
}

void StreamSocket::End() {
  if (ended_ || closing_) return;
  state_->closed.store(true);
  Write(kLastChunk, 0, true);  // an SSE client reconnects with its Last-Event-ID after a complete end
  ended_ = true;
  end_deadline_ms_ = uv_now(&loop_.loop) + HttpStreamLoop::kEndFlushMs;
}

void StreamSocket::Close() {
  if (closing_) return;
  closing_ = true;
  state_->closed.store(true);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
    auto* s = static_cast<StreamSocket*>(h->data);
    s->loop_.Forget(s->id_);  // frees s
  });
}

void HttpStreamLoop::Impl::OnWake(uv_async_t* a) {
  auto* self = static_cast<Impl*>(a->data);
  // Read before taking the queue: Stop sets finish_requested once the server's loop has ended, so a queue
  // taken after seeing it holds every kAdopt there will ever be.
  const bool finish = self->finish_requested.load();
  const bool drain = finish || self->drain_requested.load();
  for (auto& m : self->outbox->Take()) self->Handle(std::move(m));
  if (drain && !self->draining) {
    self->draining = true;
    // A complete end: an SSE client reconnects (to another replica) with its Last-Event-ID.
    for (auto& [id, s] : self->sockets) s->End();  // End only writes: the map is not changed here
  }
  if (finish) self->finishing = true;
  self->MaybeFinish();
}

void HttpStreamLoop::Impl::OnTick(uv_timer_t* t) {
  auto* self = static_cast<Impl*>(t->data);
  uint64_t now = uv_now(&self->loop);
  // Close only asks libuv to close: the socket leaves the map in its close callback, not during this loop.
  for (auto& [id, s] : self->sockets) s->CheckFlushed(now);
}

void HttpStreamLoop::Impl::Handle(HttpOutMessage m) {
  using Kind = HttpOutMessage::Kind;
  if (m.kind == Kind::kAdopt) {
    Adopt(std::move(m));
    return;
  }
  auto it = sockets.find(m.conn);
  if (it == sockets.end()) {
    // Not handed over yet: keep it for the socket -- unless the stream is over (its socket closed, or it
    // will never come), which is also how writes after the end are let go.
    if (m.stream && !m.stream->closed.load() && !finishing) {
      waiting[m.conn].push_back(std::move(m));
    } else {
      Uncount(m);
    }
    return;
  }
  if (m.kind == Kind::kStreamData) {
    int64_t n = static_cast<int64_t>(m.bytes.size());
    it->second->Write(std::move(m.bytes), n, false);
  } else if (m.kind == Kind::kStreamEnd) {
    it->second->End();
  }
}

void HttpStreamLoop::Impl::Adopt(HttpOutMessage m) {
  std::vector<HttpOutMessage> before;
  if (auto w = waiting.find(m.conn); w != waiting.end()) {
    before = std::move(w->second);
    waiting.erase(w);
  }
  if (m.fd < 0) {
    if (m.stream) m.stream->closed.store(true);
    for (const auto& b : before) Uncount(b);
    return;
  }
  auto& slot = sockets[m.conn];
  slot = std::make_unique<StreamSocket>(*this, m.conn, m.stream);
  open_sockets.store(static_cast<int64_t>(sockets.size()));
  StreamSocket* s = slot.get();
  if (!s->Open(m.fd)) {
    for (const auto& b : before) Uncount(b);
    return;
  }
  s->Write(std::move(m.bytes), 0, false);  // the head
  for (auto& b : before) Handle(std::move(b));
  if (draining) s->End();  // handed over while the server stops: what was written, then the end
}

void HttpStreamLoop::Impl::MaybeFinish() {
  if (!finishing || finished || !sockets.empty()) return;
  finished = true;
  for (auto& [id, ms] : waiting) {  // writes to streams whose socket never came: every kAdopt was handled
    for (const auto& m : ms) Uncount(m);
  }
  waiting.clear();
  outbox->Close();  // later writes are dropped
  uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
}

HttpStreamLoop::HttpStreamLoop() : impl_(std::make_unique<Impl>()) {
  Impl* s = impl_.get();
  uv_loop_init(&s->loop);
  uv_async_init(&s->loop, &s->wake, &Impl::OnWake);
  s->wake.data = s;
  uv_timer_init(&s->loop, &s->tick);
  s->tick.data = s;
  uv_timer_start(&s->tick, &Impl::OnTick, kTickMs, kTickMs);
  s->outbox = std::make_shared<HttpOutbox>(&s->wake);
  s->thread = std::thread([s] {
    BlockSigpipeOnThisThread();  // a client that went away is a write error here, not the process's end
    uv_run(&s->loop, UV_RUN_DEFAULT);
  });
}

HttpStreamLoop::~HttpStreamLoop() { Stop(); }

const std::shared_ptr<HttpOutbox>& HttpStreamLoop::outbox() const { return impl_->outbox; }

int64_t HttpStreamLoop::open_sockets() const { return impl_->open_sockets.load(); }

uint64_t HttpStreamLoop::NextId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

void HttpStreamLoop::BeginStop() {
  if (impl_->drain_requested.exchange(true)) return;
  uv_async_send(&impl_->wake);  // the wake handle lives until finish_requested was seen
}

void HttpStreamLoop::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->finish_requested.store(true);
  uv_async_send(&impl_->wake);
  impl_->thread.join();
  uv_loop_close(&impl_->loop);
}

}  // namespace streamfleet
