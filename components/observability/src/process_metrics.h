#pragma once
// The standard process_* metrics (what Prometheus client libraries export on Linux; prometheus-cpp 1.0.1
// has none), read from /proc/self on each scrape. Called under the scrape mutex of MetricsServer.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace streamfleet {

class ProcessMetrics {
 public:
  explicit ProcessMetrics(prometheus::Registry& registry);
  // Re-reads /proc/self; a failed read leaves the previous values.
  void Refresh();

 private:
  // A counter (promtool rejects a gauge named *_total): advanced by the growth of the kernel's total.
  prometheus::Counter& cpu_seconds_;
  prometheus::Gauge& resident_bytes_;
  prometheus::Gauge& virtual_bytes_;
  prometheus::Gauge& open_fds_;
  prometheus::Gauge& max_fds_;
};

}  // namespace streamfleet
