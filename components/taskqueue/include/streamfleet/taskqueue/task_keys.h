#pragma once
// Key names of the task queue, in one place (the chunk path's are in keys.h).
//
// Standard mode keeps the documented names: one stream per queue, `{prefix}:queue:{name}`, which any
// language may XADD a streamfleet.v1.TaskEnvelope to (field "e"), one scheduled zset `{prefix}:scheduled`,
// one dead-letter stream `{prefix}:dlq:tasks` and the paused set `{prefix}:paused`.
//
// Cluster mode (KeySchemaMode::kCluster) splits each queue into `shards()` stream shards so a queue spreads
// over the masters, and keeps every key a script touches in the shard's hash tag:
//   {prefix:queue:name:i}              the stream shard
//   {prefix:queue:name:i}:scheduled    its delayed tasks and retries (zset, "queue|envelope" by run_at ms)
//   {prefix:queue:name:i}:dlq          its dead letters
//   {prefix:queue:name:i}:paused       its pause flag (a string; the next-task script reads it)
//   {prefix:queue:name:i}:cancelled    ids of its cancelled tasks (zset by cancel time; task_cancel.h)
// The paused set `{prefix}:paused` stays the list operators see in both modes (single-key commands only).
// Status hashes, unique keys and periodic locks are single-key commands: global in both modes.
#include <cstdint>
#include <string>
#include <vector>

#include "streamfleet/base/config.h"

namespace streamfleet {

class TaskKeys {
 public:
  explicit TaskKeys(std::string prefix) : TaskKeys(std::move(prefix), KeySchemaMode::kStandard, 1) {}
  TaskKeys(std::string prefix, KeySchemaMode mode, int shards);
  static TaskKeys FromConfig(const Config& c) {
    return TaskKeys(c.stream_prefix, c.key_schema, c.task_queue_shards);
  }

  bool cluster() const { return cluster_; }
  int shards() const { return shards_; }  // 1 in standard mode

  // Stream shard `shard` of a queue (standard mode: the one stream, shard ignored).
  std::string Queue(const std::string& name, int shard = 0) const;
  std::vector<std::string> QueueShards(const std::string& name) const;
  // Every shard stream of every queue named.
  std::vector<std::string> QueueStreams(const std::vector<std::string>& names) const;
  // The queue a stream shard belongs to; "" when `stream` is not one.
  std::string QueueOf(const std::string& stream) const;
  // The shard a task goes to: by its unique key when it has one (a duplicate lands where the first did),
  // else spread at random.
  int ShardFor(const std::string& unique_key) const;

  // The keys next to one stream shard: same hash tag in cluster mode, the global ones in standard mode.
  std::string ScheduledOf(const std::string& stream) const;
  std::string DeadLettersOf(const std::string& stream) const;
  std::string PausedFlagOf(const std::string& stream) const;  // cluster mode only
  // The cancel markers the next-task scripts check (task_cancel.h): Cancelled() in standard mode.
  std::string CancelledOf(const std::string& stream) const;
  // Every scheduled zset / dead-letter stream of the queues named (one each in standard mode).
  std::vector<std::string> AllScheduled(const std::vector<std::string>& queues) const;
  std::vector<std::string> AllDeadLetters(const std::vector<std::string>& queues) const;

  // Standard mode's global keys (in cluster mode Scheduled/DeadLetters are unused by the fleet).
  std::string Scheduled() const { return p_ + ":scheduled"; }
  std::string DeadLetters() const { return p_ + ":dlq:tasks"; }
  std::string Paused() const { return p_ + ":paused"; }  // set of paused queue names, both modes
  std::string Cancelled() const { return p_ + ":cancelled"; }
  std::string Status(const std::string& id) const { return p_ + ":task:" + id; }
  std::string Unique(const std::string& key) const { return p_ + ":unique:" + key; }
  // PERIODIC_TASKS: the last period of task `name` fired (a number of intervals of Redis' clock).
  std::string Periodic(const std::string& name) const { return p_ + ":periodic:" + name; }
  // SCHEDULES: the last occurrence of schedule `name` that fired (unix ms, a string), fleet-wide.
  std::string ScheduleLastFired(const std::string& name) const { return p_ + ":schedule:" + name; }
  static std::string Group() { return "workers"; }

 private:
  std::string p_;
  bool cluster_;
  int shards_;
};

}  // namespace streamfleet
