#include "streamfleet/operations/operator_task.h"

#include "streamfleet/base/json_input.h"

namespace streamfleet {

namespace {

EnqueueOptions OptionsFor(const Config& config, const OperatorTask& task) {
  EnqueueOptions o = EnqueueOptions::FromConfig(config);
  o.queue = task.queue;
  o.unique_key = task.unique_key;
  o.unique_ttl_s = task.unique_for_s;
  o.run_at_ms = task.run_at_ms;
  return o;
}

}  // namespace

Status CheckOperatorTask(const OperatorTask& task) {
  if (auto p = ParseJsonInput(task.payload); !p.ok()) {
    return Status::InvalidArgument("payload is not valid JSON: " + p.status().message());
  }
  if (!ValidQueueName(task.queue)) return Status::InvalidArgument("invalid queue name");
  if (task.type.empty()) return Status::InvalidArgument("empty task type");
  if (task.unique_for_s <= 0) return Status::InvalidArgument("unique_for must be positive");
  return Status::Ok();
}

StatusOr<EnqueueResult> EnqueueOperatorTask(RedisCommands& redis, const Config& config, const OperatorTask& task,
                                            int64_t now_ms) {
  SF_RETURN_IF_ERROR(CheckOperatorTask(task));
  const TaskKeys keys = TaskKeys::FromConfig(config);
  return EnqueueTask(redis, keys, task.type, task.payload, OptionsFor(config, task), now_ms);
}

StatusOr<std::vector<EnqueueResult>> EnqueueOperatorTasks(RedisCommands& redis, const Config& config,
                                                          const std::vector<OperatorTask>& tasks, int64_t now_ms) {
  for (size_t i = 0; i < tasks.size(); ++i) {
    Status s = CheckOperatorTask(tasks[i]);
    if (!s.ok()) return Status::InvalidArgument("task " + std::to_string(i) + ": " + s.message());
  }
  const TaskKeys keys = TaskKeys::FromConfig(config);
  std::vector<TaskToEnqueue> plain;
  std::vector<size_t> plain_at;
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (!tasks[i].unique_key.empty()) continue;
    plain.push_back({tasks[i].type, tasks[i].payload, OptionsFor(config, tasks[i])});
    plain_at.push_back(i);
  }
  std::vector<EnqueueResult> out(tasks.size());
  if (!plain.empty()) {
    auto added = EnqueueTasks(redis, keys, plain, now_ms);
    if (!added.ok()) return added.status();
    for (size_t k = 0; k < plain_at.size(); ++k) out[plain_at[k]] = std::move((*added)[k]);
  }
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].unique_key.empty()) continue;
    auto r = EnqueueTask(redis, keys, tasks[i].type, tasks[i].payload, OptionsFor(config, tasks[i]), now_ms);
    if (!r.ok()) return r.status();
    out[i] = std::move(*r);
  }
  return out;
}

}  // namespace streamfleet
