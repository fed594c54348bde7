#pragma once
// A handler of Worker::Handle (streamfleet/worker/worker.h) as the queue-worker's registry runs it
// (queue-worker/handlers.h): the Task view over the attempt's TaskContext, the per-type concurrency limit of
// this process, the result cut to kMaxTaskResultBytes. Private to the component (and its tests).
//
// Thread-safety: the returned handler, and its copies (each slot keeps one), may run on any number of
// threads at once; its copies share one limit.
#include <condition_variable>
#include <mutex>

#include "queue-worker/handlers.h"
#include "streamfleet/worker/worker.h"

namespace streamfleet::worker {

// How many tasks of one type run at once in this process (HandlerOptions::concurrency). A semaphore: a task
// over the limit waits on its slot thread, checking its cancelled flag (the watchdog sets it at the timeout
// without waking us), so a waiting task is never abandoned for ignoring cancellation.
class ConcurrencyLimit {
 public:
  explicit ConcurrencyLimit(int limit) : limit_(limit) {}
  // Takes a place; false (and none taken) when the attempt was cancelled while it waited.
  bool Acquire(const TaskContext& ctx);
  void Release();
  int limit() const { return limit_; }

 private:
  const int limit_;
  std::mutex mu_;
  std::condition_variable freed_;
  int running_ = 0;  // guarded by mu_
};

// `concurrency` 0 = no limit; `max_attempts` is what Task::max_attempts() says (the type's policy).
Handler SdkHandler(TaskHandler handler, int concurrency, int max_attempts);

}  // namespace streamfleet::worker
