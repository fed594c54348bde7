#include "streamfleet/operations/operator_task.h"

#include "streamfleet/base/json_input.h"

namespace streamfleet {

StatusOr<EnqueueResult> EnqueueOperatorTask(RedisClient& redis, const Config& config, const OperatorTask& task,
                                            int64_t now_ms) {
  if (auto p = ParseJsonInput(task.payload); !p.ok()) {
    return Status::InvalidArgument("payload is not valid JSON: " + p.status().message());
  }
  if (!ValidQueueName(task.queue)) return Status::InvalidArgument("invalid queue name");
  EnqueueOptions o = EnqueueOptions::FromConfig(config);
  o.queue = task.queue;
  o.unique_key = task.unique_key;
  o.run_at_ms = task.run_at_ms;
  return EnqueueTask(redis, TaskKeys::FromConfig(config), task.type, task.payload, o, now_ms);
}

}  // namespace streamfleet
