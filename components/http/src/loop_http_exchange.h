#pragma once
// LoopHttpServer's HttpExchange: the parsed request head, the body through an HttpBodyPipe, and the answer
// posted to the loop through the HttpOutbox (so it may be given from any thread); a streamed answer's body
// goes to the server's stream loop.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http_body_pipe.h"
#include "http_outbox.h"
#include "streamfleet/http/http_exchange.h"

namespace streamfleet {

struct HttpRequestHead {
  std::string method, path, query;
  std::vector<std::pair<std::string, std::string>> headers;
};

// A streamed answer's writer: frames each write as an HTTP chunk and posts it to the server's stream loop
// (http_stream_loop.h), under the stream's id there.
class LoopHttpStream final : public HttpStream {
 public:
  LoopHttpStream(std::shared_ptr<HttpOutbox> stream_outbox, uint64_t id, std::shared_ptr<HttpStreamState> state)
      : outbox_(std::move(stream_outbox)), id_(id), state_(std::move(state)) {}
  ~LoopHttpStream() override { End(); }
  bool Write(std::string bytes) override;
  void End() override;
  bool closed() const override { return state_->closed.load(); }
  int64_t buffered() const override { return state_->buffered.load(); }

 private:
  std::shared_ptr<HttpOutbox> outbox_;
  uint64_t id_;  // the stream's id on the stream loop
  std::shared_ptr<HttpStreamState> state_;
  std::atomic<bool> ended_{false};
};

class LoopHttpExchange final : public HttpExchange {
 public:
  LoopHttpExchange(std::shared_ptr<HttpOutbox> outbox, std::shared_ptr<HttpOutbox> stream_outbox, uint64_t conn,
                   HttpRequestHead head, std::shared_ptr<HttpBodyPipe> body);

  std::optional<std::string> Header(const char* name) const override;  // case-insensitive, first match
  int Read(char* buf, size_t n) override { return body_->Read(buf, n); }
  bool CanStream() const override { return true; }

 private:
  void SendResponse(std::string bytes, std::shared_ptr<void> hold) override;
  std::shared_ptr<HttpStream> OpenStream(std::string head) override;

  std::shared_ptr<HttpOutbox> outbox_;
  std::shared_ptr<HttpOutbox> stream_outbox_;
  uint64_t conn_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::shared_ptr<HttpBodyPipe> body_;
};

}  // namespace streamfleet
