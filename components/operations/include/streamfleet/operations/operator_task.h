#pragma once
// Enqueueing a task from outside the fleet, the one way `streamfleetctl enqueue`, the admin API's POST
// /api/tasks/enqueue and ingest's task API (POST /v1/tasks, /v1/tasks:batch) all do it: the same checks, and
// the status record kept TASK_RESULT_TTL like any other task's. Not thread-safe: the call uses the client it
// is given.
#include <cstdint>
#include <string>
#include <vector>

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
  int64_t unique_for_s = 3600;    // how long the unique key is held
};

// Enqueues `task` (scheduled when run_at_ms is later than now_ms). kInvalidArgument, before anything is
// sent, for a payload that is not JSON ("payload is not valid JSON: ..."; every task handler parses its
// payload as JSON, so such a task could only fail) or an invalid queue name ("invalid queue name").
StatusOr<EnqueueResult> EnqueueOperatorTask(RedisCommands& redis, const Config& config, const OperatorTask& task,
                                            int64_t now_ms);

// The checks of EnqueueOperatorTask without enqueueing: OK or the kInvalidArgument it would return.
Status CheckOperatorTask(const OperatorTask& task);

// Many tasks, results in order. Every task is checked first (the first bad one is returned, with its index in
// the message, before anything is sent); then the tasks without a unique key go in one pipeline (EnqueueTasks)
// and each unique one on its own (EnqueueTask: its key, add and status in one script on the standard schema).
StatusOr<std::vector<EnqueueResult>> EnqueueOperatorTasks(RedisCommands& redis, const Config& config,
                                                          const std::vector<OperatorTask>& tasks, int64_t now_ms);

}  // namespace streamfleet
