#pragma once
// The queue-worker: WORKER_CONCURRENCY slots, each a thread and a consumer (own connection) in the "workers"
// group of every queue stream, picking queues by weight and reading short tasks ahead in batches (slot.h,
// poller.h). A slot runs each task's handler inline on its own thread (no hand-off per task; executor.h). One
// scheduling thread moves due scheduled tasks, fires periodic tasks once per period fleet-wide and, with
// EVENTS_WEBHOOK_URL, turns fleet events into webhook tasks (event_forwarder.h); one housekeeping thread takes
// over tasks of dead workers (XAUTOCLAIM) and runs them inline too (housekeeper.h), so a dead worker's long
// tasks never hold back what is due. One watchdog thread per process (watchdog.h) watches every slot and the
// housekeeper while their handlers run: it renews the running and the read-ahead tasks' leases (ExtendLease
// every third of VISIBILITY_TIMEOUT) so only a dead worker's tasks are taken over, cancels an attempt at its
// type's timeout, and replaces a slot thread whose handler ignores cancellation past TASK_TIMEOUT_GRACE
// (slot_threads.h).
// Failures retry with exponential backoff and jitter through the scheduled set; the last failure, an unknown
// type or an undecodable envelope goes to the dead-letter stream with its reason and history (finisher.h,
// retry_policy.h), and the task's status record (when it has one and its id is known) says "dead" with that
// reason (TaskLifecycle, streamfleet/taskqueue/task_lifecycle.h).
//
// WorkerService puts those parts together and runs their threads; the calls below are also what tests and
// benchmarks drive directly (PollOnce, PollBatch, HousekeepOnce, ...), each on a slot of the caller's.
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include <prometheus/registry.h>

#include "queue-worker/executor.h"
#include "queue-worker/finisher.h"
#include "queue-worker/gauge_sampler.h"
#include "queue-worker/handlers.h"
#include "queue-worker/housekeeper.h"
#include "queue-worker/poller.h"
#include "queue-worker/retry_policy.h"
#include "queue-worker/slot.h"
#include "queue-worker/watchdog.h"
#include "queue-worker/worker_metrics.h"
#include "streamfleet/observability/dependency_health.h"
#include "streamfleet/taskqueue/task_lifecycle.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet::worker {

class WorkerService {
 public:
  // `config`, `clock` and `handlers` must outlive the service.
  WorkerService(const Config& config, Clock& clock, const HandlerRegistry& handlers, prometheus::Registry& registry);

  // Runs every slot and the housekeeper until stop; running tasks finish (graceful drain), then returns.
  void Run(const std::atomic<bool>& stop);
  // One poll of one slot: runs the tasks of one read and acks them; returns how many ran. Standard mode
  // reads at most one; cluster mode at most one per shard of the first queue that has any.
  StatusOr<int> PollOnce(RedisClient& redis, const std::string& consumer, int block_ms) {
    return poller_.PollOnce(redis, consumer, block_ms);
  }
  // What a slot thread does in a loop (Poller::PollBatch): runs the next task it holds, inline, reading a
  // batch first when it holds none. Returns 1 if a task ran, 0 if none, kAbandoned if the watchdog abandoned
  // the calling thread while the task ran (only Run's threads can be abandoned): the caller must then return
  // at once.
  StatusOr<int> PollBatch(RedisClient& redis, Slot& slot, int block_ms) {
    return poller_.PollBatch(redis, slot, block_ms);
  }
  static constexpr int kAbandoned = worker::kAbandoned;
  // Writes the slot's owed status records and acks now (before blocking, and when the slot stops).
  Status FlushSlot(RedisClient& redis, Slot& slot) { return poller_.Flush(redis, slot); }
  // FlushSlot, reported to redis_health() only when something was owed (an empty flush proves nothing).
  void FlushAndReport(RedisClient& redis, Slot& slot, const char* what) { poller_.FlushAndReport(redis, slot, what); }
  static constexpr int64_t kShortTaskMs = worker::kShortTaskMs;
  static constexpr int64_t kPausedPollMs = Poller::kPausedPollMs;
  // Move due tasks, fire periodic tasks, claim from dead workers (and run what was claimed, inline).
  Status HousekeepOnce(RedisClient& redis, const std::string& consumer);
  Status EnsureGroups(RedisClient& redis);
  Status Ready() const;
  const DependencyHealth& redis_health() const { return metrics_.redis_health; }
  // The scrape hook: gauges read from Redis and the slots (gauge_sampler.h).
  void SampleGauges() { sampler_.Sample(); }
  // Seconds the oldest not-yet-delivered task of a queue stream has waited (0 when none waits).
  StatusOr<double> OldestWaitingSeconds(RedisClient& redis, const std::string& stream) {
    return worker::OldestWaitingSeconds(redis, stream);
  }

  double Processed(const std::string& type, const std::string& outcome);

 private:
  // The bodies of Run's threads; false when the thread was abandoned. `orphan`: the attempt the abandoned
  // thread this one replaces left, finished first.
  bool SlotLoop(Slot& slot, std::optional<AbandonedAttempt> orphan, const std::atomic<bool>& stop);
  bool HousekeeperLoop(Slot& slot, std::optional<AbandonedAttempt> orphan, const std::atomic<bool>& stop);
  bool SchedulerLoop(const std::string& consumer, const std::atomic<bool>& stop);
  static void Nap(const std::atomic<bool>& stop);

  const Config& config_;
  const TaskLifecycle lifecycle_;  // every state change of a task: streams and status record
  WorkerMetrics metrics_;
  // After the metrics it reports to (destroyed first: its thread stops before they die), before the parts
  // that register slots with it.
  Watchdog watchdog_;
  Finisher finisher_;
  Executor executor_;
  Poller poller_;
  Housekeeper housekeeper_;
  GaugeSampler sampler_;
};

}  // namespace streamfleet::worker
