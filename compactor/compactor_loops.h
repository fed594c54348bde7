#pragma once
// One compactor process runs COMPACTOR_LOOPS consumer loops side by side, each a CompactorService on its
// own thread. A loop spends most of its time waiting (for Redis: read, apply, snapshot, mark; for the
// database: the finalize transaction), so more loops in one process use that wait instead of needing
// more pods. Each loop is a consumer of the group like a loop of another process: its own name
// (CONSUMER_NAME for the first, CONSUMER_NAME-2, -3, ... for the others, stable across restarts so a
// restarted pod takes back each loop's own pending entries), its own Redis connections and its own
// database session. They share the metrics registry (counters and histograms add up over the loops, and
// only the first loop samples the gauges) and the Redis/database health (an outage counts once).
#include <atomic>
#include <memory>
#include <vector>

#include "compactor/compactor_service.h"

namespace streamfleet::compactor {

class CompactorLoops {
 public:
  // Opens one database session per loop (the caller has migrated the schema). `loops` <= 0 means
  // config.compactor_loops.
  static StatusOr<std::unique_ptr<CompactorLoops>> Open(const Config& config, Clock& clock,
                                                        prometheus::Registry& registry, LoopOptions options = {},
                                                        int loops = 0);

  // Runs every loop until stop is set; returns when all of them have stopped (each finishes or hands back
  // what it has in flight, see CompactorService::Run).
  void Run(const std::atomic<bool>& stop);

  // Ready when every loop is (they share Redis and the database, so one failing means all will).
  Status Ready() const;
  void SampleGauges() { loops_.front()->SampleGauges(); }

  int size() const { return static_cast<int>(loops_.size()); }
  CompactorService& loop(int i) { return *loops_[static_cast<size_t>(i)]; }
  // The shared metrics (any loop's CompactorMetrics reads the same counters).
  CompactorMetrics& metrics() { return loops_.front()->metrics(); }

 private:
  CompactorLoops() = default;

  // One pair for the process: an outage seen by every loop is logged and counted once.
  std::unique_ptr<DependencyHealth> redis_health_, db_health_;
  std::vector<std::unique_ptr<Config>> configs_;  // per loop: the consumer name differs
  std::vector<std::unique_ptr<SqlStore>> stores_;
  std::vector<std::unique_ptr<CompactorService>> loops_;
};

}  // namespace streamfleet::compactor
