#pragma once
// Every metric ingest exports, declared in one place.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace streamfleet::ingest {

struct IngestMetrics {
  explicit IngestMetrics(prometheus::Registry& r);

  prometheus::Family<prometheus::Counter>& requests;       // {route, status}
  prometheus::Family<prometheus::Histogram>& request_seconds;  // {route}
  prometheus::Family<prometheus::Counter>& rejections;     // {reason}
  prometheus::Counter& chunks;
  prometheus::Counter& bytes;
  prometheus::Counter& idempotent_replays;
  prometheus::Histogram& redis_write_seconds;
  prometheus::Gauge& backlog;
  prometheus::Gauge& redis_up;
  prometheus::Counter& tasks_enqueued;  // through the task API (task_api.h)
};

}  // namespace streamfleet::ingest
