#pragma once
// Following and cancelling one task by id, from outside a worker: the HTTP task API (ingest's /v1/tasks),
// `streamfleetctl tasks`, the admin UI. Both read and write the task's status record, so both need status
// records on (TASK_RESULT_TTL > 0): without one a task cannot be found.
//
// Cancelling. A waiting task is an opaque envelope inside a stream or the scheduled set, so it is not dug out
// of there. CancelTask marks its id in the cancel markers (a zset of ids by cancel time: `{prefix}:cancelled`;
// with the cluster schema every shard of the task's queue has its own, `{shard}:cancelled`, since the task's
// shard is not recorded) and sets the record to "cancelled". The next-task scripts (task_queue.h,
// ReadNextTasks / DropCancelled) skip a marked task when a worker reads it, in the same script as the read:
// they ack it and drop its marker, so it never starts. A scheduled or retrying task is skipped when it comes
// due and is read.
//
// Only a task that has not started can be cancelled: its record says pending, scheduled or retry_scheduled.
// The one window: a worker reads short tasks ahead of running them (at most WORKER_PREFETCH per slot, and only
// while each finishes within a few ms); a task it read before the cancel still runs, and its record then
// moves on from "cancelled" to "running" and "succeeded" (the record reports what happened). Its marker
// stays until markers older than kCancelMarkerTtlMs are dropped by a later cancel, or until a retry of the
// task is read: that retry is skipped and the record says "cancelled" again (RecordSkippedTaskCancelled).
//
// Thread-safety: none of its own; each call uses the client it is given. Errors: those of Redis
// (kUnavailable when it cannot be reached; nothing is half-written in standard mode: one script).
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "streamfleet/redis/redis.h"
#include "streamfleet/taskqueue/task_keys.h"

namespace streamfleet {

// A marker older than this is dropped by the next cancel: a task delayed longer than that and cancelled
// would run. (Markers of tasks that were skipped are removed at once; this only bounds the rare stale one.)
inline constexpr int64_t kCancelMarkerTtlMs = 30LL * 24 * 3600 * 1000;

// A status record as stored (task-protocol.md): every field, strings, in Redis' order.
struct TaskRecord {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
  const std::string* Field(const std::string& name) const;
  std::string state() const;
};

// The record of task `id`; nullopt when there is none (unknown id, expired, or TASK_RESULT_TTL=0).
StatusOr<std::optional<TaskRecord>> ReadTaskRecord(RedisCommands& redis, const TaskKeys& keys, const std::string& id);

enum class CancelOutcome {
  kCancelled,         // it was waiting: it is marked and will not run
  kAlreadyCancelled,  // nothing changed
  kNotFound,          // no record
  kTooLate,           // it is running or finished (`state` says which): nothing changed
};
struct CancelResult {
  CancelOutcome outcome = CancelOutcome::kNotFound;
  std::string state;  // the record's state before the call ("" when not found)
};

// Cancels task `id` if it has not started (above). record_ttl_s is TASK_RESULT_TTL (the record's new TTL).
StatusOr<CancelResult> CancelTask(RedisCommands& redis, const TaskKeys& keys, const std::string& id,
                                  int64_t record_ttl_s, int64_t now_ms);

// For a worker that skipped a delivery of task `id` for its cancel marker: the record says "cancelled" if it
// still says the task waits (true), else it is left as it is (false; also without a record). A task read
// ahead before its cancel runs once and may fail: its retry is then skipped, and without this its record
// said "retry_scheduled" until it expired.
StatusOr<bool> RecordSkippedTaskCancelled(RedisCommands& redis, const TaskKeys& keys, const std::string& id,
                                          int64_t record_ttl_s, int64_t now_ms);

}  // namespace streamfleet
