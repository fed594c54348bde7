#pragma once
// The per-stream gauges every consumer process exports: streamfleet_stream_length{stream} and, per group,
// _pending, _lag, _oldest_pending_seconds, _consumers{stream,group}. One implementation for the compactor
// (chunk, finalize and chunk dead-letter streams) and the queue-worker (queues and task dead letters).
// Call Sample from one thread at a time (the scrape hook).
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <string>
#include <vector>

#include "streamfleet/redis/redis.h"

namespace streamfleet {

class StreamGauges {
 public:
  explicit StreamGauges(prometheus::Registry& registry);
  // XINFO per stream (bounded: a handful of streams). A missing stream is skipped, not an error.
  void Sample(RedisClient& redis, const std::vector<std::string>& streams);

 private:
  prometheus::Family<prometheus::Gauge>& length_;
  prometheus::Family<prometheus::Gauge>& pending_;
  prometheus::Family<prometheus::Gauge>& lag_;
  prometheus::Family<prometheus::Gauge>& oldest_pending_;
  prometheus::Family<prometheus::Gauge>& consumers_;
};

}  // namespace streamfleet
