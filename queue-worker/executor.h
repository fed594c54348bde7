#pragma once
// Runs one delivery of a task inline on the calling thread: decodes and admits it (undecodable, newer-version
// and unknown-type tasks are dead-lettered at once), marks it running, runs its handler under the watchdog
// (watchdog.h: leases renewed, timeout enforced, the thread abandoned if the handler ignores cancellation),
// and hands the end of the attempt to the Finisher.
//
// Thread-safety: each call runs on the thread that owns the slot it is given; the executor's own state (the
// handlers' connections of direct callers' slots) is guarded by its lock. An abandoned thread touches
// neither the executor nor the service once its handler returns: they may be gone by then.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "queue-worker/finisher.h"
#include "queue-worker/handlers.h"
#include "queue-worker/slot.h"
#include "queue-worker/watchdog.h"
#include "queue-worker/worker_metrics.h"
#include "streamfleet/taskqueue/task_lifecycle.h"

namespace streamfleet::worker {

class Executor {
 public:
  Executor(const Config& config, const HandlerRegistry& handlers, const TaskLifecycle& lifecycle,
           WorkerMetrics& metrics, Finisher& finisher, Watchdog& watchdog);

  // Runs one delivery of a task held by the slot's consumer. Returns kAbandoned if this thread was abandoned
  // (it touched nothing after), else 0.
  int Execute(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot);
  // On the thread that replaced an abandoned one: finishes the attempt that thread left (a timeout).
  void FinishOrphan(RedisClient& redis, Slot& slot, const AbandonedAttempt& a);
  // On the slot's first task (or read): gives it the handlers' configuration and has the watchdog watch it.
  void Watch(Slot& slot);

 private:
  // Execute without the deferred-ack bookkeeping around it.
  int ExecuteEntry(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot);
  // The checks before a decoded task may run: its version, its queue, its type. Dead-letters it (and returns
  // nullptr) when it can never run; records its queue wait on its first delivery.
  Slot::TypeStats* Admit(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot,
                         v1::TaskEnvelope& task);
  // The type's fleet-wide limits (TASK_LIMITS, task_limits.h): true with a permit taken; false when the task
  // was postponed (back to the scheduled set, not an attempt) or Redis failed (it stays pending).
  bool Permit(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, const Slot& slot,
              Slot::TypeStats& type, const v1::TaskEnvelope& task);
  // False when the entry's lease may have lapsed (no heartbeat got through for half a visibility timeout) and
  // another consumer owns it now: it is not run here.
  bool StillOurs(RedisClient& redis, const StreamEntry& entry, Slot& slot);
  // How long a permit of the type lasts from its taking or its last renewal.
  int64_t PermitLeaseMs(const Slot::TypeStats& type) const;
  // Runs an admitted task's handler with the watchdog watching; kAbandoned as Execute.
  int Run(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot, Slot::TypeStats& type,
          v1::TaskEnvelope& task);
  // The slot's cached stats of a type: its handler copy (nullptr: unknown), timeout, metric children.
  Slot::TypeStats& TypeFor(Slot& slot, const std::string& type);
  // The connection the slot's handlers use (a spare per consumer for direct callers' slots).
  RedisClient& HandlerRedis(Slot& slot);

  const Config& config_;
  const HandlerRegistry& handlers_;
  const TaskLifecycle& lifecycle_;
  WorkerMetrics& metrics_;
  Finisher& finisher_;
  Watchdog& watchdog_;
  const std::shared_ptr<const Config> shared_config_;  // what Slot::config points to
  std::mutex spares_mu_;
  // The handlers' connections of direct callers' slots (PollOnce, HousekeepOnce), per consumer; Run's
  // threads own theirs. Guarded by spares_mu_.
  std::map<std::string, std::unique_ptr<RedisClient>> spares_;
};

}  // namespace streamfleet::worker
