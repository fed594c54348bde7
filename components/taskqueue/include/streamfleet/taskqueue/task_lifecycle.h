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
// A succeeded task's record and ack go to Redis at once (or with the next task's start), without waiting for replies
// (RedisCommands::Send: read with the connection's next reply), record first, so a client that sees the task
// acked also sees its result. A worker killed at any moment therefore re-runs only the task it was running
// (and at most one finished task per consumer: the one whose ack the kernel had not yet delivered, or whose
// ack waited for the next task's "running" write -- see Succeeded), never a batch of finished ones.
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

// Succeeded tasks of one consumer whose record and ack could not be sent (a connection error), in order:
// they go with the next Succeeded or Flush.
struct FinishedTasks {
  std::vector<std::vector<std::string>> owed;
  bool empty() const { return owed.empty(); }
};

class TaskLifecycle {
 public:
  // record_ttl_s: the status record's TTL (TASK_RESULT_TTL); <= 0 writes no record.
  TaskLifecycle(TaskKeys keys, int64_t record_ttl_s) : keys_(std::move(keys)), record_ttl_s_(record_ttl_s) {}
  static TaskLifecycle FromConfig(const Config& c) { return TaskLifecycle(TaskKeys::FromConfig(c), c.task_result_ttl_s); }

  const TaskKeys& keys() const { return keys_; }

  // "running", with the consumer that runs it (as XPENDING and the admin name it) and its stream entry.
  // Sent without waiting (best effort: the record only reports).
  void Running(RedisCommands& redis, const std::string& task_id, const std::string& consumer,
               const std::string& entry_id) const;
  // The same, in one write with what `finished` owes before it (a predecessor's record and ack that waited
  // for this: Succeeded with send_now false). Those stay owed if the write fails; the record is best effort.
  void Running(RedisCommands& redis, FinishedTasks& finished, const std::string& task_id,
               const std::string& consumer, const std::string& entry_id) const;

  // "succeeded" with the handler's result and the attempts made, then the ack of (stream, entry_id): sent
  // now without waiting for the replies, after whatever `finished` still owes. On a connection error all of
  // it stays owed in `finished` (a task whose ack never arrives runs again: handlers are idempotent).
  // send_now false: only added to `finished`, for a caller that writes them with its next command -- the
  // next task's Running, issued before that task's handler starts, so a crash re-runs no more than it would
  // have (one write per task instead of two, which over TLS is one TLS record each way less).
  Status Succeeded(RedisCommands& redis, FinishedTasks& finished, const std::string& stream,
                   const std::string& entry_id, const std::string& task_id, std::string result,
                   int64_t attempts, bool send_now = true) const;
  // Writes what `finished` owes without waiting for the replies (RedisCommands::Send); kept owed on error.
  Status SendOwed(RedisCommands& redis, FinishedTasks& finished) const;
  bool records() const { return record_ttl_s_ > 0; }
  int64_t record_ttl_s() const { return record_ttl_s_; }
  // Sends what `finished` owes and waits until Redis has applied it and every earlier Send of this
  // connection (RedisCommands::AwaitSent): before a consumer gives its tasks up, and in tests.
  Status Flush(RedisCommands& redis, FinishedTasks& finished) const;

  // Schedules `next` (the envelope with its attempt counted and its error appended) at run_at_ms and acks the
  // delivery, atomically (ScheduleRetry); then "retry_scheduled" with `error`, next's attempts and run_at_ms.
  // Not OK: nothing changed, the delivery stays pending and comes back. OK with nothing done: the delivery was
  // no longer pending (another consumer claimed and settled it), so neither the retry nor the record is written.
  // `owner`: the consumer whose delivery this is (the worker's slot); another consumer that claimed it since
  // decides it instead ("" = whichever consumer holds it: tools and tests). The same for Postpone and DeadLetter.
  // All three answer whether they wrote it (false: nothing done, the delivery was not this owner's to settle).
  StatusOr<bool> Retry(RedisClient& redis, const std::string& stream, const std::string& entry_id,
                       const v1::TaskEnvelope& next, int64_t run_at_ms, const std::string& error,
                       const std::string& owner = "") const;

  // A task a limit holds back (task_limits.h): back to the scheduled set at run_at_ms as it is (not an
  // attempt: `task` unchanged but for run_at_ms) and acked, atomically; then "scheduled" with run_at_ms and
  // `held_by` (the limit). Not OK: nothing changed, the delivery stays pending and comes back.
  StatusOr<bool> Postpone(RedisClient& redis, const std::string& stream, const std::string& entry_id,
                          const v1::TaskEnvelope& task, int64_t run_at_ms, const std::string& held_by,
                          const std::string& owner = "") const;

  // Dead-letters the delivery (raw envelope, reason, times delivered) and acks it, atomically
  // (DeadLetterTask); then, when the envelope was decoded (`task`; nullptr: undecodable, no id to trust),
  // "dead" with the reason and task's attempts, so the record does not say "pending" until it expires.
  // Not OK: nothing changed, the delivery stays pending and comes back.
  StatusOr<bool> DeadLetter(RedisClient& redis, const std::string& stream, const std::string& entry_id,
                            const std::string& raw, const std::string& reason, int64_t times_delivered,
                            const v1::TaskEnvelope* task, const std::string& owner = "") const;

 private:
  // The record's state and fields, now, best effort.
  void Record(RedisCommands& redis, const std::string& task_id, const std::string& state,
              std::vector<std::string> fields) const;

  const TaskKeys keys_;
  const int64_t record_ttl_s_;
};

}  // namespace streamfleet
