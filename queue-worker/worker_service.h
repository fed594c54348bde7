#pragma once
// The queue-worker: WORKER_CONCURRENCY slots, each a thread and a consumer (own connection) in the "workers"
// group of every queue stream, picking queues by weight and reading short tasks ahead in batches (Slot). A
// slot runs each task's handler inline on its own thread (no hand-off per task). One housekeeping thread moves
// due scheduled tasks, fires periodic tasks once per period fleet-wide, and takes over tasks of dead workers
// (XAUTOCLAIM), running them inline too. One watchdog thread per process (watchdog.h) watches every slot and
// the housekeeper while their handlers run: it renews the running and the read-ahead tasks' leases
// (ExtendLease every third of VISIBILITY_TIMEOUT) so only a dead worker's tasks are taken over, cancels an
// attempt at its type's timeout, and replaces a slot thread whose handler ignores cancellation past
// TASK_TIMEOUT_GRACE (slot_threads.h). With EVENTS_WEBHOOK_URL the housekeeper also turns fleet events into
// webhook tasks (event_forwarder.h).
// Failures retry with exponential backoff and jitter through the scheduled set; the last failure, an
// unknown type or an undecodable envelope goes to the dead-letter stream with its reason and history, and the
// task's status record (when it has one and its id is known) says "dead" with that reason.
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "queue-worker/event_forwarder.h"
#include "queue-worker/handlers.h"
#include "queue-worker/watchdog.h"
#include "streamfleet/observability/dependency_health.h"
#include "streamfleet/observability/stream_gauges.h"
#include "streamfleet/taskqueue/task_lifecycle.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet::worker {

// Milliseconds to wait before attempt `attempt` (1-based retry number), jittered in [d/2, d].
int64_t BackoffMs(const RetryPolicy& p, int attempt, uint64_t random);

// What one slot carries from poll to poll. Short tasks are read ahead and acked in batches: the acks of a
// batch ride on the read of the next one (one round trip per batch instead of two per task). A slot is used
// by one thread at a time; the watchdog (watchdog.h) sees its held tasks and running attempt through `watch`.
struct Slot {
  explicit Slot(std::string c)
      : consumer(std::move(c)), watch(std::make_shared<SlotWatch>(consumer)), held(watch->held) {}
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  // What the slot caches per task type, so a task costs one hash lookup of its type.
  struct TypeStats {
    // A copy of the registry's handler (nullptr: unknown type). Never replaced while the slot lives, so an
    // abandoned thread can still be running it.
    std::shared_ptr<const Handler> handler;
    int64_t timeout_ms = 0;
    prometheus::Histogram* duration = nullptr;
    prometheus::Counter* succeeded = nullptr;
  };

  std::string consumer;
  std::shared_ptr<SlotWatch> watch;  // the held tasks and the running attempt, as the watchdog sees them
  std::deque<StreamEntry>& held;     // watch->held: read ahead, not started (in this consumer's PEL)
  FinishedTasks finished;   // succeeded, not XACKed yet, with their status records (task_lifecycle.h)
  int prefetch = 1;         // tasks to read next time: doubles while a batch's tasks are short, else 1
  bool batch_fast = true;   // every task of the current batch finished within kShortTaskMs
  int64_t idle_ms = 0;      // cluster mode: the current idle poll backoff (0 after a read found tasks)
  // Set on the slot's first task. The configuration the handlers see: kept alive by the slot, so by an
  // abandoned thread too.
  std::shared_ptr<const Config> config;
  // The handlers' own connection (never the slot's reading/acking one: an abandoned handler may be in the
  // middle of a command). Owned by the slot's thread (WorkerService::Run), or by the service for direct callers.
  RedisClient* handler_redis = nullptr;
  // Metric children and handlers by label, so the hot path does not hash label maps under the family's lock.
  std::unordered_map<std::string, TypeStats> types;
  std::unordered_map<std::string, prometheus::Counter*> processed;  // "type\noutcome", the rarer outcomes
  std::unordered_map<std::string, prometheus::Histogram*> waits;
};

class WorkerService {
 public:
  WorkerService(const Config& config, Clock& clock, const HandlerRegistry& handlers, prometheus::Registry& registry);

  // Runs every slot and the housekeeper until stop; running tasks finish (graceful drain), then returns.
  void Run(const std::atomic<bool>& stop);
  // One poll of one slot: runs the tasks of one read and acks them; returns how many ran. Standard mode
  // reads at most one; cluster mode at most one per shard of the first queue that has any.
  StatusOr<int> PollOnce(RedisClient& redis, const std::string& consumer, int block_ms);
  // What a slot thread does in a loop: runs the next task it holds, inline on the calling thread, reading a
  // batch first (with the acks it owes) when it holds none. Acks may stay owed after it returns: FlushSlot
  // sends them. Returns 1 if a task ran, 0 if none, kAbandoned if the watchdog abandoned the calling thread
  // while the task ran (only Run's threads can be abandoned): the caller must then return at once.
  StatusOr<int> PollBatch(RedisClient& redis, Slot& slot, int block_ms);
  static constexpr int kAbandoned = -1;
  // Writes the slot's owed status records and acks now (before blocking, and when the slot stops).
  Status FlushSlot(RedisClient& redis, Slot& slot);
  // FlushSlot, reported to redis_health_ only when something was owed (an empty flush proves nothing).
  void FlushAndReport(RedisClient& redis, Slot& slot, const char* what);
  // A batch grows only while each of its tasks finishes within this: read-ahead never delays a long task's
  // successors by more than that, and a held task's lease is renewed with the running task's heartbeat.
  static constexpr int64_t kShortTaskMs = 5;
  // How often a slot whose queues are all paused checks again (PAUSE / RESUME take effect this fast).
  static constexpr int64_t kPausedPollMs = 100;
  // Move due tasks, fire periodic tasks, claim from dead workers (and run what was claimed, inline).
  Status HousekeepOnce(RedisClient& redis, const std::string& consumer);
  Status EnsureGroups(RedisClient& redis);
  Status Ready() const;
  const DependencyHealth& redis_health() const { return redis_health_; }
  void SampleGauges();
  // Seconds the oldest not-yet-delivered task of a queue stream has waited (0 when none waits).
  StatusOr<double> OldestWaitingSeconds(RedisClient& redis, const std::string& stream);

  double Processed(const std::string& type, const std::string& outcome);

 private:
  // How an attempt ended, for Finish.
  struct AttemptEnd {
    AttemptEnd(const std::string& s, const std::string& i, const v1::TaskEnvelope& t) : stream(s), id(i), task(t) {}
    const std::string& stream;
    const std::string& id;
    const v1::TaskEnvelope& task;
    int64_t times_delivered = 1;
    int64_t timeout_ms = 0;
    std::chrono::steady_clock::duration took{};
    Status status;
    std::string result;
    bool timed_out = false;
    bool lease_lost = false;  // another worker owns the task now: neither ack nor retry it
    bool abandoned = false;
  };
  // Runs one delivery of a task held by the slot's consumer, inline; the watchdog keeps its lease and
  // enforces its timeout meanwhile. Returns kAbandoned if this thread was abandoned (it touched nothing
  // after), else 0.
  int Execute(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot);
  // Counts the attempt and acks (through Slot::acks, on success), retries or dead-letters its task.
  void Finish(RedisClient& redis, Slot& slot, AttemptEnd&& end);
  // The body of Run's threads; false when the thread was abandoned. `orphan`: the attempt the abandoned
  // thread this one replaces left, finished first.
  bool SlotLoop(Slot& slot, std::optional<AbandonedAttempt> orphan, const std::atomic<bool>& stop);
  bool HousekeeperLoop(Slot& slot, std::optional<AbandonedAttempt> orphan, const std::atomic<bool>& stop);
  void FinishOrphan(RedisClient& redis, Slot& slot, const AbandonedAttempt& a);
  StatusOr<int> Housekeep(RedisClient& redis, Slot& slot);  // HousekeepOnce; kAbandoned as PollBatch
  // Dead-letters a delivery (TaskLifecycle::DeadLetter: the status record says "dead" when `task` is the
  // decoded envelope) and counts it. False when the dead letter was not written (the delivery stays pending
  // and comes back).
  bool DeadLetter(RedisClient& redis, const std::string& stream, const std::string& entry_id, const std::string& raw,
                  const std::string& reason, int64_t times_delivered, const v1::TaskEnvelope* task);
  void EnsureWatched(Slot& slot);
  Slot::TypeStats& TypeFor(Slot& slot, const std::string& type);
  RedisClient& HandlerRedis(Slot& slot);
  prometheus::Counter& ProcessedChild(Slot& slot, const std::string& type, const std::string& outcome);
  std::vector<std::string> WeightedOrder();
  std::vector<std::string> QueueNames() const;  // the configured queues (QUEUES), in config order
  // Cluster mode, nothing waiting: sleep the slot's idle backoff instead of a blocking read.
  void IdleWait(Slot& slot, int block_ms);
  int64_t NowMs();

  const Config& config_;
  Clock& clock_;
  const HandlerRegistry& handlers_;
  TaskKeys keys_;
  const TaskLifecycle lifecycle_;  // every state change of a task: streams and status record
  prometheus::Family<prometheus::Counter>& processed_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Histogram>& wait_;
  prometheus::Counter& retries_;
  prometheus::Counter& dead_lettered_;
  prometheus::Counter& claimed_;
  prometheus::Gauge& busy_;
  prometheus::Gauge& scheduled_;
  StreamGauges stream_gauges_;  // guarded by sample_mu_
  DependencyHealth redis_health_;  // every slot and the housekeeper report to it; Ready() reads it
  prometheus::Family<prometheus::Counter>& timeouts_total_;
  prometheus::Counter& lease_extensions_;
  prometheus::Gauge& abandoned_;
  prometheus::Family<prometheus::Counter>& events_forwarded_;
  prometheus::Family<prometheus::Gauge>& oldest_waiting_;
  std::unique_ptr<EventForwarder> forwarder_;  // only with EVENTS_WEBHOOK_URL; housekeeping thread only
  std::mutex sample_mu_;
  std::unique_ptr<RedisClient> sample_;
  const std::shared_ptr<const Config> shared_config_;  // what Slot::config points to
  std::mutex spares_mu_;
  // The handlers' connections of direct callers' slots (PollOnce, HousekeepOnce), per consumer; Run's
  // threads own theirs.
  std::map<std::string, std::unique_ptr<RedisClient>> spares_;
  Watchdog watchdog_;  // last: its thread stops before the metrics it reports to die
};

}  // namespace streamfleet::worker
