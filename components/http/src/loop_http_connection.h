#pragma once
// One client socket of LoopHttpServer, on the loop thread only: reads, parses with http_parser, hands each
// request to the fast handler or the worker pool, writes the answers in order and enforces the timeouts.
// One request at a time: while a request is being answered the bytes of the next (pipelined) one wait,
// unparsed, so answers can only go out in request order.
#include <http_parser.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http_body_pipe.h"
#include "http_outbox.h"
#include "loop_http_exchange.h"
#include "request_framing.h"
#include "streamfleet/http/loop_http_server.h"
#include "worker_pool.h"

namespace streamfleet {

// What the connections of one server share (loop thread).
struct LoopHttpContext {
  uv_loop_t* loop = nullptr;
  HttpHandler handler;
  FastHttpHandler fast;
  WorkerPool* pool = nullptr;
  std::shared_ptr<HttpOutbox> outbox;
  std::shared_ptr<HttpOutbox> stream_outbox;  // the server's HttpStreamLoop
  int64_t request_timeout_ms = 60000;
  int64_t keep_alive_ms = 30000;
  bool stopping = false;
  int64_t inflight = 0;                    // requests handed to a handler and not yet answered
  std::function<void(uint64_t)> on_closed;  // the connection's handle is closed: free it
  std::vector<char> read_buffer = std::vector<char>(64 * 1024);  // every socket read lands here first
};

class LoopHttpConnection {
 public:
  LoopHttpConnection(LoopHttpContext& ctx, uint64_t id);
  LoopHttpConnection(const LoopHttpConnection&) = delete;
  LoopHttpConnection& operator=(const LoopHttpConnection&) = delete;

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  uv_tcp_t* tcp() { return &tcp_; }
  void Start();                          // accepted: start reading
  // Answers `status` with a JSON error (and `extra_headers`, each line ending in CRLF), then closes.
  void RejectAndClose(int status, const std::string& error, const std::string& detail,
                      const std::string& extra_headers = "");
  // The handler answered the current request; `hold` (HttpExchange::HoldUntilWritten) lives until the bytes
  // are written or the connection closes.
  void OnResponse(std::string bytes, std::shared_ptr<void> hold);
  void OnResume();                       // the body pipe drained: read again
  // A streamed answer (HttpExchange::StartStream): the socket goes to the stream loop (http_stream_loop.h)
  // as stream `id`, with the head to write first, as soon as everything written here has reached the socket;
  // this connection then closes its handle and is done.
  void OnStreamHead(std::string head, std::shared_ptr<HttpStreamState> state, uint64_t id);
  void CheckTimeout(uint64_t now_ms);    // periodic: cut off slow or idle clients
  void OnStop();                         // the server stops: close unless a request is being answered
  void CutOffBody();                     // the stop's grace is over: a body still arriving ends in an error
  // The stop's grace is over too: an answer still being written since OnStop is given up, so a client that
  // stopped reading cannot hold the process's exit past its termination grace period.
  void GiveUpWriting();
  void Close();
  // No hand-over after all (the client went away, the server is stopping, no descriptor): the stream loop
  // drops what waits for the stream, and the writer sees the stream closed.
  static void RefuseStream(LoopHttpContext& ctx, uint64_t id, const std::shared_ptr<HttpStreamState>& state);

 private:
  static http_parser_settings Settings();
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static int OnMessageBegin(http_parser* p);
  static int OnUrl(http_parser* p, const char* at, size_t n);
  static int OnHeaderField(http_parser* p, const char* at, size_t n);
  static int OnHeaderValue(http_parser* p, const char* at, size_t n);
  static int OnHeadersComplete(http_parser* p);
  static int OnBody(http_parser* p, const char* at, size_t n);
  static int OnMessageComplete(http_parser* p);

  void Feed(const char* data, size_t n);
  size_t Execute(const char* data, size_t n);
  void ParseBuffered();
  // More than kMaxQueuedWriteBytes of answers not yet accepted by the socket.
  bool WriteBacklogged() const;
  static constexpr size_t kMaxQueuedWriteBytes = 256 * 1024;
  void Dispatch(std::shared_ptr<HttpBodyPipe> body, bool complete);
  void Write(std::string bytes, bool close_after, std::shared_ptr<void> hold = nullptr);
  void HandOver();
  void UpdateReading();
  void Linger();
  // Closes once the answers queued now are written (the server stops, or the client shut down its sending
  // side), reading no further request; unread_input: the client may still send (the close then lingers).
  void CloseWhenWritten(bool unread_input);
  // The client stopped (closed, or stalled past the timeout) in the middle of a body collected for the fast
  // handler: the worker handler gets the part that came, then a read error, and answers (400, or what a
  // streamed body's complete lines earned) as it would on a streamed body.
  void AbandonBufferedBody();  // the last answer is written: shut down our side, wait briefly for the client's close
  bool CountHeaderBytes(size_t n);

  LoopHttpContext& ctx_;
  const uint64_t id_;
  uv_tcp_t tcp_;
  http_parser parser_;
  bool reading_ = false;
  bool lingering_ = false;
  bool close_when_written_ = false;  // close once the queued answers are written (CloseWhenWritten)
  bool unread_input_ = false;  // closing with client bytes possibly unread: linger (see kLingerMs)
  bool closing_ = false;
  bool broken_ = false;         // no more requests on this connection (parse error, upgrade, EOF)
  bool in_message_ = false;     // a request's bytes have started and it is not complete yet
  bool dispatched_ = false;     // handed to a handler, not answered yet
  bool body_complete_ = false;  // the current request's message is complete
  bool buffer_body_ = false;    // collecting the body here for the fast handler
  bool keep_alive_ = true;
  bool pipe_full_ = false;
  bool header_too_large_ = false;
  bool last_was_value_ = false;
  size_t header_bytes_ = 0;
  uint64_t deadline_ms_ = 0;
  // Bytes of answers not yet written when the last answer was written or the deadline last passed.
  size_t queued_at_deadline_ = 0;
  // What a client must take of an answer per request timeout to keep the connection (CheckTimeout): 256 KiB
  // per 60 s is about 4 KB/s, which any client that reads does. Measured on what leaves the process, so the
  // kernel's buffers count as taken: a trickling client is closed once they are full.
  static constexpr size_t kMinAnswerProgressBytes = 256 * 1024;
  RequestFramingScanner framing_;
  std::string refusal_;  // why OnHeadersComplete refused a head http_parser took (answered 400)
  std::string unparsed_;  // received bytes not parsed yet (the next pipelined request)
  HttpRequestHead head_;
  std::string url_;
  std::string body_;  // buffer_body_
  std::shared_ptr<HttpBodyPipe> pipe_;  // streaming to a worker
  struct PendingHandOver {
    uint64_t id = 0;
    std::string head;
    std::shared_ptr<HttpStreamState> state;
  };
  std::unique_ptr<PendingHandOver> hand_over_;  // a stream's, waiting for earlier answers to reach the socket
};

}  // namespace streamfleet
