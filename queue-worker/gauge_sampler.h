#pragma once
// The queue-worker's gauges that are read from Redis or from the slots when /metrics is scraped (the scrape
// hook), not kept up to date per task: busy slots, abandoned handlers, scheduled tasks, the queue and
// dead-letter streams' gauges, and each queue's oldest waiting task.
//
// Thread-safety: Sample may be called from any thread; calls are serialized by the sampler's lock (it owns
// the connection it samples with).
#include <memory>
#include <mutex>
#include <string>

#include "queue-worker/watchdog.h"
#include "queue-worker/worker_metrics.h"
#include "streamfleet/taskqueue/task_keys.h"

namespace streamfleet::worker {

// Seconds the oldest not-yet-delivered task of a queue stream has waited (0 when none waits): the age of the
// first entry after the group's last-delivered id (its id is its enqueue time, on the Redis server's clock).
StatusOr<double> OldestWaitingSeconds(RedisClient& redis, const std::string& stream);

class GaugeSampler {
 public:
  GaugeSampler(const Config& config, const TaskKeys& keys, WorkerMetrics& metrics, Watchdog& watchdog)
      : config_(config), keys_(keys), metrics_(metrics), watchdog_(watchdog), redis_(RedisClient::Lazy(config.redis)) {}

  void Sample();

 private:
  const Config& config_;
  const TaskKeys& keys_;
  WorkerMetrics& metrics_;
  Watchdog& watchdog_;
  std::mutex mu_;
  std::unique_ptr<RedisClient> redis_;  // guarded by mu_
};

}  // namespace streamfleet::worker
