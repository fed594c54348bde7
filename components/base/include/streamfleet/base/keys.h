#pragma once
// The key schema, in one place. Standard mode keeps the seed key names users already inspect:
//   {key_prefix}:org:{org}[:scenario:{scenario}]:generation:{gen}:chunks       (list)
//   ...:chunks:meta                                                             (hash)
// Cluster mode (Redis Cluster) shards everything a Lua script touches by the generation's chunk-stream
// shard: shard i's chunk stream, deadline set and finalize stream, and the buffer/meta/dedupe/control keys
// of every generation mapped to shard i, share the hash tag {stream_prefix:i}, so every script and every
// multi-key command stays inside one slot while the shards spread over all masters:
//   {key_prefix}:{streamfleet:3}:org:{org}[:scenario:{scenario}]:generation:{gen}:chunks
//   {streamfleet:3}:chunks   {streamfleet:3}:deadlines   {streamfleet:3}:finalize
// In standard mode there is one deadline set and one finalize stream (the names of the first sessions);
// the shard arguments below are then ignored. Fleet-internal keys live under stream_prefix.
#include <cstdint>
#include <string>

#include "streamfleet/base/config.h"

namespace streamfleet {

struct GenerationId {
  int64_t org = 0;
  int64_t scenario = 0;  // 0 = none
  int64_t gen = 0;
  bool operator==(const GenerationId&) const = default;
};

class KeySchema {
 public:
  KeySchema(std::string key_prefix, std::string stream_prefix, KeySchemaMode mode, int chunk_streams,
            int64_t events_maxlen = 100000)
      : key_prefix_(std::move(key_prefix)),
        stream_prefix_(std::move(stream_prefix)),
        mode_(mode),
        chunk_streams_(chunk_streams),
        events_maxlen_(std::to_string(events_maxlen)) {}
  static KeySchema FromConfig(const Config& c) {
    return KeySchema(c.key_prefix, c.stream_prefix, c.key_schema, c.chunk_streams, c.events_maxlen);
  }

  // Buffer keys of one generation (all in one hash slot in cluster mode).
  std::string BufferKey(const GenerationId& g) const { return Base(g) + ":chunks"; }
  std::string MetaKey(const GenerationId& g) const { return BufferKey(g) + ":meta"; }
  // Bitmap of seqs already applied: the dedupe structure next to the append.
  std::string SeenKey(const GenerationId& g) const { return BufferKey(g) + ":seen"; }
  // Per-generation control hash that does not depend on the scenario (ingest's seq counter, scenario
  // binding, byte count; the compactor's state). Always the scenario-less form so /progress can find it.
  std::string ControlKey(const GenerationId& g) const {
    return Base(GenerationId{g.org, 0, g.gen}) + ":ctl";
  }
  // Ingest's record of a generation's writes: per client-chosen seq a digest of its data ("s<seq>"), per
  // Idempotency-Key the first answer ("k<key>"). Same slot as the control hash.
  std::string IngestKey(const GenerationId& g) const { return ControlKey(g) + ":ingest"; }
  // Which organization a generation id belongs to (its first user). Not per organization, so not in any
  // generation's slot: standalone it is part of ingest's append script, on a cluster a command of its own.
  std::string OwnerKey(int64_t gen) const { return key_prefix_ + ":generation:" + std::to_string(gen) + ":owner"; }
  // SCAN pattern matching both buffer key forms of a generation.
  std::string BufferScanPattern(int64_t org, int64_t gen) const;

  bool cluster() const { return mode_ == KeySchemaMode::kCluster; }
  int chunk_streams() const { return chunk_streams_; }
  std::string ChunkStream(int shard) const;
  // A generation always maps to the same chunk stream.
  int ShardOf(const GenerationId& g) const;
  // Deadline sets / finalize streams: one per chunk stream in cluster mode, one in all in standard mode.
  int control_shards() const { return cluster() ? chunk_streams_ : 1; }
  int ControlShardOf(const GenerationId& g) const { return cluster() ? ShardOf(g) : 0; }
  std::string FinalizeStream(int control_shard) const;
  std::string DeadlinesKey(int control_shard) const;
  std::string FinalizeStreamOf(const GenerationId& g) const { return FinalizeStream(ControlShardOf(g)); }
  std::string DeadlinesKeyOf(const GenerationId& g) const { return DeadlinesKey(ControlShardOf(g)); }
  bool IsFinalizeStream(const std::string& stream) const;
  std::string EventsStream() const { return stream_prefix_ + ":events"; }
  // What every XADD to EventsStream trims it to, about (MAXLEN ~; EVENTS_MAXLEN).
  const std::string& EventsMaxlen() const { return events_maxlen_; }
  std::string ChunkDeadLetterStream() const { return stream_prefix_ + ":dlq:chunks"; }
  std::string CompactorGroup() const { return "compactor"; }
  // The queue-worker's group on EventsStream (it turns generation.compacted events into webhook tasks).
  static std::string EventsGroup() { return "webhooks"; }

  // Deadline member / finalize identity, "org:scenario:gen".
  static std::string Member(const GenerationId& g);
  static bool ParseMember(const std::string& s, GenerationId* out);

  const std::string& key_prefix() const { return key_prefix_; }
  const std::string& stream_prefix() const { return stream_prefix_; }

 private:
  std::string Base(const GenerationId& g) const;
  // "{stream_prefix:shard}": the hash tag of one shard (cluster mode).
  std::string ShardTag(int shard) const { return "{" + stream_prefix_ + ":" + std::to_string(shard) + "}"; }

  std::string key_prefix_;
  std::string stream_prefix_;
  KeySchemaMode mode_;
  int chunk_streams_;
  std::string events_maxlen_;
};

}  // namespace streamfleet
