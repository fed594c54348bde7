#pragma once
// The queue-worker: WORKER_CONCURRENCY slots, each a consumer (own connection) in the "workers" group of
// every queue stream, picking queues by weight, reading short tasks ahead in batches (Slot); one housekeeping thread moves due scheduled tasks, fires
// periodic tasks once per period fleet-wide, and takes over tasks of dead workers (XAUTOCLAIM). While a
// task runs, its slot renews the task's lease (ExtendLease every third of VISIBILITY_TIMEOUT) so only a dead
// worker's tasks are taken over, and enforces the type's timeout (attempt_runner.h). With EVENTS_WEBHOOK_URL
// the housekeeper also turns fleet events into webhook tasks (event_forwarder.h).
// Failures retry with exponential backoff and jitter through the scheduled set; the last failure, an
// unknown type or an undecodable envelope goes to the dead-letter stream with its reason and history.
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "queue-worker/attempt_runner.h"
#include "queue-worker/event_forwarder.h"
#include "queue-worker/handlers.h"
#include "streamfleet/common/dependency_health.h"
#include "streamfleet/common/stream_gauges.h"
#include "streamfleet/common/task_queue.h"

namespace streamfleet::worker {

struct PeriodicTask {
  std::string name, type, queue = "default";
  int64_t interval_ms = 0;
};
// "name=type@interval[@queue],..." with interval like 30s / 5m.
StatusOr<std::vector<PeriodicTask>> ParsePeriodic(const std::string& spec);

// "type=duration,..." (TASK_TIMEOUTS) with durations like 30s / 10m; 0 = no timeout for that type.
StatusOr<std::map<std::string, int64_t>> ParseTimeouts(const std::string& spec);

// Milliseconds to wait before attempt `attempt` (1-based retry number), jittered in [d/2, d].
int64_t BackoffMs(const RetryPolicy& p, int attempt, uint64_t random);

// What one slot carries from poll to poll. Short tasks are read ahead and acked in batches: the acks of a
// batch ride on the read of the next one (one round trip per batch instead of two per task).
struct Slot {
  explicit Slot(std::string c) : consumer(std::move(c)) {}
  std::string consumer;
  std::deque<StreamEntry> held;                          // read ahead, not started (in this consumer's PEL)
  std::vector<TaskAck> acks;                             // finished, not XACKed yet
  std::vector<std::vector<std::string>> status_writes;   // result hashes to write before those acks
  int prefetch = 1;         // tasks to read next time: doubles while a batch's tasks are short, else 1
  bool batch_fast = true;   // every task of the current batch finished within kShortTaskMs
  // Metric children by label, so the hot path does not hash label maps under the family's lock.
  std::unordered_map<std::string, prometheus::Counter*> processed;  // "type\noutcome"
  std::unordered_map<std::string, prometheus::Histogram*> durations, waits;
};

class WorkerService {
 public:
  WorkerService(const Config& config, Clock& clock, const HandlerRegistry& handlers, prometheus::Registry& registry);

  // Runs every slot and the housekeeper until stop; running tasks finish (graceful drain), then returns.
  void Run(const std::atomic<bool>& stop);
  // One poll of one slot: runs at most one task and acks it. Returns 1 if a task ran.
  StatusOr<int> PollOnce(RedisClient& redis, const std::string& consumer, int block_ms);
  // What a slot thread does in a loop: runs the next task it holds, reading a batch first (with the acks
  // it owes) when it holds none. Acks may stay owed after it returns: FlushSlot sends them.
  StatusOr<int> PollBatch(RedisClient& redis, Slot& slot, int block_ms);
  // Writes the slot's owed result hashes and acks now (before blocking, and when the slot stops).
  Status FlushSlot(RedisClient& redis, Slot& slot);
  // A batch grows only while each of its tasks finishes within this: read-ahead never delays a long task's
  // successors by more than that, and a held task's lease is renewed with the running task's heartbeat.
  static constexpr int64_t kShortTaskMs = 5;
  // Move due tasks, fire periodic tasks, claim from dead workers (and run what was claimed).
  Status HousekeepOnce(RedisClient& redis, const std::string& consumer);
  Status EnsureGroups(RedisClient& redis);
  Status Ready() const;
  const DependencyHealth& redis_health() const { return redis_health_; }
  void SampleGauges();
  // Seconds the oldest not-yet-delivered task of a queue stream has waited (0 when none waits).
  StatusOr<double> OldestWaitingSeconds(RedisClient& redis, const std::string& stream);

  double Processed(const std::string& type, const std::string& outcome);

 private:
  // Runs one delivery of a task held by `consumer`, keeping its lease while it runs (see attempt_runner.h).
  // A success is acked through the slot (Slot::acks), everything else at once.
  void Execute(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot);
  prometheus::Counter& ProcessedChild(Slot& slot, const std::string& type, const std::string& outcome);
  AttemptRunner& RunnerFor(const std::string& consumer);
  std::vector<std::string> WeightedOrder();
  int64_t NowMs();

  const Config& config_;
  Clock& clock_;
  const HandlerRegistry& handlers_;
  TaskKeys keys_;
  std::vector<PeriodicTask> periodic_;
  std::map<std::string, int64_t> timeouts_;  // per type, from TASK_TIMEOUTS
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
  std::mutex runners_mu_;
  std::map<std::string, std::unique_ptr<AttemptRunner>> runners_;  // one per consumer (slot)
};

}  // namespace streamfleet::worker
