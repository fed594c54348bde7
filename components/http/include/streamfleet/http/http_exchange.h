#pragma once
// One HTTP request and its answer, as handlers see it. Two servers implement it: HttpServer (civetweb,
// thread per connection; metrics and admin servers) and LoopHttpServer (libuv + http_parser; ingest).
// Handlers are written once against this interface and run unchanged on either.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "streamfleet/base/status.h"

namespace streamfleet {

// A streamed answer (server-sent events): the head went out with StartStream, the body goes out in pieces
// from any thread, as HTTP/1.1 chunks. Thread-safe. The connection closes when the stream ends.
class HttpStream {
 public:
  virtual ~HttpStream() = default;
  // Queues bytes for the client (one HTTP chunk). False once the stream is closed: End() was called, the
  // client went away, or the server is stopping; the bytes are then dropped.
  virtual bool Write(std::string bytes) = 0;
  // Ends the body and closes the connection once everything queued is sent. Idempotent.
  virtual void End() = 0;
  virtual bool closed() const = 0;
  // Bytes written and not yet taken by the socket: how far the client is behind. Writers stop feeding a
  // stream past their own bound (a slow reader must not grow the process's memory).
  virtual int64_t buffered() const = 0;
};

// Holds the HttpStream writes (and ends) made on this thread while it lives, and hands them to their server
// in one go when it ends: one lock and at most one wake-up of the server's loop per batch. Without it a
// writer feeding many streams in one pass (the live hub: an event to each of a generation's readers) can wake
// the loop once per write, since the loop, running on another core, empties its queue between the writes.
// Each stream's writes keep their order. Nestable: the outermost batch sends. Hold one only around work that
// does not wait (a network round trip, a lock held elsewhere): its writes wait with it.
class HttpWriteBatch {
 public:
  HttpWriteBatch();
  ~HttpWriteBatch();
  HttpWriteBatch(const HttpWriteBatch&) = delete;
  HttpWriteBatch& operator=(const HttpWriteBatch&) = delete;
};

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
  // Keeps `hold` alive until the answer has left the process: written to the socket whole, or given up (the
  // client went away, the server stopped). For what an answer's bytes cost while a client is slow to read them
  // (ingest's INGEST_MAX_QUEUED_ANSWER_BYTES); a server that writes before Respond returns (civetweb's) lets it
  // go with the exchange. Call on the thread that answers, before Respond.
  void HoldUntilWritten(std::shared_ptr<void> hold) { answer_hold_ = std::move(hold); }
  // Headers that every answer of this exchange carries besides its own: Respond, StartStream and the
  // server's 500 for a handler that threw. For what a route adds to all of its answers whoever writes them
  // (the live routes' CORS headers: a browser can read no answer without them, errors included). Call on
  // the thread that handles the exchange, before it is answered.
  void AddAnswerHeaders(const std::vector<std::pair<std::string, std::string>>& headers) {
    answer_headers_.insert(answer_headers_.end(), headers.begin(), headers.end());
  }

  // Whether StartStream can work here (LoopHttpServer: yes; the civetweb HttpServer: no).
  virtual bool CanStream() const { return false; }
  // Answers with a head (status, content type, headers, chunked transfer encoding, Connection: close) and
  // returns the stream for the body. nullptr when answered already or !CanStream(). The exchange may be
  // destroyed while the stream lives on (the handler's thread is free again).
  std::shared_ptr<HttpStream> StartStream(int status, const std::string& content_type,
                                          const std::vector<std::pair<std::string, std::string>>& headers = {});

 protected:
  // Sends a streamed answer's head; the connection then belongs to the returned stream.
  virtual std::shared_ptr<HttpStream> OpenStream(std::string /*head*/) { return nullptr; }
  // Writes one complete response (status line, headers and body in one buffer); `hold` (HoldUntilWritten, or
  // null) lives until the bytes are written or given up.
  virtual void SendResponse(std::string bytes, std::shared_ptr<void> hold) = 0;

  std::string method_, path_, query_;

 private:
  std::atomic<int> status_{0};
  std::vector<std::pair<std::string, std::string>> answer_headers_;
  std::shared_ptr<void> answer_hold_;
};

// {"error": error, "detail": detail}; bytes of detail that are not UTF-8 become U+FFFD.
std::string JsonError(const std::string& error, const std::string& detail);

// The token of an "Authorization: Bearer <token>" header value; nullopt for another scheme or none. The scheme
// is matched case-insensitively and may be followed by several spaces (RFC 9110 section 11.1): "bearer tok"
// was refused as "missing bearer token".
std::optional<std::string> BearerToken(const std::optional<std::string>& authorization);

// "Bad Request" for 400, ...; "Status" for codes it does not know.
const char* HttpReason(int status);

}  // namespace streamfleet
