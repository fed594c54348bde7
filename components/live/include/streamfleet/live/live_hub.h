#pragma once
// The live streams of one ingest process (docs/live.md): every open GET .../generations/{gen}/stream and
// GET .../events connection, fed from Redis so that it does not matter which replica wrote a chunk.
//
// Where the text comes from: the generation's buffer list (everything the compactor applied: the replay,
// and a re-read every second that fills whatever the tail missed) and the chunk streams themselves, tailed
// with XREAD while anybody watches (what arrives after the replay, without waiting for the compactor). The
// events stream is tailed the same way: compaction ends a generation's streams, and the events route
// serves it filtered per organization. Stream reads rather than Pub/Sub: the chunks are already in Redis,
// durable and in order, a reconnect resumes from a seq or a stream id, nothing is published on the chunk
// path when nobody watches, and on a Redis Cluster each shard's stream is one more key to read.
//
// Threads: the hub's own thread owns all state and writes to the streams; a tail thread does the blocking
// XREADs. Handlers only hand a new stream over (Watch*), never block on the hub.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <prometheus/registry.h>

#include "streamfleet/base/config.h"
#include "streamfleet/base/status.h"
#include "streamfleet/http/http_exchange.h"
#include "streamfleet/live/sse_events.h"

namespace streamfleet::live {

// A compacted generation's row, for a stream asked for after its buffer expired; or the row of a generation
// that failed before its first chunk (generation.run), which will never have a buffer or text.
struct CompactedRow {
  std::string text;  // the assembled text (the row's `compacted`, decoded)
  int64_t chunk_count = 0;
  bool json_valid = false;
  std::string trigger;
  bool failed = false;  // no text: failed before its first chunk (metadata status "failed")
  std::string error;    // why, when failed
};
// nullopt: no row. with_text false: only its facts are wanted (the buffer still holds the text), and `text`
// is left empty. Runs on the hub's thread.
using RowReader = std::function<StatusOr<std::optional<CompactedRow>>(int64_t org, int64_t gen, bool with_text)>;

struct LiveOptions {
  int64_t keepalive_ms = 15000;
  int64_t progress_ms = 1000;
  int64_t max_buffered_bytes = 1 << 20;
  int64_t slow_reader_ms = 10000;
  int64_t start_wait_ms = 30000;
  int64_t restart_wait_ms = 60000;  // besides start_wait_ms, for a started-over generation; from its last reset
  int64_t max_stream_age_ms = 0;  // 0: streams end only with their generation (or the client)
  int64_t resync_ms = 1000;      // buffer re-read of every watched generation
  int64_t tail_block_ms = 100;   // XREAD BLOCK (standalone), or the poll interval on a cluster (/10)
  int64_t max_element_bytes = int64_t{64} << 20;  // most text one compressed buffer element may decompress to
  int64_t org_max_held_bytes = int64_t{128} << 20;  // LIVE_ORG_MAX_HELD_BYTES
  static LiveOptions FromConfig(const Config& c);
};

class LiveHub {
 public:
  LiveHub(const Config& config, LiveOptions options, RowReader rows, prometheus::Registry* registry = nullptr);
  ~LiveHub();  // Stop()
  LiveHub(const LiveHub&) = delete;
  LiveHub& operator=(const LiveHub&) = delete;

  // Serves a generation's stream (its head is sent): chunks after the resume point (after_seq -1: all; of
  // an earlier attempt than the generation's: a reset event, then all), progress, the compacted event, then
  // the end. hold is kept as long as the stream is, and released (destroyed) with it: the caller's accounting
  // of open streams.
  void WatchGeneration(std::shared_ptr<HttpStream> stream, int64_t org, int64_t gen, Resume from,
                       std::shared_ptr<void> hold = nullptr);
  // Serves an organization's lifecycle events after the events-stream id after_id ("": from now on).
  void WatchEvents(std::shared_ptr<HttpStream> stream, int64_t org, std::string after_id,
                   std::shared_ptr<void> hold = nullptr);
  // Ends every stream (their clients reconnect elsewhere) and joins the threads. Idempotent.
  void Stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamfleet::live
