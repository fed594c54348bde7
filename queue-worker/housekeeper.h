#pragma once
// What the worker does besides the slots' work, each round: moves due scheduled tasks (delayed
// tasks and retries) to their queues, fires periodic tasks (PERIODIC_TASKS) once per period and cron
// schedules (SCHEDULES, schedule_firer.h) once per occurrence fleet-wide,
// forwards fleet events to EVENTS_WEBHOOK_URL (event_forwarder.h), and takes over the tasks of dead workers
// (XAUTOCLAIM after VISIBILITY_TIMEOUT), running them inline or, past MAX_DELIVERIES, dead-lettering them.
// Every kTrimIntervalMs it trims the queue streams to what the workers' group has acknowledged and removes the
// group's consumers that are long gone (DEAD_CONSUMER_IDLE): without it every task ever enqueued stayed in
// its stream, and Redis (noeviction) would end by refusing every write of the fleet.
//
// WorkerService::Run calls the two halves from two threads: Schedule on the scheduling thread, Reclaim on the
// housekeeping thread, which runs what it claims inline. Run on one thread, a dead worker's long tasks held
// back every delayed task, retry, periodic task, cron occurrence and event until they had all run.
//
// Thread-safety: Schedule one thread at a time, Reclaim one thread at a time (the two share no state);
// Housekeep (both, in turn) is for a direct caller (HousekeepOnce) and excludes the other two.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "queue-worker/event_forwarder.h"
#include "queue-worker/executor.h"
#include "queue-worker/finisher.h"
#include "queue-worker/schedule_firer.h"
#include "queue-worker/slot.h"
#include "queue-worker/worker_metrics.h"
#include "streamfleet/base/clock.h"
#include "streamfleet/taskqueue/task_lifecycle.h"

namespace streamfleet::worker {

class Housekeeper {
 public:
  Housekeeper(const Config& config, Clock& clock, const TaskLifecycle& lifecycle, Executor& executor,
              Finisher& finisher, WorkerMetrics& metrics);

  // One round, as the slot's consumer: Schedule, then Reclaim (also when Schedule failed). Returns 0, or
  // kAbandoned if the watchdog abandoned the calling thread while a claimed task ran (as Poller::PollBatch),
  // or the first failure.
  StatusOr<int> Housekeep(RedisClient& redis, Slot& slot);
  // Due scheduled tasks to their queues, periodic tasks, cron schedules, events (as `consumer` of the events
  // group) and, every kTrimIntervalMs, the trim. Runs no task. A step that fails does not stop the others;
  // the first failure is returned.
  Status Schedule(RedisClient& redis, const std::string& consumer);
  // XAUTOCLAIM of each queue stream's idle tasks; runs them inline (kAbandoned as Housekeep). Once `stop` is
  // set no further stream is claimed from (what was claimed still runs, as a slot's read-ahead does). A stream
  // that cannot be claimed from is passed over for the others; the first such failure is returned.
  StatusOr<int> Reclaim(RedisClient& redis, Slot& slot, const std::atomic<bool>* stop = nullptr);

 private:
  // Each periodic task whose period (of Redis' clock) has not fired yet: exactly one process of the fleet
  // enqueues it (EnqueuePeriodic).
  Status FirePeriodic(RedisClient& redis, int64_t now_ms);
  Status ForwardEvents(RedisClient& redis, const std::string& consumer, int64_t now_ms);
  // XTRIM MINID of each queue stream below its oldest pending or undelivered entry (TrimAcknowledged), and
  // RemoveDeadConsumers; at most once per kTrimIntervalMs.
  Status TrimQueues(RedisClient& redis, int64_t now_ms);
  const Config& config_;
  Clock& clock_;
  const TaskLifecycle& lifecycle_;
  Executor& executor_;
  Finisher& finisher_;
  WorkerMetrics& metrics_;
  std::unique_ptr<EventForwarder> forwarder_;  // only with EVENTS_WEBHOOK_URL
  ScheduleFirer schedules_;                    // SCHEDULES
  // Reclaim's. Tasks claimed per stream and round; the ones waiting while the first runs are held with
  // renewed leases.
  static constexpr int kClaimCount = 10;
  std::map<std::string, std::string> claim_cursors_;  // XAUTOCLAIM's next start per queue stream
  // Schedule's. Trimming reads XINFO GROUPS and XPENDING of every queue stream: not on every round (a few ms
  // apart).
  static constexpr int64_t kTrimIntervalMs = 10000;
  int64_t next_trim_ms_ = 0;
};

}  // namespace streamfleet::worker
