#pragma once
// Redis server metrics from INFO, exported by the fleet itself (streamfleet_redis_*), so hit rate and
// evictions are visible without a separate exporter. Redis's own counters are mirrored into Prometheus
// counters by adding the increase since the last sample (a Redis restart, where they go down, adds 0).
// One process collects them (the compactor by default: REDIS_INFO_METRICS), so N replicas do not
// multiply the load. Thread-safe through the caller (call Sample from one thread).
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>
#include <string>

#include "streamfleet/redis/redis.h"

namespace streamfleet {

class RedisInfoMetrics {
 public:
  explicit RedisInfoMetrics(prometheus::Registry& registry);
  // INFO stats/memory/clients -> metrics; on failure sets streamfleet_redis_up 0 and returns the error.
  Status Sample(RedisClient& redis);
  // The seed's /health JSON: connected, dbSize, total_connections_received, total_commands_processed,
  // used_memory_human.
  static StatusOr<std::string> HealthJson(RedisClient& redis);

 private:
  void Mirror(prometheus::Counter& c, const std::string& node, const std::string& key,
              const std::map<std::string, std::string>& info);

  prometheus::Gauge& up_;
  prometheus::Counter& hits_;
  prometheus::Counter& misses_;
  prometheus::Counter& evicted_;
  prometheus::Counter& expired_;
  prometheus::Gauge& used_memory_;
  prometheus::Gauge& maxmemory_;
  prometheus::Gauge& clients_;
  std::map<std::string, double> last_;
};

// Parses INFO text ("key:value" lines) into a map.
std::map<std::string, std::string> ParseInfo(const std::string& text);

}  // namespace streamfleet
