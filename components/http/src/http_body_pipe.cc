#include "http_body_pipe.h"

#include <chrono>
#include <cstring>
#include <memory>

namespace streamfleet {

HttpBodyPipe::HttpBodyPipe(size_t capacity, int64_t read_timeout_ms, std::function<void()> on_drained)
    : capacity_(capacity), read_timeout_ms_(read_timeout_ms), on_drained_(std::move(on_drained)) {}

std::shared_ptr<HttpBodyPipe> HttpBodyPipe::Complete(std::string body) {
  auto p = std::make_shared<HttpBodyPipe>(body.size(), 0, nullptr);
  p->buf_ = std::move(body);
  p->ended_ = true;
  return p;
}

std::shared_ptr<HttpBodyPipe> HttpBodyPipe::Truncated(std::string part) {
  auto p = std::make_shared<HttpBodyPipe>(part.size(), 0, nullptr);
  p->buf_ = std::move(part);
  p->failed_ = true;
  return p;
}

bool HttpBodyPipe::Push(const char* data, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (off_ > 0 && off_ == buf_.size()) {
    buf_.clear();
    off_ = 0;
  }
  buf_.append(data, n);
  cv_.notify_one();
  if (buf_.size() - off_ >= capacity_) paused_ = true;
  return !paused_;
}

void HttpBodyPipe::End() {
  std::lock_guard<std::mutex> lock(mu_);
  ended_ = true;
  cv_.notify_one();
}

void HttpBodyPipe::Fail() {
  std::lock_guard<std::mutex> lock(mu_);
  failed_ = true;
  cv_.notify_one();
}

int HttpBodyPipe::Read(char* buf, size_t n) {
  bool resume = false;
  int got = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto ready = [&] { return failed_ || ended_ || off_ < buf_.size(); };
    if (!cv_.wait_for(lock, std::chrono::milliseconds(read_timeout_ms_), ready)) return -1;  // the client stalled
    if (off_ < buf_.size()) {
      size_t k = std::min(n, buf_.size() - off_);
      std::memcpy(buf, buf_.data() + off_, k);
      off_ += k;
      got = static_cast<int>(k);
      if (off_ == buf_.size()) {
        buf_.clear();
        off_ = 0;
      } else if (off_ > capacity_) {
        buf_.erase(0, off_);  // keep memory bounded when the reader lags behind in small reads
        off_ = 0;
      }
      if (paused_ && buf_.size() - off_ <= capacity_ / 2) {
        paused_ = false;
        resume = true;
      }
    } else if (failed_) {
      return -1;
    }
  }
  if (resume && on_drained_) on_drained_();
  return got;
}

}  // namespace streamfleet
