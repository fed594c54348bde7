#include "queue-worker/worker_metrics.h"

namespace streamfleet::worker {

namespace {

prometheus::Family<prometheus::Counter>& CounterFamily(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
prometheus::Family<prometheus::Histogram>& HistogramFamily(prometheus::Registry& r, const char* name,
                                                           const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

}  // namespace

WorkerMetrics::WorkerMetrics(prometheus::Registry& r)
    : processed(CounterFamily(r, "streamfleet_worker_tasks_processed_total",
                              "Tasks run, by type and outcome (succeeded, retried, dead_lettered)")),
      duration(HistogramFamily(r, "streamfleet_worker_task_duration_seconds", "Task handler run time, by type")),
      wait(HistogramFamily(
          r, "streamfleet_worker_task_wait_seconds",
          "Time from enqueue (or the due time of a delayed task) to the start of its first attempt, by queue")),
      retries(CounterFamily(r, "streamfleet_worker_retries_total", "Task retries scheduled").Add({})),
      dead_lettered(
          CounterFamily(r, "streamfleet_worker_dead_lettered_total", "Tasks sent to the dead-letter stream").Add({})),
      claimed(CounterFamily(r, "streamfleet_worker_claimed_total", "Tasks taken over from dead workers").Add({})),
      busy(GaugeFamily(r, "streamfleet_worker_busy", "Worker slots running a task now").Add({})),
      scheduled(
          GaugeFamily(r, "streamfleet_worker_scheduled_tasks", "Delayed tasks and retries waiting in Redis").Add({})),
      stream_gauges(r),
      redis_health(r, Dependency::kRedis, &DependencyHealth::RedisUpGauge(r)),
      timeouts(CounterFamily(r, "streamfleet_worker_task_timeouts_total",
                             "Task attempts that ran past their timeout (TASK_TIMEOUT, TASK_TIMEOUTS), by type")),
      lease_extensions(CounterFamily(r, "streamfleet_worker_lease_extensions_total",
                                     "Heartbeats that kept a running task from being claimed by another worker")
                           .Add({})),
      abandoned(GaugeFamily(r, "streamfleet_worker_abandoned_handlers",
                            "Handler threads still running after their timeout and grace (they ignored cancellation)")
                    .Add({})),
      events_forwarded(
          CounterFamily(r, "streamfleet_worker_events_forwarded_total",
                        "Fleet events turned into webhook tasks (forwarded), acked without one (skipped), or trimmed from the events stream before they were read (lost)")),
      oldest_waiting(GaugeFamily(r, "streamfleet_worker_oldest_waiting_task_seconds",
                                 "Age of the oldest task of a queue not yet given to a worker (0 when none waits)")),
      cancelled(CounterFamily(r, "streamfleet_worker_tasks_cancelled_total",
                              "Cancelled tasks a worker read and acked without running them")
                    .Add({})),
      schedules_fired(CounterFamily(r, "streamfleet_worker_schedules_fired_total",
                                    "Occurrences of SCHEDULES this process enqueued (one process per occurrence)")),
      limited(CounterFamily(r, "streamfleet_worker_tasks_limited_total",
                            "Tasks held back by a TASK_LIMITS limit (max_running or per_second) and put back in the "
                            "scheduled set, by type and limit")),
      trimmed(CounterFamily(r, "streamfleet_worker_queue_entries_trimmed_total",
                            "Acknowledged task entries removed from the queue streams (XTRIM MINID)")
                  .Add({})) {}

prometheus::Counter& WorkerMetrics::Processed(Slot& slot, const std::string& type, const std::string& outcome) {
  prometheus::Counter*& c = slot.processed[type + '\n' + outcome];
  if (c == nullptr) c = &processed.Add({{"type", type}, {"outcome", outcome}});
  return *c;
}

prometheus::Histogram& WorkerMetrics::Wait(Slot& slot, const std::string& queue) {
  prometheus::Histogram*& h = slot.waits[queue];
  if (h == nullptr) {
    // From a no-op's sub-millisecond wait on an idle fleet to a backlog of minutes.
    h = &wait.Add({{"queue", queue}}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01,
                                                                             0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30,
                                                                             300});
  }
  return *h;
}

prometheus::Histogram& WorkerMetrics::Duration(const std::string& type) {
  return duration.Add({{"type", type}},
                      prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120});
}

}  // namespace streamfleet::worker
