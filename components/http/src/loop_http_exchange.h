#pragma once
// LoopHttpServer's HttpExchange: the parsed request head, the body through an HttpBodyPipe, and the answer
// posted to the loop through the HttpOutbox (so it may be given from any thread).
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

class LoopHttpExchange final : public HttpExchange {
 public:
  LoopHttpExchange(std::shared_ptr<HttpOutbox> outbox, uint64_t conn, HttpRequestHead head,
                   std::shared_ptr<HttpBodyPipe> body);

  std::optional<std::string> Header(const char* name) const override;  // case-insensitive, first match
  int Read(char* buf, size_t n) override { return body_->Read(buf, n); }

 private:
  void SendResponse(std::string bytes) override;

  std::shared_ptr<HttpOutbox> outbox_;
  uint64_t conn_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::shared_ptr<HttpBodyPipe> body_;
};

}  // namespace streamfleet
