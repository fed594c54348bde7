#pragma once
// Every metric ingest exports, declared in one place.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

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
  prometheus::Gauge& open_connections;  // the HTTP server's, requests' and live streams' (INGEST_MAX_CONNECTIONS)
  prometheus::Gauge& queued_answer_bytes;  // AnswerBudget's total (INGEST_MAX_QUEUED_ANSWER_BYTES)
  prometheus::Gauge& redis_up;
  prometheus::Counter& tasks_enqueued;  // through the task API (task_api.h)
};

// streamfleet_ingest_requests_total and _request_duration_seconds for one request. Each (route, status) pair's
// series is looked up in its family once and kept: Family::Add builds a label map (and, for the histogram, a
// bucket vector) and takes the family's lock on every call, which was a visible share of a one-chunk POST.
// Thread-safe. `route` must be a string with static storage (the route names are literals): it is keyed by
// its address.
class RequestMetrics {
 public:
  RequestMetrics(prometheus::Family<prometheus::Counter>& requests,
                 prometheus::Family<prometheus::Histogram>& seconds)
      : requests_(requests), seconds_(seconds) {}
  void Record(const char* route, int status, double seconds);

 private:
  struct Series {
    prometheus::Counter* requests;
    prometheus::Histogram* seconds;
  };
  struct KeyHash {
    size_t operator()(const std::pair<const char*, int>& k) const {
      return std::hash<const void*>()(k.first) * 31 + static_cast<size_t>(k.second);
    }
  };
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  std::mutex mu_;
  std::unordered_map<std::pair<const char*, int>, Series, KeyHash> series_;
};

}  // namespace streamfleet::ingest
