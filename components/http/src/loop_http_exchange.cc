#include "loop_http_exchange.h"

#include <strings.h>

namespace streamfleet {

LoopHttpExchange::LoopHttpExchange(std::shared_ptr<HttpOutbox> outbox, uint64_t conn, HttpRequestHead head,
                                   std::shared_ptr<HttpBodyPipe> body)
    : outbox_(std::move(outbox)), conn_(conn), headers_(std::move(head.headers)), body_(std::move(body)) {
  method_ = std::move(head.method);
  path_ = std::move(head.path);
  query_ = std::move(head.query);
}

std::optional<std::string> LoopHttpExchange::Header(const char* name) const {
  for (const auto& [k, v] : headers_) {
    if (strcasecmp(k.c_str(), name) == 0) return v;
  }
  return std::nullopt;
}

void LoopHttpExchange::SendResponse(std::string bytes) {
  outbox_->Post({conn_, HttpOutMessage::Kind::kResponse, std::move(bytes)});
}

}  // namespace streamfleet
