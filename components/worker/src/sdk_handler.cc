#include "sdk_handler.h"

#include <chrono>
#include <memory>
#include <utility>

#include "streamfleet/base/log.h"

namespace streamfleet::worker {

bool ConcurrencyLimit::Acquire(const TaskContext& ctx) {
  std::unique_lock<std::mutex> l(mu_);
  while (running_ >= limit_) {
    if (ctx.Cancelled()) return false;
    freed_.wait_for(l, std::chrono::milliseconds(20));
  }
  ++running_;
  return true;
}

void ConcurrencyLimit::Release() {
  {
    std::lock_guard<std::mutex> l(mu_);
    --running_;
  }
  freed_.notify_one();
}

Handler SdkHandler(TaskHandler handler, int concurrency, int max_attempts) {
  std::shared_ptr<ConcurrencyLimit> limit;
  if (concurrency > 0) limit = std::make_shared<ConcurrencyLimit>(concurrency);
  return [handler = std::move(handler), limit, max_attempts](TaskContext& ctx) -> Status {
    if (limit && !limit->Acquire(ctx)) {
      return Status::DeadlineExceeded("cancelled while waiting for one of the " + std::to_string(limit->limit()) +
                                      " running tasks of this type to end (its concurrency limit)");
    }
    // Released also when the handler throws (the executor turns the exception into the attempt's error).
    struct Release {
      ConcurrencyLimit* l;
      ~Release() {
        if (l != nullptr) l->Release();
      }
    } release{limit.get()};
    Task task(ctx, max_attempts);
    Status s = handler(task);
    if (ctx.result.size() > kMaxTaskResultBytes) {
      SF_LOG_WARN("task {} ({}): result of {} bytes cut to {}", ctx.task.id(), ctx.task.type(), ctx.result.size(),
                  kMaxTaskResultBytes);
      ctx.result.resize(kMaxTaskResultBytes);
    }
    return s;
  };
}

}  // namespace streamfleet::worker
