#include "compactor/metrics.h"

namespace streamfleet::compactor {

namespace {
prometheus::Counter& C(prometheus::Registry& r, const char* name, const char* help,
                       const prometheus::Labels& labels = {}) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(labels);
}
prometheus::Gauge& G(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}
prometheus::Counter& Finalized(prometheus::Registry& r, const char* trigger) {
  // Registry merges families with the same name, so each trigger is one label set of one family.
  return prometheus::BuildCounter()
      .Name("streamfleet_compactor_generations_finalized_total")
      .Help("Generations finalized, by trigger")
      .Register(r)
      .Add({{"trigger", trigger}});
}
prometheus::Counter& ChunkBytes(prometheus::Registry& r, const char* form) {
  return C(r, "streamfleet_compactor_chunk_bytes_total",
           "Bytes of chunk data appended to buffers, as text and as stored (zstd-compressed where CHUNK_COMPRESSION "
           "paid)",
           {{"form", form}});
}
const prometheus::Histogram::BucketBoundaries kLatency = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                          0.1,   0.25,   0.5,   1,    2.5,   5, 10, 30, 60};
}  // namespace

CompactorMetrics::CompactorMetrics(prometheus::Registry& r)
    : chunks_applied(C(r, "streamfleet_compactor_chunks_applied_total", "Chunks appended to a buffer")),
      chunks_duplicate(C(r, "streamfleet_compactor_chunks_duplicate_total",
                         "Chunks already applied (redelivery or duplicate), changed nothing")),
      chunks_malformed(C(r, "streamfleet_compactor_chunks_malformed_total",
                         "Buffered chunks left out of a generation's text at finalize because they did not decode "
                         "(corrupt compressed data)")),
      chunks_superseded(C(r, "streamfleet_compactor_chunks_superseded_total",
                          "Chunks of an attempt the producer has started over from since (a redelivery after a "
                          "reset), not applied")),
      chunk_text_bytes(ChunkBytes(r, "text")),
      chunk_stored_bytes(ChunkBytes(r, "stored")),
      finalized_complete(Finalized(r, "complete")),
      finalized_idle(Finalized(r, "idle_timeout")),
      finalized_manual(Finalized(r, "manual")),
      finalize_replays(C(r, "streamfleet_compactor_finalize_replays_total",
                         "Finalizations already committed (redelivered), changed nothing")),
      finalize_kept_rows(C(r, "streamfleet_compactor_finalize_kept_rows_total",
                           "Finalizations whose text the stored row outdid (it holds chunks this one lacks, or a "
                           "later attempt), changed nothing")),
      finalize_superseded(C(r, "streamfleet_compactor_finalize_superseded_total",
                            "Finalizations queued before their generation was started over (ChunkWriter::Reset), "
                            "changed nothing: the next attempt's finalization writes the row")),
      json_fallbacks(C(r, "streamfleet_compactor_json_fallbacks_total",
                       "Finalizations whose text was not valid JSON (stored with a recorded fallback)")),
      dead_lettered(C(r, "streamfleet_compactor_dead_lettered_total", "Entries sent to the dead-letter stream")),
      claimed(C(r, "streamfleet_compactor_claimed_total", "Entries taken over from dead consumers")),
      db_errors(C(r, "streamfleet_compactor_db_errors_total", "Database write failures (retried)")),
      finalize_rejected(C(r, "streamfleet_compactor_finalizations_rejected_total",
                          "Finalizations that failed permanently (e.g. the database refused the row): left pending, "
                          "retried after VISIBILITY_TIMEOUT, dead-lettered after MAX_DELIVERIES")),
      owner_conflicts(C(r, "streamfleet_compactor_owner_conflicts_total",
                        "Finalizations refused because the generation id belongs to another organization "
                        "(dead-lettered, no row written)")),
      redis_errors(C(r, "streamfleet_compactor_redis_errors_total", "Redis failures (retried)")),
      trimmed(C(r, "streamfleet_compactor_stream_trimmed_total", "Acknowledged stream entries trimmed")),
      finalize_latency(prometheus::BuildHistogram()
                           .Name("streamfleet_compactor_finalize_latency_seconds")
                           .Help("Last chunk applied (or finalize queued) to row committed, excluding the idle wait")
                           .Register(r)
                           .Add({}, kLatency)),
      apply_batch_latency(prometheus::BuildHistogram()
                              .Name("streamfleet_compactor_apply_batch_seconds")
                              .Help("Time to apply and acknowledge one batch of chunk entries")
                              .Register(r)
                              .Add({}, kLatency)),
      finalize_batch_latency(prometheus::BuildHistogram()
                                 .Name("streamfleet_compactor_finalize_batch_seconds")
                                 .Help("Time to finalize one batch of finalize entries (snapshot, one DB "
                                       "transaction, mark compacted)")
                                 .Register(r)
                                 .Add({}, kLatency)),
      buffers_live(G(r, "streamfleet_buffers_live", "Generation buffers still receiving (not yet queued for finalization)")),
      buffer_chunks(G(r, "streamfleet_buffer_chunks", "Sum of LLEN over live generation buffers")),
      buffer_llen_max(G(r, "streamfleet_buffer_llen_max", "Largest LLEN of a live generation buffer")),
      buffers_over_threshold(G(r, "streamfleet_buffers_over_threshold",
                               "Buffers longer than GENERATION_LLEN_ALERT_THRESHOLD")),
      deadlines_pending(G(r, "streamfleet_compactor_deadlines", "Idle-timeout deadlines waiting in Redis")),
      db_up(G(r, "streamfleet_compactor_db_up", "1 when the last database operation succeeded")) {}

}  // namespace streamfleet::compactor
