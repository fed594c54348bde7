#pragma once
// Every metric the compactor exports, declared in one place. References stay valid for the registry's life.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>

namespace streamfleet::compactor {

struct CompactorMetrics {
  explicit CompactorMetrics(prometheus::Registry& r);

  prometheus::Counter& chunks_applied;
  prometheus::Counter& chunks_duplicate;
  prometheus::Counter& chunks_malformed;
  prometheus::Counter& chunks_superseded;
  // Chunk data applied, as text and as stored in the buffer lists (CHUNK_COMPRESSION): their ratio is what
  // compression saves in Redis memory.
  prometheus::Counter& chunk_text_bytes;
  prometheus::Counter& chunk_stored_bytes;
  prometheus::Counter& finalized_complete;
  prometheus::Counter& finalized_idle;
  prometheus::Counter& finalized_manual;
  prometheus::Counter& finalize_replays;
  prometheus::Counter& finalize_kept_rows;
  prometheus::Counter& finalize_superseded;
  prometheus::Counter& json_fallbacks;
  prometheus::Counter& dead_lettered;
  prometheus::Counter& claimed;
  prometheus::Counter& db_errors;
  prometheus::Counter& finalize_rejected;
  prometheus::Counter& owner_conflicts;
  prometheus::Counter& redis_errors;
  prometheus::Counter& trimmed;
  prometheus::Histogram& finalize_latency;  // last chunk -> row committed
  prometheus::Histogram& apply_batch_latency;
  prometheus::Histogram& finalize_batch_latency;  // one batch of finalize entries: snapshot, commit, mark
  prometheus::Gauge& buffers_live;
  prometheus::Gauge& buffer_chunks;
  prometheus::Gauge& buffer_llen_max;
  prometheus::Gauge& buffers_over_threshold;
  prometheus::Gauge& deadlines_pending;
  prometheus::Gauge& db_up;
  // Stream gauges: streamfleet::StreamGauges (shared with the queue-worker).
};

}  // namespace streamfleet::compactor
