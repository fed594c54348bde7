#pragma once
// What becomes of a task once a worker has it: one call per state transition, each moving the delivery in
// its streams (ack, retry through the scheduled set, dead letter) and writing the task's status record
// ({prefix}:task:{id}) to match. Besides enqueue (task_queue.h: "pending" / "scheduled") this is the record's
// only writer, so every state follows one TTL rule (TASK_RESULT_TTL; 0 = no record at all) and nobody
// outside this component builds the record's commands.
//
//   pending | scheduled --Running--> running --Succeeded--> succeeded
//                                            --Retry------> retry_scheduled (runs again when due)
//                                            --DeadLetter-> dead
//
// The record only reports: the task's fate is in its streams. So a record write that fails is not an error
// of the transition (Running, and the record after Retry / DeadLetter, are best effort), and a record is
// written only after the stream side of its transition succeeded.
//
// Succeeded tasks are acked in batches (a slot's acks ride on its next read, ReadNextTasks): Succeeded only
// adds the ack and the record to the caller's FinishedTasks, and the record is always sent before its ack,
// so a client that sees the task acked also sees its result.
//
// Thread-safety: a TaskLifecycle is immutable after construction and may be shared; a FinishedTasks belongs
// to one consumer (one thread at a time). Errors: those of the Redis calls (kUnavailable when Redis cannot
// be reached).
#include <cstdint>
#include <string>
#include <vector>

#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/taskqueue/task_keys.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "streamfleet/v1/task.pb.h"

namespace streamfleet {

// Succeeded tasks of one consumer not yet acked, with their "succeeded" records.
struct FinishedTasks {
  std::vector<TaskAck> acks;
  std::vector<std::vector<std::string>> records;  // sent before `acks` (TaskLifecycle::SendRecords / Flush)
  bool empty() const { return acks.empty() && records.empty(); }
};

class TaskLifecycle {
 public:
  // record_ttl_s: the status record's TTL (TASK_RESULT_TTL); <= 0 writes no record.
  TaskLifecycle(TaskKeys keys, int64_t record_ttl_s) : keys_(std::move(keys)), record_ttl_s_(record_ttl_s) {}
  static TaskLifecycle FromConfig(const Config& c) { return TaskLifecycle(TaskKeys::FromConfig(c), c.task_result_ttl_s); }

  const TaskKeys& keys() const { return keys_; }

  // "running", with the consumer that runs it (as XPENDING and the admin name it) and its stream entry.
  void Running(RedisCommands& redis, const std::string& task_id, const std::string& consumer,
               const std::string& entry_id) const;

  // "succeeded" with the handler's result and the attempts made; the ack of (stream, entry_id) and the record
  // wait in `finished` until SendRecords + the next read, or Flush.
  void Succeeded(FinishedTasks& finished, const std::string& stream, const std::string& entry_id,
                 const std::string& task_id, std::string result, int64_t attempts) const;
  // Sends the owed records only: before a read that carries the acks (ReadNextTasks). On error they stay owed.
  Status SendRecords(RedisCommands& redis, FinishedTasks& finished) const;
  // Sends the owed records, then the acks, in one round trip. On error both stay owed (a task whose ack never
  // arrives runs again: handlers are idempotent).
  Status Flush(RedisCommands& redis, FinishedTasks& finished) const;

  // Schedules `next` (the envelope with its attempt counted and its error appended) at run_at_ms and acks the
  // delivery, atomically (ScheduleRetry); then "retry_scheduled" with `error`, next's attempts and run_at_ms.
  // Not OK: nothing changed, the delivery stays pending and comes back.
  Status Retry(RedisClient& redis, const std::string& stream, const std::string& entry_id,
               const v1::TaskEnvelope& next, int64_t run_at_ms, const std::string& error) const;

  // Dead-letters the delivery (raw envelope, reason, times delivered) and acks it, atomically
  // (DeadLetterTask); then, when the envelope was decoded (`task`; nullptr: undecodable, no id to trust),
  // "dead" with the reason and task's attempts, so the record does not say "pending" until it expires.
  // Not OK: nothing changed, the delivery stays pending and comes back.
  Status DeadLetter(RedisClient& redis, const std::string& stream, const std::string& entry_id, const std::string& raw,
                    const std::string& reason, int64_t times_delivered, const v1::TaskEnvelope* task) const;

 private:
  // The record's state and fields, now, best effort.
  void Record(RedisCommands& redis, const std::string& task_id, const std::string& state,
              std::vector<std::string> fields) const;

  const TaskKeys keys_;
  const int64_t record_ttl_s_;
};

}  // namespace streamfleet
