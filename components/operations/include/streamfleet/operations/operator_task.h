#pragma once
// Enqueueing a task by hand, the one way `streamfleetctl enqueue` and the admin API's POST /api/tasks/enqueue
// both do it: the same checks, and the status record kept TASK_RESULT_TTL like any other task's. Not
// thread-safe: the call uses the RedisClient it is given.
#include <cstdint>
#include <string>

#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet {

// What an operator asks to enqueue.
struct OperatorTask {
  std::string type;
  std::string payload = "{}";     // JSON text
  std::string queue = "default";
  std::string unique_key;         // "" = not unique; otherwise a second enqueue within the hour is a no-op
  int64_t run_at_ms = 0;          // 0 = now
};

// Enqueues `task` (scheduled when run_at_ms is later than now_ms). kInvalidArgument, before anything is
// sent, for a payload that is not JSON ("payload is not valid JSON: ..."; every task handler parses its
// payload as JSON, so such a task could only fail) or an invalid queue name ("invalid queue name").
StatusOr<EnqueueResult> EnqueueOperatorTask(RedisClient& redis, const Config& config, const OperatorTask& task,
                                            int64_t now_ms);

}  // namespace streamfleet
