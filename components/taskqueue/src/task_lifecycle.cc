#include "streamfleet/taskqueue/task_lifecycle.h"

#include "streamfleet/base/time.h"

namespace streamfleet {

void TaskLifecycle::Record(RedisCommands& redis, const std::string& task_id, const std::string& state,
                           std::vector<std::string> fields) const {
  std::vector<std::vector<std::string>> cmds;
  AppendTaskStatus(keys_, task_id, state, std::move(fields), record_ttl_s_, cmds);
  if (!cmds.empty()) (void)redis.Pipeline(cmds);
}

void TaskLifecycle::Running(RedisCommands& redis, const std::string& task_id, const std::string& consumer,
                            const std::string& entry_id) const {
  FinishedTasks nothing_owed;
  Running(redis, nothing_owed, task_id, consumer, entry_id);
}

void TaskLifecycle::Running(RedisCommands& redis, FinishedTasks& finished, const std::string& task_id,
                            const std::string& consumer, const std::string& entry_id) const {
  const size_t owed = finished.owed.size();
  AppendTaskStatus(keys_, task_id, "running", {"worker", consumer, "entry_id", entry_id, "started_at_ms", std::to_string(WallClockMs())}, record_ttl_s_, finished.owed);
  if (finished.owed.empty()) return;
  if (redis.Send(finished.owed).ok()) {
    finished.owed.clear();
  } else {
    finished.owed.resize(owed);  // the acks stay owed; the record only reported
  }
}

Status TaskLifecycle::Succeeded(RedisCommands& redis, FinishedTasks& finished, const std::string& stream,
                                const std::string& entry_id, const std::string& task_id, std::string result,
                                int64_t attempts, bool send_now) const {
  AppendTaskStatus(keys_, task_id, "succeeded", {"result", std::move(result), "attempts", std::to_string(attempts), "finished_at_ms",
                    std::to_string(WallClockMs())},
                   record_ttl_s_, finished.owed);
  finished.owed.push_back({"XACK", stream, TaskKeys::Group(), entry_id});
  if (!send_now) return Status::Ok();
  return SendOwed(redis, finished);
}

Status TaskLifecycle::SendOwed(RedisCommands& redis, FinishedTasks& finished) const {
  if (finished.owed.empty()) return Status::Ok();
  SF_RETURN_IF_ERROR(redis.Send(finished.owed));
  finished.owed.clear();
  return Status::Ok();
}

Status TaskLifecycle::Flush(RedisCommands& redis, FinishedTasks& finished) const {
  SF_RETURN_IF_ERROR(redis.Send(finished.owed));
  finished.owed.clear();
  return redis.AwaitSent();
}

StatusOr<bool> TaskLifecycle::Retry(RedisClient& redis, const std::string& stream, const std::string& entry_id,
                                    const v1::TaskEnvelope& next, int64_t run_at_ms, const std::string& error,
                                    const std::string& owner) const {
  auto mine = ScheduleRetry(redis, keys_, stream, entry_id, next, run_at_ms, owner);
  if (!mine.ok()) return mine.status();
  if (!*mine) return false;  // another consumer's delivery decided; its record stands
  Record(redis, next.id(), "retry_scheduled",
         {"error", error, "attempts", std::to_string(next.attempt()), "run_at_ms", std::to_string(run_at_ms)});
  return true;
}

StatusOr<bool> TaskLifecycle::Postpone(RedisClient& redis, const std::string& stream, const std::string& entry_id,
                                       const v1::TaskEnvelope& task, int64_t run_at_ms, const std::string& held_by,
                                       const std::string& owner) const {
  v1::TaskEnvelope later = task;
  later.set_run_at_ms(run_at_ms);
  auto mine = ScheduleRetry(redis, keys_, stream, entry_id, later, run_at_ms, owner);
  if (!mine.ok()) return mine.status();
  if (!*mine) return false;
  Record(redis, task.id(), "scheduled", {"run_at_ms", std::to_string(run_at_ms), "held_by", held_by});
  return true;
}

StatusOr<bool> TaskLifecycle::DeadLetter(RedisClient& redis, const std::string& stream, const std::string& entry_id,
                                         const std::string& raw, const std::string& reason, int64_t times_delivered,
                                         const v1::TaskEnvelope* task, const std::string& owner) const {
  auto mine = DeadLetterTask(redis, keys_, stream, entry_id, raw, reason, times_delivered, owner);
  if (!mine.ok()) return mine.status();
  if (!*mine) return false;
  if (task != nullptr) Record(redis, task->id(), "dead", {"error", reason, "attempts", std::to_string(task->attempt()), "finished_at_ms",
                                           std::to_string(WallClockMs())});
  return true;
}

}  // namespace streamfleet
