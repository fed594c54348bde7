#pragma once
// The task queue's client side, shared by the queue-worker, the CLI and tests: key names, enqueue
// (immediate, delayed, unique), moving due scheduled tasks, and the atomic retry / dead-letter transitions
// (a worker makes them through task_lifecycle.h, with the status record).
// Any language can enqueue by XADD of a streamfleet.v1.TaskEnvelope to `{prefix}:queue:{name}`, field "e"
// (standard mode). In cluster mode every script's keys share one queue shard's hash tag (task_keys.h).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "streamfleet/base/clock.h"
#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/taskqueue/task_keys.h"
#include "streamfleet/v1/task.pb.h"

namespace streamfleet {

// ValidQueueName (queue names are [a-z0-9_.-]{1,64}: they become key names) comes with config.h, from
// streamfleet/base/task_specs.h: PERIODIC_TASKS names queues too.

struct EnqueueOptions {
  std::string queue = "default";
  int64_t run_at_ms = 0;          // 0 = now
  std::string unique_key;         // "" = not unique
  int64_t unique_ttl_s = 3600;
  std::string id;                 // "" = generated
  // TTL of the task's status record ({prefix}:task:{id}, "pending"/"scheduled" until a worker updates it).
  // 0 = no status record: what TASK_RESULT_TTL=0 means fleet-wide, since the workers then never update it
  // (a record written here would say "pending" long after the task ran). It is also most of what an
  // enqueue costs Redis (HSET + EXPIRE next to the XADD).
  int64_t status_ttl_s = 86400;

  // Defaults with the status TTL of this fleet's configuration (TASK_RESULT_TTL).
  static EnqueueOptions FromConfig(const Config& config) {
    EnqueueOptions o;
    o.status_ttl_s = config.task_result_ttl_s;
    return o;
  }
};

struct EnqueueResult {
  std::string id;
  bool duplicate = false;  // unique key already held: nothing enqueued
  bool scheduled = false;  // waiting in the scheduled set
};

// now_ms is the caller's clock (tests move it); delayed tasks wait in Redis, never in a process. A unique task
// on the standard schema is one script (UniqueEnqueueCall: key, add and status together); on a cluster, whose
// unique keys are in other slots than the queues, the key is taken first and released when the add fails
// (docs/task-protocol.md, "Enqueue").
StatusOr<EnqueueResult> EnqueueTask(RedisCommands& redis, const TaskKeys& keys, const std::string& type,
                                    const std::string& payload, const EnqueueOptions& opts, int64_t now_ms);

// What EnqueueTask sends for a task without a unique key (a unique one on the standard schema:
// UniqueEnqueueCall), in order: the status record (unless status_ttl_s is 0), then the XADD or ZADD that must
// succeed, last. For callers that send them on a connection of their own, e.g. asynchronously (ingest's task API); standard key schema only (a
// cluster needs the status writes in a round trip of their own first). kInvalidArgument like EnqueueTask.
// Fills out.id (opts.id or a new one) and out.scheduled.
StatusOr<std::vector<std::vector<std::string>>> EnqueueCommands(const TaskKeys& keys, const std::string& type,
                                                                const std::string& payload,
                                                                const EnqueueOptions& opts, int64_t now_ms,
                                                                EnqueueResult& out);
// A new task id: 20 random lowercase hex digits (what EnqueueTask gives a task without opts.id).
std::string NewTaskId();
// The script EnqueueTask runs on a cluster when the add failed after the unique key was taken: KEYS[1] = the
// unique key, ARGV[1] = the task id; deletes the key only while it still names that task.
const LuaScript& ReleaseUniqueKeyScript();

// A unique task's enqueue as one script: the unique key's check and SET, the add and the status record
// together, so neither a failed add nor a crash between two round trips can leave the key held for a task
// that was never added (a retry would be answered "duplicate" of nothing). Standard key schema only: a
// cluster keeps unique keys in other slots than the queues. Send `keys`/`args` with GuardedEnqueueScript()
// (EnqueueTask does; the task API sends them on its own connection); fills out.id and out.scheduled.
// GuardedEnqueueScript's text is docs/task-protocol.md's "enqueue script", which every language's producer
// sends with the same arguments.
struct GuardedCall {
  std::vector<std::string> keys;
  std::vector<std::string> args;
};
StatusOr<GuardedCall> UniqueEnqueueCall(const TaskKeys& keys, const std::string& type, const std::string& payload,
                                        const EnqueueOptions& opts, int64_t now_ms, EnqueueResult& out);
const LuaScript& GuardedEnqueueScript();
// The script's reply for a unique enqueue: OK with out.duplicate and out.id (the holder's) set when the key
// was held; an error reply (the add's) as a Status.
Status ReadUniqueEnqueueReply(const StatusOr<RedisValue>& reply, EnqueueResult& out);

// A periodic task (PERIODIC_TASKS): enqueued at most once per `interval_ms` period of Redis' clock (TIME),
// fleet-wide, whatever the workers' clocks say; {prefix}:periodic:{name} keeps the last period fired. In
// standard mode the mark and the task are written by one script; in a cluster (the mark in another slot
// than the queue) the mark is taken first and given back when the add fails. True when this call fired it.
StatusOr<bool> EnqueuePeriodic(RedisCommands& redis, const TaskKeys& keys, const std::string& name,
                               int64_t interval_ms, const std::string& type, const EnqueueOptions& opts,
                               int64_t now_ms);

// A task's status record ({prefix}:task:{id}): HSET of `state` and the field/value pairs in `fields`, then
// EXPIRE ttl_s, appended to `cmds`. Every writer of the record goes through here: enqueue, and TaskLifecycle
// (task_lifecycle.h) for each state a worker moves a task to, so every state follows one TTL rule: ttl_s <= 0
// (TASK_RESULT_TTL=0) or an unknown id appends nothing. The EXPIRE also gives a record that expired while its
// task waited a TTL again.
void AppendTaskStatus(const TaskKeys& keys, const std::string& id, const std::string& state,
                      std::vector<std::string> fields, int64_t ttl_s, std::vector<std::vector<std::string>>& cmds);

// Many tasks in one round trip (BullMQ's addBulk): all or nothing on a connection error. Unique tasks are
// refused here (each needs its own answer, held or not, before anything of it is written); use EnqueueTask.
struct TaskToEnqueue {
  std::string type;
  std::string payload;
  EnqueueOptions options;
};
StatusOr<std::vector<EnqueueResult>> EnqueueTasks(RedisCommands& redis, const TaskKeys& keys,
                                                  const std::vector<TaskToEnqueue>& tasks, int64_t now_ms);

// Moves scheduled tasks due at now_ms to their queue streams (ZREM + XADD in one script: once). Standard
// mode moves every queue's from the one scheduled set; cluster mode runs one script per shard of each of
// `queues` (up to `limit` each), pipelined.
StatusOr<int64_t> MoveDueTasks(RedisClient& redis, const TaskKeys& keys, int64_t now_ms, int limit,
                               const std::vector<std::string>& queues = {});

// The stream side of a retry and of a dead letter. A worker calls them through TaskLifecycle, which also
// writes the status record to match; these alone leave the record as it was.
// `stream` is the entry's stream shard: the retry and the dead letter stay in its shard (cluster mode).
// Atomically, while the entry is still pending on `owner` (the consumer whose delivery failed; "" = on any
// consumer, for tools): schedules a retry (envelope with attempt+1 and the error appended) and XACKs it.
// False: the entry was no longer pending there and nothing was written: a consumer that claimed it while this
// one ran it has retried or finished it already, or is running it now and decides it.
StatusOr<bool> ScheduleRetry(RedisClient& redis, const TaskKeys& keys, const std::string& stream,
                             const std::string& entry_id, const v1::TaskEnvelope& next, int64_t run_at_ms,
                             const std::string& owner = "");
// The same for a dead letter (with reason and history): written only while the entry is still pending on
// `owner`.
StatusOr<bool> DeadLetterTask(RedisClient& redis, const TaskKeys& keys, const std::string& stream,
                              const std::string& entry_id, const std::string& raw_envelope, const std::string& reason,
                              int64_t times_delivered, const std::string& owner = "");

// One round trip for a worker slot: which queues are paused, and up to `count` waiting tasks of the first
// open queue that has any (queues tried in the given order, e.g. weighted). Without a task, open_queues lists
// where to block next. Cluster mode: one script per shard (its pause flag + its stream), queue after queue
// until one has tasks. With count >= shards all of a queue's shards go in one pipelined round trip,
// ceil(count / shards) each (so up to shards - 1 more than count); with fewer, `count` shards per round
// trip, one task each (never more than count). (A slot's acks do not wait for this read: each goes out as
// its task finishes, TaskLifecycle::Succeeded.)
// Tasks marked cancelled (task_control.h) are not returned: the script acks them, drops their markers and
// lists their ids in `cancelled`.
struct NextTask {
  std::vector<StreamEntry> entries;  // empty when none was waiting
  std::vector<std::string> open_queues;
  std::vector<std::string> cancelled;  // ids of the cancelled tasks skipped (and acked) by this read
  // Cluster schema: a shard's error in a read whose other shards delivered tasks or skipped cancelled ones
  // (those are returned; the caller reports this).
  Status shard_error;
};
StatusOr<NextTask> ReadNextTasks(RedisClient& redis, const TaskKeys& keys, const std::string& group,
                                 const std::string& consumer, const std::vector<std::string>& queues, int count);

// The same cancel check for the entries of a blocking XREADGROUP (standard mode; the next-task scripts
// check their own): removes the cancelled ones from `entries`, acks them and returns their task ids. One
// EXISTS when nothing is cancelled.
StatusOr<std::vector<std::string>> DropCancelled(RedisClient& redis, const TaskKeys& keys,
                                                 std::vector<StreamEntry>& entries);

}  // namespace streamfleet
