#include "loop_http_connection.h"

#include <fcntl.h>
#include <strings.h>

#include <cstring>

#include "streamfleet/http/http_exchange.h"
#include "streamfleet/base/text.h"

namespace streamfleet {

namespace {

constexpr size_t kPipeCapacity = 64 * 1024;
// After the last answer on a connection that is being closed, how long to keep reading (and discarding)
// until the client closes too: closing with unread bytes in the socket sends a RST, which can destroy the
// answer before the client has read it (a 413 to a client still sending its body, say).
constexpr uint64_t kLingerMs = 2000;

// NDJSON and SSE bodies are read line by line as they arrive: handed to a worker at the end of the head,
// so lines are parsed (and appended) while the rest is still on its way, instead of after it all came.
bool IsStreamingMediaType(const std::vector<std::pair<std::string, std::string>>& headers) {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), "Content-Type") != 0) continue;
    return strncasecmp(v.c_str(), "application/x-ndjson", 20) == 0 ||
           strncasecmp(v.c_str(), "text/event-stream", 17) == 0;
  }
  return false;
}

LoopHttpConnection* Self(http_parser* p) { return static_cast<LoopHttpConnection*>(p->data); }

// RFC 9110 section 5.6.2 tchar. http_parser 2.9 (not built strict) lets more into a header name, a space
// among them: "Transfer-Encoding : chunked" would be no header to it but chunked to a lenient proxy.
bool IsToken(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char ch : s) {
    bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch != 0 && std::strchr("!#$%&'*+-.^_`|~", ch) != nullptr);
    if (!ok) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Why a head http_parser accepted is refused anyway, "" when it is not. Requests are framed one way only:
// a header name must be a token, and a Transfer-Encoding must be exactly one header saying "chunked" (any
// other coding, or a list, is framed differently by different parsers; RFC 9112 section 6.3).
std::string StrictHeadProblem(const std::vector<std::pair<std::string, std::string>>& headers) {
  int transfer_encodings = 0;
  for (const auto& [name, value] : headers) {
    if (!IsToken(name)) return "header name \"" + TextExcerpt(name, 64) + "\" is not an RFC 9110 token";
    if (strcasecmp(name.c_str(), "Transfer-Encoding") != 0) continue;
    if (++transfer_encodings > 1) return "more than one Transfer-Encoding header";
    std::string_view coding = TrimOws(value);
    if (coding.size() != 7 || strncasecmp(coding.data(), "chunked", 7) != 0) {
      return "Transfer-Encoding \"" + TextExcerpt(value, 64) + "\" is not supported (only chunked)";
    }
  }
  return "";
}

struct WriteReq {
  uv_write_t req;
  std::string data;
  bool close_after;
  // Released with the request: when the write completes, fails, or is cancelled by the handle's close.
  std::shared_ptr<void> hold;
};

}  // namespace

http_parser_settings LoopHttpConnection::Settings() {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_message_begin = &OnMessageBegin;
  s.on_url = &OnUrl;
  s.on_header_field = &OnHeaderField;
  s.on_header_value = &OnHeaderValue;
  s.on_headers_complete = &OnHeadersComplete;
  s.on_body = &OnBody;
  s.on_message_complete = &OnMessageComplete;
  return s;
}

LoopHttpConnection::LoopHttpConnection(LoopHttpContext& ctx, uint64_t id) : ctx_(ctx), id_(id) {
  uv_tcp_init(ctx_.loop, &tcp_);
  tcp_.data = this;
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  deadline_ms_ = uv_now(ctx_.loop) + static_cast<uint64_t>(ctx_.request_timeout_ms);
}

namespace {

// Whether a response head already has a Connection header (case-insensitive name at a line start).
bool HasConnectionHeader(std::string_view head) {
  for (size_t at = head.find("\r\n"); at != std::string_view::npos; at = head.find("\r\n", at + 2)) {
    std::string_view line = head.substr(at + 2, 11);
    if (line.size() == 11 && strncasecmp(line.data(), "Connection:", 11) == 0) return true;
  }
  return false;
}

}  // namespace

void LoopHttpConnection::Start() {
  uv_tcp_nodelay(&tcp_, 1);
  UpdateReading();
}

bool LoopHttpConnection::WriteBacklogged() const {
  return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_)) > kMaxQueuedWriteBytes;
}

void LoopHttpConnection::UpdateReading() {
  // Not while answers pile up unsent: a client that pipelines requests without reading the answers would
  // otherwise grow our memory without bound (reading resumes from the write callback; an idle connection
  // times out meanwhile).
  bool want = !closing_ && (lingering_ || (!broken_ && !pipe_full_ && !(dispatched_ && body_complete_) &&
                                           !WriteBacklogged()));
  if (want && !reading_) {
    reading_ = uv_read_start(stream(), &OnAlloc, &OnRead) == 0;
  } else if (!want && reading_) {
    uv_read_stop(stream());
    reading_ = false;
  }
}

void LoopHttpConnection::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  // One buffer per server (loop thread): every read is parsed (or copied to unparsed_) before the next one.
  // Not a thread_local array: static TLS is carved out of every thread's stack, and civetweb's worker
  // threads (metrics servers in the same process) have small stacks -- 64 KiB of TLS overflowed them.
  auto& storage = static_cast<LoopHttpConnection*>(h->data)->ctx_.read_buffer;
  *buf = uv_buf_init(storage.data(), static_cast<unsigned>(storage.size()));
}

void LoopHttpConnection::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<LoopHttpConnection*>(s->data);
  if (n > 0) {
    c->Feed(buf->base, static_cast<size_t>(n));
  } else if (n < 0) {
    // The client closed (or the socket failed). A request being answered is still answered when the client
    // only shut down its sending side; a body still streaming to a handler ends in an error there.
    if (c->dispatched_) {
      if (c->pipe_ && !c->body_complete_) c->pipe_->Fail();
      c->broken_ = true;
      c->UpdateReading();
    } else if (c->buffer_body_ && c->in_message_ && !c->lingering_) {
      c->AbandonBufferedBody();
    } else if (n == UV_EOF && !c->lingering_ && !c->hand_over_ &&
               uv_stream_get_write_queue_size(c->stream()) > 0) {
      // Only the client's sending side is shut, and an answer is still going out: closing the handle now would
      // cancel the rest of it. CheckTimeout bounds a client that does not read it.
      c->CloseWhenWritten(/*unread_input=*/false);
    } else {
      c->Close();
    }
  }
}

void LoopHttpConnection::Feed(const char* data, size_t n) {
  if (closing_ || lingering_ || broken_) return;  // lingering: discard until the client closes
  if (unparsed_.empty()) {
    size_t k = Execute(data, n);
    if (!closing_ && !broken_ && k < n) unparsed_.append(data + k, n - k);
  } else {
    unparsed_.append(data, n);
    ParseBuffered();
  }
  UpdateReading();
}

void LoopHttpConnection::ParseBuffered() {
  if (unparsed_.empty() || closing_ || broken_ || (dispatched_ && body_complete_) || WriteBacklogged()) return;
  size_t k = Execute(unparsed_.data(), unparsed_.size());
  if (closing_ || broken_) {
    unparsed_.clear();
  } else {
    unparsed_.erase(0, k);
  }
}

size_t LoopHttpConnection::Execute(const char* data, size_t n) {
  static const http_parser_settings settings = Settings();
  // Every request's bytes start a call here (the parser pauses at each request's end); while it is paused,
  // the bytes are the next request's and are scanned when it resumes.
  if (HTTP_PARSER_ERRNO(&parser_) != HPE_PAUSED && !framing_.Scan(data, n)) {
    if (dispatched_) {
      // A chunked body a handler is reading: it sees a read error and answers 400, as for what the parser
      // itself refuses (below).
      if (pipe_) pipe_->Fail();
      broken_ = true;
    } else {
      RejectAndClose(400, "bad_request", framing_.reason());
    }
    return n;
  }
  size_t k = http_parser_execute(&parser_, &settings, data, n);
  auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err == HPE_PAUSED) return k;  // a complete request: the rest waits for its answer
  if (err != HPE_OK) {
    if (!refusal_.empty()) {
      RejectAndClose(400, "bad_request", refusal_);
    } else if (header_too_large_ && !dispatched_) {
      RejectAndClose(431, "headers_too_large",
                     "request head over " + std::to_string(LoopHttpServer::kMaxHeaderBytes) + " bytes or " +
                         std::to_string(LoopHttpServer::kMaxHeaderLines) + " header lines");
    } else if (dispatched_) {
      // Broken chunked encoding in a body a handler is reading: it sees a read error and answers 400.
      if (pipe_) pipe_->Fail();
      broken_ = true;
    } else {
      RejectAndClose(400, "bad_request", std::string("malformed HTTP request: ") + http_errno_description(err));
    }
    return n;
  }
  return k;
}

bool LoopHttpConnection::CountHeaderBytes(size_t n) {
  // Trailers of a chunked body already handed to a handler: ignored (the head was complete and dispatched).
  if (dispatched_) return true;
  header_bytes_ += n;
  if (header_bytes_ > LoopHttpServer::kMaxHeaderBytes) {
    header_too_large_ = true;
    return false;
  }
  return true;
}

int LoopHttpConnection::OnMessageBegin(http_parser* p) {
  auto* c = Self(p);
  c->in_message_ = true;
  c->head_ = {};
  c->url_.clear();
  c->body_.clear();
  c->header_bytes_ = 0;
  c->last_was_value_ = false;
  c->body_complete_ = false;
  c->buffer_body_ = false;
  // The whole head must arrive within the request timeout, counted from its first byte (slowloris).
  c->deadline_ms_ = uv_now(c->ctx_.loop) + static_cast<uint64_t>(c->ctx_.request_timeout_ms);
  return 0;
}

int LoopHttpConnection::OnUrl(http_parser* p, const char* at, size_t n) {
  auto* c = Self(p);
  if (!c->CountHeaderBytes(n)) return -1;
  c->url_.append(at, n);
  return 0;
}

int LoopHttpConnection::OnHeaderField(http_parser* p, const char* at, size_t n) {
  auto* c = Self(p);
  if (c->dispatched_) return 0;  // a trailer (see CountHeaderBytes)
  if (!c->CountHeaderBytes(n)) return -1;
  if (c->head_.headers.empty() || c->last_was_value_) {
    if (c->head_.headers.size() >= LoopHttpServer::kMaxHeaderLines) {
      c->header_too_large_ = true;
      return -1;
    }
    c->head_.headers.emplace_back();
  }
  c->last_was_value_ = false;
  c->head_.headers.back().first.append(at, n);
  return 0;
}

int LoopHttpConnection::OnHeaderValue(http_parser* p, const char* at, size_t n) {
  auto* c = Self(p);
  if (c->dispatched_) return 0;  // a trailer
  if (!c->CountHeaderBytes(n)) return -1;
  if (c->head_.headers.empty()) return -1;
  c->head_.headers.back().second.append(at, n);
  c->last_was_value_ = true;
  return 0;
}

int LoopHttpConnection::OnHeadersComplete(http_parser* p) {
  auto* c = Self(p);
  c->refusal_ = StrictHeadProblem(c->head_.headers);
  if (!c->refusal_.empty()) return -1;  // Execute answers 400
  c->head_.method = http_method_str(static_cast<http_method>(p->method));
  std::string_view url = c->url_;
  if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) {  // absolute-form: keep the path
    size_t slash = url.find('/', url.find("//") + 2);
    url = slash == std::string_view::npos ? std::string_view("/") : url.substr(slash);
  }
  url = url.substr(0, url.find('#'));
  size_t q = url.find('?');
  c->head_.path = UrlDecode(url.substr(0, q), false);  // matched decoded, as civetweb's local_uri was
  c->head_.query = q == std::string_view::npos ? "" : std::string(url.substr(q + 1));
  c->keep_alive_ = http_should_keep_alive(p) != 0;
  for (const auto& [k, v] : c->head_.headers) {
    // Answer curl's "Expect: 100-continue" at once instead of letting it wait a second before the body.
    if (strcasecmp(k.c_str(), "Expect") == 0 && strcasecmp(v.c_str(), "100-continue") == 0) {
      c->Write("HTTP/1.1 100 Continue\r\n\r\n", false);
    }
  }
  bool chunked = (p->flags & F_CHUNKED) != 0;
  bool has_length = (p->flags & F_CONTENTLENGTH) != 0;
  if (c->ctx_.fast && !chunked && !IsStreamingMediaType(c->head_.headers) &&
      (!has_length || p->content_length <= LoopHttpServer::kMaxFastBodyBytes)) {
    // Small body: collect it here, then offer the request to the fast handler. All of it must arrive within
    // the request timeout from the end of the head (a client trickling a byte at a time kept a connection
    // slot for ever: no token is checked before the body is complete), and nothing is reserved before its
    // bytes arrive (a promised 64 KiB on each of thousands of idle connections).
    c->buffer_body_ = true;
    c->deadline_ms_ = uv_now(c->ctx_.loop) + static_cast<uint64_t>(c->ctx_.request_timeout_ms);
  } else {
    auto outbox = c->ctx_.outbox;
    uint64_t id = c->id_;
    c->pipe_ = std::make_shared<HttpBodyPipe>(kPipeCapacity, c->ctx_.request_timeout_ms, [outbox, id] {
      outbox->Post({id, HttpOutMessage::Kind::kResume, {}});
    });
    c->Dispatch(c->pipe_, false);
  }
  return 0;
}

int LoopHttpConnection::OnBody(http_parser* p, const char* at, size_t n) {
  auto* c = Self(p);
  if (c->buffer_body_) {
    c->body_.append(at, n);
  } else if (c->pipe_ && !c->pipe_->Push(at, n)) {
    c->pipe_full_ = true;  // stop reading until the handler drained half (OnResume)
  }
  return 0;
}

int LoopHttpConnection::OnMessageComplete(http_parser* p) {
  auto* c = Self(p);
  c->in_message_ = false;
  c->body_complete_ = true;
  if (c->buffer_body_) {
    c->Dispatch(HttpBodyPipe::Complete(std::move(c->body_)), true);
    c->body_.clear();
  } else if (c->pipe_) {
    c->pipe_->End();
  }
  // Upgrade (or CONNECT): not spoken here, so the request is answered as plain HTTP, which RFC 9110 allows.
  // The parser hands over whatever follows as the other protocol's bytes and keeps its upgrade flag into the
  // next request, so the connection ends with this answer. (Checked here, at the message's end: the flag is set
  // once the head is read, and acting on it then cut off the request's own body, which the parser still reads.)
  if (p->upgrade) c->keep_alive_ = false;
  http_parser_pause(p, 1);  // the next pipelined request is parsed after this one is answered
  c->framing_.Rearm();
  return 0;
}

void LoopHttpConnection::Dispatch(std::shared_ptr<HttpBodyPipe> body, bool complete) {
  auto ex = std::make_shared<LoopHttpExchange>(ctx_.outbox, ctx_.stream_outbox, id_, std::move(head_), std::move(body));
  head_ = {};
  dispatched_ = true;
  ++ctx_.inflight;
  if (complete && ctx_.fast) {
    try {
      if (ctx_.fast(ex)) return;
    } catch (const std::exception& e) {
      ex->RespondJson(500, JsonError("internal", e.what()));
      return;
    }
    if (ex->status() != 0) return;  // declined after answering: treat as handled
  }
  const HttpHandler* handler = &ctx_.handler;
  ctx_.pool->Submit([handler, ex] {
    try {
      (*handler)(*ex);
    } catch (const std::exception& e) {
      // A handler bug must not take the process down; the client gets a clear 500.
      ex->RespondJson(500, JsonError("internal", e.what()));
    }
    ex->RespondJson(500, JsonError("internal", "no response"));  // ignored when it answered
  });
}

void LoopHttpConnection::OnResponse(std::string bytes, std::shared_ptr<void> hold) {
  if (!dispatched_ || closing_) return;
  dispatched_ = false;
  bool close = broken_ || !keep_alive_ || !body_complete_ || ctx_.stopping;
  if (close) {
    unread_input_ = !body_complete_ || !unparsed_.empty();
    if (pipe_ && !body_complete_) pipe_->Fail();
    broken_ = true;
    // Say so (when the handler did not): a client that pools connections would otherwise send its next
    // request into a socket we are closing (e.g. during a rolling deploy) and see a reset.
    size_t head_end = bytes.find("\r\n\r\n");
    if (head_end != std::string::npos && !HasConnectionHeader(std::string_view(bytes).substr(0, head_end))) {
      bytes.insert(head_end + 2, "Connection: close\r\n");
    }
    Write(std::move(bytes), true, std::move(hold));
    // The answer's own deadline (the request's may have passed while a long upload streamed), and what the
    // kernel did not take of it at once: CheckTimeout measures the client's reading from here.
    deadline_ms_ = uv_now(ctx_.loop) + static_cast<uint64_t>(ctx_.request_timeout_ms);
    queued_at_deadline_ = uv_stream_get_write_queue_size(stream());
    UpdateReading();
    return;
  }
  Write(std::move(bytes), false, std::move(hold));
  queued_at_deadline_ = uv_stream_get_write_queue_size(stream());
  pipe_.reset();
  pipe_full_ = false;
  body_complete_ = false;
  buffer_body_ = false;
  deadline_ms_ = uv_now(ctx_.loop) + static_cast<uint64_t>(ctx_.keep_alive_ms);
  http_parser_pause(&parser_, 0);
  ParseBuffered();
  UpdateReading();
}

void LoopHttpConnection::OnStreamHead(std::string head, std::shared_ptr<HttpStreamState> state, uint64_t id) {
  if (!dispatched_ || closing_) {
    RefuseStream(ctx_, id, state);
    return;
  }
  dispatched_ = false;
  // The connection ends with the stream: no further request is read from it.
  broken_ = true;
  unparsed_.clear();
  if (pipe_ && !body_complete_) pipe_->Fail();
  if (ctx_.stopping) {
    Write(std::move(head) + "0\r\n\r\n", true);  // a complete, empty body: the client reconnects elsewhere
    RefuseStream(ctx_, id, state);
    return;
  }
  hand_over_ = std::make_unique<PendingHandOver>(PendingHandOver{id, std::move(head), std::move(state)});
  UpdateReading();
  // An earlier answer still queued here would otherwise race the stream loop's writes on the socket.
  if (uv_stream_get_write_queue_size(stream()) == 0) HandOver();
}

void LoopHttpConnection::HandOver() {
  auto h = std::move(hand_over_);
  uv_os_fd_t fd = -1;
  int dup = uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
  if (dup < 0) {
    Write(std::move(h->head) + "0\r\n\r\n", true);
    RefuseStream(ctx_, h->id, h->state);
    return;
  }
  HttpOutMessage adopt{h->id, HttpOutMessage::Kind::kAdopt, std::move(h->head), std::move(h->state)};
  adopt.fd = dup;
  ctx_.stream_outbox->Post(std::move(adopt));
  // Closing our descriptor leaves the socket open (the duplicate holds it); libuv takes it out of this
  // loop's epoll set explicitly, which a plain close would not do while a duplicate exists.
  Close();
}

void LoopHttpConnection::RefuseStream(LoopHttpContext& ctx, uint64_t id,
                                      const std::shared_ptr<HttpStreamState>& state) {
  state->closed.store(true);
  HttpOutMessage none{id, HttpOutMessage::Kind::kAdopt, {}, state};
  ctx.stream_outbox->Post(std::move(none));
}

void LoopHttpConnection::OnResume() {
  pipe_full_ = false;
  UpdateReading();
}

void LoopHttpConnection::Write(std::string bytes, bool close_after, std::shared_ptr<void> hold) {
  if (closing_) return;
  auto* w = new WriteReq{{}, std::move(bytes), close_after, std::move(hold)};
  w->req.data = this;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int r = uv_write(&w->req, stream(), &b, 1, [](uv_write_t* req, int status) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* c = static_cast<LoopHttpConnection*>(req->data);
    if (status < 0) {
      c->Close();
    } else if (w->close_after && c->unread_input_) {
      c->Linger();
    } else if (w->close_after) {
      c->Close();  // the request was read to its end: nothing of the client's can be left to cause a RST
    } else if (c->close_when_written_ && !c->dispatched_) {
      if (uv_stream_get_write_queue_size(c->stream()) == 0) {  // stopping: the last answer is out
        if (c->unread_input_) {
          c->Linger();
        } else {
          c->Close();
        }
      }
    } else if (c->hand_over_ && !c->closing_) {
      if (uv_stream_get_write_queue_size(c->stream()) == 0) c->HandOver();
    } else if (!c->closing_ && !c->dispatched_) {
      c->ParseBuffered();  // the backlog drained: go on with pipelined requests held back (WriteBacklogged)
      c->UpdateReading();
    }
    delete w;
  });
  if (r < 0) {
    delete w;
    Close();
  }
}

void LoopHttpConnection::Linger() {
  if (closing_ || lingering_) return;
  lingering_ = true;
  deadline_ms_ = uv_now(ctx_.loop) + kLingerMs;
  auto* req = new uv_shutdown_t;
  if (uv_shutdown(req, stream(), [](uv_shutdown_t* r, int) { delete r; }) != 0) {
    delete req;
    Close();
    return;
  }
  UpdateReading();
}

void LoopHttpConnection::RejectAndClose(int status, const std::string& error, const std::string& detail,
                                        const std::string& extra_headers) {
  broken_ = true;
  unread_input_ = true;
  std::string body = JsonError(error, detail);
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + HttpReason(status) +
                  "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
  Write(std::move(r), true);
  UpdateReading();
}

void LoopHttpConnection::CheckTimeout(uint64_t now_ms) {
  if (closing_) return;
  if (lingering_) {
    if (now_ms > deadline_ms_) Close();
    return;
  }
  // A request being answered is the handler's (a streamed body has its own per-read timeout); a stream's
  // hand-over waits only for the socket to take earlier answers (a client that reads nothing times out).
  if (dispatched_) return;
  if (now_ms <= deadline_ms_) return;
  // An answer still going out to a client that took at least kMinAnswerProgressBytes of it since the answer
  // was written or the deadline last passed: it is reading (a large row at the client's pace), so the answer
  // gets another request timeout rather than being cut off by the keep-alive timeout, or by a deadline a
  // closing answer never reset. A client that stopped reading, or trickles (a byte a minute would hold the
  // answer's memory for hours), times out as an idle one does.
  const size_t queued = uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_));
  if (queued > 0 && queued_at_deadline_ >= queued + kMinAnswerProgressBytes) {
    queued_at_deadline_ = queued;
    deadline_ms_ = now_ms + static_cast<uint64_t>(ctx_.request_timeout_ms);
    return;
  }
  if (buffer_body_ && in_message_) {
    AbandonBufferedBody();
  } else {
    Close();
  }
}

void LoopHttpConnection::AbandonBufferedBody() {
  broken_ = true;
  in_message_ = false;
  Dispatch(HttpBodyPipe::Truncated(std::move(body_)), /*complete=*/false);
  body_.clear();
  UpdateReading();
}

void LoopHttpConnection::OnStop() {
  if (dispatched_ || lingering_ || hand_over_) return;
  // An answer still going out is finished first (closing the handle would cancel its writes); CheckTimeout
  // bounds how long a client that stopped reading holds the stop up.
  if (uv_stream_get_write_queue_size(stream()) > 0) {
    // What the client sends meanwhile stays unread, so the close lingers (a close over unread bytes is a
    // reset, which can take the end of the answer with it).
    CloseWhenWritten(/*unread_input=*/true);
    return;
  }
  Close();
}

void LoopHttpConnection::CloseWhenWritten(bool unread_input) {
  // No request after it: one parsed now would run its handler and lose its answer with the connection.
  close_when_written_ = true;
  broken_ = true;
  keep_alive_ = false;
  unread_input_ = unread_input_ || unread_input;
  UpdateReading();
}

void LoopHttpConnection::GiveUpWriting() {
  if (close_when_written_ && !dispatched_) Close();
}

void LoopHttpConnection::CutOffBody() {
  if (!dispatched_ || body_complete_ || closing_ || !pipe_) return;
  pipe_->Fail();   // the handler's next Read fails: it answers, and the connection closes after that answer
  broken_ = true;
  UpdateReading();
}

void LoopHttpConnection::Close() {
  if (closing_) return;
  closing_ = true;
  if (hand_over_) {
    RefuseStream(ctx_, hand_over_->id, hand_over_->state);
    hand_over_.reset();
  }
  if (pipe_ && !body_complete_) pipe_->Fail();
  if (reading_) {
    uv_read_stop(stream());
    reading_ = false;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
    auto* c = static_cast<LoopHttpConnection*>(h->data);
    c->ctx_.on_closed(c->id_);  // frees c
  });
}

}  // namespace streamfleet
