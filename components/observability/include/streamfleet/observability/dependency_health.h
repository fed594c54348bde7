#pragma once
// Reachability of one dependency (Redis, the database) as this process's own calls see it. Callers report
// the status of each call; the tracker turns that stream into state changes, so an outage is logged once
// when it starts and once when it ends (never per failed call: no log flood) and counted once in
// streamfleet_<dependency>_outages_total. Thread-safe; a report that changes nothing takes no lock.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <mutex>

#include "streamfleet/base/status.h"

namespace streamfleet {

enum class Dependency { kRedis, kDatabase };

class DependencyHealth {
 public:
  // Counts into streamfleet_redis_outages_total or streamfleet_db_outages_total. up_gauge, when given,
  // mirrors the state (1 up, 0 down): the process's existing *_up gauge, so alerts keep their names.
  DependencyHealth(prometheus::Registry& registry, Dependency dependency, prometheus::Gauge* up_gauge = nullptr);
  // streamfleet_redis_up, the gauge each process's Redis health mirrors (one per registry): the alert on it
  // covers every process that needs Redis, not only ingest.
  static prometheus::Gauge& RedisUpGauge(prometheus::Registry& registry);

  // Ok: reachable. A retryable failure (unavailable, timeout): unreachable. Any other failure means the
  // dependency answered (a rejected script, a constraint), so the state is left as it is.
  // what: the operation, for the log line of a state change.
  void Report(const Status& s, const char* what);
  // Unknown until the first report; only an up state counts as reachable.
  bool up() const { return state_.load() == kUp; }
  // Seen unreachable by the last call that could tell.
  bool down() const { return state_.load() == kDown; }
  // Outages seen so far (an unreachable dependency at start counts as one).
  double outages() const { return outages_.Value(); }

 private:
  enum State { kUnknown, kUp, kDown };
  void Change(State to, const Status& s, const char* what);

  const char* name_;  // for logs: "redis", "database"
  prometheus::Counter& outages_;
  prometheus::Gauge* up_gauge_;
  std::atomic<int> state_{kUnknown};
  std::mutex mu_;  // serializes state changes, so each is logged and counted exactly once
};

}  // namespace streamfleet
