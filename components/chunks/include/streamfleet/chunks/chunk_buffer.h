#pragma once
// Redis side of the compactor: applying chunks to generation buffers, snapshots for finalization, and
// the deadline / finalize-queue transitions. Every write goes through a script in chunk_scripts.h, so
// each is atomic and idempotent. Stateless apart from configuration; share one per process.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "streamfleet/base/clock.h"
#include "streamfleet/base/config.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

struct ChunkItem {
  GenerationId gen;
  bool finish = false;    // a FINISH envelope (no data)
  int64_t seq = 0;
  std::string data;       // as stored in the envelope: the text, or its zstd frame when compressed
  bool final = false;
  int64_t total = 0;      // 0 = unknown
  int64_t ingested_ms = 0;  // ms of its chunk-stream entry id: when ingest queued it (0 = unknown: now)
  bool compressed = false;  // data is a zstd frame of plain_bytes bytes of text
  int64_t plain_bytes = 0;  // the text's size when compressed
};

// A chunk-stream entry's envelopes (each field "e": a streamfleet.v1.ChunkEnvelope; ingest writes one entry per
// request, so an entry may hold several, in order) appended to *items; false with *why, and *items as it was,
// when one of them is not an envelope or is of a version this code does not know (the compactor dead-letters
// the entry; the live tail skips it). The compactor's and the live tail's one reading of the envelope.
// A compressed envelope's frame is checked (one frame, its recorded size equal to data_size and within
// max_plain_bytes) but not decompressed: the compactor keeps it compressed in the buffer list.
bool DecodeChunkEntry(const StreamEntry& e, std::vector<ChunkItem>* items, std::string* why,
                      size_t max_plain_bytes = size_t{64} << 20);

// How many envelopes (fields "e") a chunk-stream entry holds, without decoding them.
size_t ChunkEnvelopeCount(const StreamEntry& e);

// The item's text (decompressed when needed): the live tail, and chunk rows (GENERATION_CHUNK_STORAGE).
StatusOr<std::string> ChunkItemText(const ChunkItem& item);

struct ApplyResult {
  std::vector<bool> applied;   // per input item: changed the buffer (false = duplicate)
  int64_t finalize_queued = 0; // generations whose last missing chunk arrived in this batch
  int64_t max_llen = 0;
  std::vector<std::pair<GenerationId, int64_t>> llens;  // per generation touched
};

struct BufferSnapshot {
  bool exists = false;
  std::vector<std::string> elements;            // "seq:data"
  std::map<std::string, std::string> meta;      // the :meta hash
  std::map<std::string, std::string> control;   // the :ctl hash
  int64_t MetaInt(const std::string& k) const;
};

class ChunkBuffer {
 public:
  ChunkBuffer(const Config& config, Clock& clock)
      : keys_(KeySchema::FromConfig(config)), config_(config), clock_(clock) {}

  const KeySchema& keys() const { return keys_; }

  // Checks an item against the limits before it reaches Redis. kInvalidArgument = dead-letter it.
  Status Validate(const ChunkItem& item) const;

  // Applies validated items in one round trip (one script call per generation, in arrival order).
  StatusOr<ApplyResult> Apply(RedisCommands& redis, const std::vector<ChunkItem>& items);

  StatusOr<BufferSnapshot> Snapshot(RedisCommands& redis, const GenerationId& gen);
  // Many generations' snapshots in one round trip, in input order.
  StatusOr<std::vector<BufferSnapshot>> Snapshots(RedisCommands& redis, const std::vector<GenerationId>& gens);

  // After the row committed. Returns true when marked compacted, false when more chunks arrived.
  StatusOr<bool> MarkCompacted(RedisCommands& redis, const GenerationId& gen, int64_t received_chunks,
                               const std::string& finalize_id);
  // The MarkCompacted script call as a command, for pipelines (registers the script on `redis` for
  // NOSCRIPT repair). Its reply is integer 1 when marked.
  std::vector<std::string> MarkCompactedCommand(RedisCommands& redis, const GenerationId& gen, int64_t received_chunks,
                                                const std::string& finalize_id);

  // Moves due idle deadlines to the finalize stream: those past both now and the compactor group's
  // consumed watermark (components/chunks/include/streamfleet/chunks/consumed_watermark.h). Returns how many.
  StatusOr<int64_t> SweepDeadlines(RedisCommands& redis, int limit);

  // Queues a finalization now (operators, the generation.compact task).
  Status QueueFinalize(RedisCommands& redis, const GenerationId& gen, const std::string& reason);

 private:
  KeySchema keys_;
  const Config& config_;
  Clock& clock_;
};

}  // namespace streamfleet
