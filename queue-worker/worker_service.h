#pragma once
// The queue-worker: WORKER_CONCURRENCY slots, each a consumer (own connection) in the "workers" group of
// every queue stream, picking queues by weight; one housekeeping thread moves due scheduled tasks, fires
// periodic tasks once per period fleet-wide, and takes over tasks of dead workers (XAUTOCLAIM). While a
// task runs, its slot renews the task's lease (ExtendLease every third of VISIBILITY_TIMEOUT) so only a dead
// worker's tasks are taken over, and enforces the type's timeout (attempt_runner.h). With EVENTS_WEBHOOK_URL
// the housekeeper also turns fleet events into webhook tasks (event_forwarder.h).
// Failures retry with exponential backoff and jitter through the scheduled set; the last failure, an
// unknown type or an undecodable envelope goes to the dead-letter stream with its reason and history.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
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

class WorkerService {
 public:
  WorkerService(const Config& config, Clock& clock, const HandlerRegistry& handlers, prometheus::Registry& registry);

  // Runs every slot and the housekeeper until stop; running tasks finish (graceful drain), then returns.
  void Run(const std::atomic<bool>& stop);
  // One poll of one slot: runs at most one task. Returns 1 if a task ran.
  StatusOr<int> PollOnce(RedisClient& redis, const std::string& consumer, int block_ms);
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
  void Execute(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, const std::string& consumer);
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
