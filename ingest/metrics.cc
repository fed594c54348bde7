#include "ingest/metrics.h"

#include <string>

#include "streamfleet/observability/dependency_health.h"

namespace streamfleet::ingest {

void RequestMetrics::Record(const char* route, int status, double seconds) {
  Series series;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, added] = series_.try_emplace({route, status}, Series{nullptr, nullptr});
    if (added) {
      it->second.requests = &requests_.Add({{"route", route}, {"status", std::to_string(status)}});
      it->second.seconds = &seconds_.Add({{"route", route}}, prometheus::Histogram::BucketBoundaries{
                                                                 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                 0.1, 0.25, 0.5, 1, 5});
    }
    series = it->second;
  }
  series.requests->Increment();
  series.seconds->Observe(seconds);
}

IngestMetrics::IngestMetrics(prometheus::Registry& r)
    : requests(prometheus::BuildCounter()
                   .Name("streamfleet_ingest_requests_total")
                   .Help("HTTP requests by route and status code")
                   .Register(r)),
      request_seconds(prometheus::BuildHistogram()
                          .Name("streamfleet_ingest_request_duration_seconds")
                          .Help("HTTP request duration by route")
                          .Register(r)),
      rejections(prometheus::BuildCounter()
                     .Name("streamfleet_ingest_rejections_total")
                     .Help("Requests or lines rejected, by reason")
                     .Register(r)),
      chunks(prometheus::BuildCounter()
                 .Name("streamfleet_ingest_chunks_total")
                 .Help("Chunks appended to the chunk streams")
                 .Register(r)
                 .Add({})),
      bytes(prometheus::BuildCounter()
                .Name("streamfleet_ingest_bytes_total")
                .Help("Chunk payload bytes appended to the chunk streams")
                .Register(r)
                .Add({})),
      idempotent_replays(prometheus::BuildCounter()
                             .Name("streamfleet_ingest_idempotent_replays_total")
                             .Help("Chunks answered from an earlier append under the same Idempotency-Key (not appended again)")
                             .Register(r)
                             .Add({})),
      redis_write_seconds(prometheus::BuildHistogram()
                              .Name("streamfleet_ingest_redis_write_seconds")
                              .Help("Latency of one append to Redis (one script call)")
                              .Register(r)
                              .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001,
                                                                               0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                               0.1, 0.25, 1})),
      backlog(prometheus::BuildGauge()
                  .Name("streamfleet_ingest_backlog")
                  .Help("Chunk-stream entries not yet delivered to the compactors, as last seen")
                  .Register(r)
                  .Add({})),
      open_connections(prometheus::BuildGauge()
                           .Name("streamfleet_ingest_open_connections")
                           .Help("HTTP connections open, live streams included (capped by INGEST_MAX_CONNECTIONS)")
                           .Register(r)
                           .Add({})),
      queued_answer_bytes(prometheus::BuildGauge()
                              .Name("streamfleet_ingest_queued_answer_bytes")
                              .Help("Bytes of generation rows answered and not yet taken by their clients' sockets "
                                    "(capped by INGEST_MAX_QUEUED_ANSWER_BYTES)")
                              .Register(r)
                              .Add({})),
      redis_up(DependencyHealth::RedisUpGauge(r)),
      tasks_enqueued(prometheus::BuildCounter()
                         .Name("streamfleet_ingest_tasks_enqueued_total")
                         .Help("Tasks enqueued through the task API (POST /v1/tasks, /v1/tasks:batch)")
                         .Register(r)
                         .Add({})) {}

}  // namespace streamfleet::ingest
