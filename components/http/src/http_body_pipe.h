#pragma once
// The body bytes of one request on their way from the event loop (producer) to a handler on a worker thread
// (consumer). Bounded: Push reports "full" and the loop stops reading the socket until the handler has
// drained half of it (on_drained is then called once, on the worker thread, to ask the loop to resume).
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace streamfleet {

class HttpBodyPipe {
 public:
  HttpBodyPipe(size_t capacity, int64_t read_timeout_ms, std::function<void()> on_drained);
  // A pipe that already holds the whole body (never blocks the reader).
  static std::shared_ptr<HttpBodyPipe> Complete(std::string body);
  // A pipe holding the part of a body that arrived before the client stopped: its bytes, then an error.
  static std::shared_ptr<HttpBodyPipe> Truncated(std::string part);

  // Loop side. Push returns false when the buffer is at capacity: stop reading until on_drained.
  bool Push(const char* data, size_t n);
  void End();   // the body is complete
  void Fail();  // the body will never be complete (connection closed, malformed chunked encoding)

  // Worker side: up to n bytes; 0 at the end; -1 on Fail or when no byte came for read_timeout_ms.
  int Read(char* buf, size_t n);

 private:
  const size_t capacity_;
  const int64_t read_timeout_ms_;
  std::function<void()> on_drained_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buf_;
  size_t off_ = 0;  // read position in buf_
  bool ended_ = false;
  bool failed_ = false;
  bool paused_ = false;  // the loop stopped reading because the buffer was full
};

}  // namespace streamfleet
