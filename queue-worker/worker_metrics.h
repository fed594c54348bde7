#pragma once
// The queue-worker's metrics, registered once at start (prometheus-cpp: a family per metric, references held)
// in the order /metrics has always listed them. Names, help texts and labels are what dashboards and alert
// rules query: a change here is a change of the public contract.
//
// Thread-safety: prometheus-cpp families and metrics are thread-safe. Label lookups (Family::Add) take the
// family's lock, so the hot path goes through the children a slot caches (Processed, Wait, Slot::TypeStats),
// each slot's cache used by its own thread only. `stream_gauges` is sampled by GaugeSampler under its lock.
#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "queue-worker/slot.h"
#include "streamfleet/observability/dependency_health.h"
#include "streamfleet/observability/stream_gauges.h"

namespace streamfleet::worker {

struct WorkerMetrics {
  explicit WorkerMetrics(prometheus::Registry& registry);
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  // The slot's cached child of streamfleet_worker_tasks_processed_total{type, outcome}.
  prometheus::Counter& Processed(Slot& slot, const std::string& type, const std::string& outcome);
  // The slot's cached child of streamfleet_worker_task_wait_seconds{queue}.
  prometheus::Histogram& Wait(Slot& slot, const std::string& queue);
  // streamfleet_worker_task_duration_seconds{type}: for a slot's TypeStats, which caches it.
  prometheus::Histogram& Duration(const std::string& type);

  prometheus::Family<prometheus::Counter>& processed;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Histogram>& wait;
  prometheus::Counter& retries;
  prometheus::Counter& dead_lettered;
  prometheus::Counter& claimed;
  prometheus::Gauge& busy;
  prometheus::Gauge& scheduled;
  StreamGauges stream_gauges;
  DependencyHealth redis_health;  // every slot and the housekeeper report to it; readiness reads it
  prometheus::Family<prometheus::Counter>& timeouts;
  prometheus::Counter& lease_extensions;
  prometheus::Gauge& abandoned;
  prometheus::Family<prometheus::Counter>& events_forwarded;
  prometheus::Family<prometheus::Gauge>& oldest_waiting;
  prometheus::Counter& cancelled;
  prometheus::Family<prometheus::Counter>& schedules_fired;  // {schedule}
  prometheus::Family<prometheus::Counter>& limited;          // {type, limit}
  prometheus::Counter& trimmed;
};

}  // namespace streamfleet::worker
