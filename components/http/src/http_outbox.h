#pragma once
// Messages from any thread to an HTTP event loop: a response to write, "resume reading" a connection whose
// body pipe drained, a stream's head, body and end. Post wakes the loop only when the queue was empty, so many replies that arrive
// together (one AsyncRedis read answers many pipelined EVALSHAs) cost one wake-up.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <uv.h>

namespace streamfleet {

// What a streamed answer's writer and its connection share.
struct HttpStreamState {
  std::atomic<bool> closed{false};
  std::atomic<int64_t> buffered{0};  // bytes posted and not yet written to the socket
};

struct HttpOutMessage {
  // To the server's loop: kResponse, kResume, and kStreamHead, which answers the request like kResponse but
  // hands the connection over to the server's HttpStreamLoop (http_stream_loop.h) as stream `stream_id`.
  // To the stream loop: kAdopt (`fd`: the handed-over socket, or -1 when there is none; `bytes`: the head),
  // then that stream's body pieces (kStreamData, already chunk-framed) and its end (kStreamEnd); `conn` is
  // the stream's id there.
  enum class Kind { kResponse, kResume, kStreamHead, kAdopt, kStreamData, kStreamEnd };
  uint64_t conn = 0;
  Kind kind = Kind::kResponse;
  std::string bytes;
  std::shared_ptr<HttpStreamState> stream = {};  // every kind but kResponse and kResume
  uint64_t stream_id = 0;                         // kStreamHead
  int fd = -1;                                    // kAdopt
  // kResponse: released once the bytes are written or given up (HttpExchange::HoldUntilWritten). A message
  // dropped on the way (the connection is gone, the outbox closed) releases it with itself.
  std::shared_ptr<void> hold = {};
};

class HttpOutbox : public std::enable_shared_from_this<HttpOutbox> {
 public:
  explicit HttpOutbox(uv_async_t* wake) : wake_(wake) {}

  // Any thread. Dropped once Close()d (the server is gone; nobody can be answered any more). Inside an
  // HttpWriteBatch of the calling thread, held until the batch ends (http_write_batch.cc).
  void Post(HttpOutMessage m);
  // Posts several in order, with one lock and at most one wake-up.
  void PostAll(std::vector<HttpOutMessage> ms);
  // Loop thread.
  std::vector<HttpOutMessage> Take() {
    std::vector<HttpOutMessage> out;
    std::lock_guard<std::mutex> lock(mu_);
    out.swap(queue_);
    return out;
  }
  // Loop thread, before the wake handle is closed.
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = nullptr;
    queue_.clear();
  }

 private:
  // Adds to the queue under the lock, unless Close()d, and wakes the loop if the queue was empty.
  template <typename Add>
  void Deliver(Add add) {
    std::lock_guard<std::mutex> lock(mu_);
    if (wake_ == nullptr) return;
    bool was_empty = queue_.empty();
    add(queue_);
    if (was_empty) uv_async_send(wake_);
  }

  std::mutex mu_;
  uv_async_t* wake_;
  std::vector<HttpOutMessage> queue_;
};

}  // namespace streamfleet
