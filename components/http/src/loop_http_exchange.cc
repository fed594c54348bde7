#include "loop_http_exchange.h"

#include <strings.h>

#include <cstdio>

#include "http_stream_loop.h"

namespace streamfleet {

LoopHttpExchange::LoopHttpExchange(std::shared_ptr<HttpOutbox> outbox, std::shared_ptr<HttpOutbox> stream_outbox,
                                   uint64_t conn, HttpRequestHead head, std::shared_ptr<HttpBodyPipe> body)
    : outbox_(std::move(outbox)),
      stream_outbox_(std::move(stream_outbox)),
      conn_(conn),
      headers_(std::move(head.headers)),
      body_(std::move(body)) {
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

void LoopHttpExchange::SendResponse(std::string bytes, std::shared_ptr<void> hold) {
  HttpOutMessage m{conn_, HttpOutMessage::Kind::kResponse, std::move(bytes)};
  m.hold = std::move(hold);
  outbox_->Post(std::move(m));
}

std::shared_ptr<HttpStream> LoopHttpExchange::OpenStream(std::string head) {
  auto state = std::make_shared<HttpStreamState>();
  const uint64_t id = HttpStreamLoop::NextId();
  outbox_->Post({conn_, HttpOutMessage::Kind::kStreamHead, std::move(head), state, id});
  // Writes go straight to the stream loop: they may get there before the socket does, and wait for it there.
  return std::make_shared<LoopHttpStream>(stream_outbox_, id, std::move(state));
}

bool LoopHttpStream::Write(std::string bytes) {
  if (state_->closed.load() || ended_.load()) return false;
  if (bytes.empty()) return true;  // an empty chunk would end the body
  char size[20];
  int n = std::snprintf(size, sizeof(size), "%zx\r\n", bytes.size());
  std::string framed;
  framed.reserve(static_cast<size_t>(n) + bytes.size() + 2);
  framed.append(size, static_cast<size_t>(n)).append(bytes).append("\r\n");
  state_->buffered.fetch_add(static_cast<int64_t>(framed.size()));
  outbox_->Post({id_, HttpOutMessage::Kind::kStreamData, std::move(framed), state_});
  return true;
}

void LoopHttpStream::End() {
  if (ended_.exchange(true)) return;
  outbox_->Post({id_, HttpOutMessage::Kind::kStreamEnd, {}, state_});
}

}  // namespace streamfleet
