#pragma once
// The overview's recent history: a background thread samples Redis every ADMIN_SAMPLE_INTERVAL and keeps
// the last `capacity` samples in a ring buffer (memory only: a restarted admin starts an empty chart).
// Rates come from counters Redis keeps itself, so they cover the whole fleet, not one process:
//   chunks in  = growth of the chunk streams' entries-added (XINFO STREAM)
//   chunks out = growth of the compactor group's entries-read (XINFO GROUPS)
//   tasks in / tasks read = the same over the task queues and their workers group
// and the latency columns are the oldest pending entry's age (how long work waits on a consumer) and the
// sampler's own Redis round trip. Thread-safe.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet::admin {

struct Sample {
  int64_t at_ms = 0;
  double chunks_in_per_s = 0, chunks_out_per_s = 0;
  double tasks_in_per_s = 0, tasks_out_per_s = 0;
  int64_t chunk_lag = 0, task_lag = 0;
  double oldest_pending_s = 0;  // over every fleet group
  double redis_rtt_ms = 0;
};

// The raw counters one sample is computed from (cumulative; rates are differences).
struct Counters {
  int64_t chunks_added = 0, chunks_read = 0, tasks_added = 0, tasks_read = 0;
  int64_t chunk_lag = 0, task_lag = 0;
  double oldest_pending_s = 0;
};
// Reads the counters of the fleet's chunk streams and task queues.
StatusOr<Counters> ReadCounters(RedisClient& redis, const Config& config);
// One sample from two readings `dt_ms` apart (a counter that went down, e.g. a deleted stream, rates 0).
Sample RateBetween(const Counters& before, const Counters& after, int64_t dt_ms);

class Sampler {
 public:
  Sampler(const Config& config, size_t capacity = 180);
  ~Sampler();
  void Start();
  void Stop();
  std::vector<Sample> Samples() const;
  // Takes one sample now (the thread's loop body; tests call it directly).
  Status SampleOnce(RedisClient& redis);

 private:
  void Run();

  const Config& config_;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::deque<Sample> samples_;  // guarded by mu_
  bool have_last_ = false;      // touched by the sampling thread only
  Counters last_;
  int64_t last_ms_ = 0;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace streamfleet::admin
