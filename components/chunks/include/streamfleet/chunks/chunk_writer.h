#pragma once
// The producer side of the chunk path, shared by ingest and the queue-worker's generation.run: assign seqs,
// build envelopes, append them to the generation's chunk stream in one atomic script call (scenario binding
// and per-generation byte limit checked in the same call), read progress, and measure the backlog for
// backpressure. Thread-safe (stateless): Append and Progress take any RedisCommands (ingest passes its
// shared AsyncRedis, a worker slot its own RedisClient).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "streamfleet/base/config.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {
namespace v1 {
class ChunkEnvelope;
}

struct PendingChunk {
  std::optional<int64_t> seq;  // absent: assigned from the generation's counter
  std::string data;
  bool final = false;
  int64_t total_chunks = 0;
  bool finish = false;         // a FINISH marker (total_chunks required), no data
  // Chunks without a seq only: a key under which the append is remembered (the request's Idempotency-Key,
  // "#<line>" added for streamed bodies). The same key again is answered with the seq it got and not
  // appended twice; with other data it is a conflict. "" = none.
  std::string idempotency_key;
};

struct AppendResult {
  int64_t accepted = 0;
  int64_t last_seq = -1;
  std::string last_id;
  int64_t replayed = 0;  // keyed chunks seen before: answered with their earlier seq, not appended again
  bool started = false;  // the first append of the generation (a new control hash): a generation.started event
};

// The reason token of a refused append ("scenario_conflict", "generation_owned_elsewhere", "seq_conflict",
// "idempotency_key_reused", "total_conflict"), for kFailedPrecondition errors of Append; "" for others.
std::string AppendConflictReason(const Status& s);

class ChunkWriter {
 public:
  explicit ChunkWriter(const Config& config) : config_(config), keys_(KeySchema::FromConfig(config)) {}
  // It keeps a reference to the config: a temporary would dangle (a test of this very change did).
  explicit ChunkWriter(const Config&& config) = delete;

  // All or nothing per call. Errors: kFailedPrecondition with an AppendConflictReason (scenario, owner,
  // seq, key or total conflict: chunk_scripts.cc IngestAppend), kResourceExhausted (generation byte limit),
  // kUnavailable (Redis down or slow: the call may still land, which is what client seqs and
  // PendingChunk::idempotency_key are for: a repeated chunk is answered, not appended twice).
  StatusOr<AppendResult> Append(RedisCommands& redis, const GenerationId& gen, std::vector<PendingChunk>& chunks,
                                const std::string& source);

  // Append in two halves, for a caller that sends the script itself without blocking (ingest's loop-thread
  // path, AsyncRedis::SendEval): the script's keys and args, then the reply turned into the result (seqs
  // assigned by the script are written back into chunks).
  struct AppendCall {
    std::vector<std::string> keys;
    std::vector<std::string> args;
  };
  // Standalone Redis only (a cluster needs Append's owner claim first).
  AppendCall PrepareAppend(const GenerationId& gen, const std::vector<PendingChunk>& chunks,
                           const std::string& source) const;
  static StatusOr<AppendResult> ParseAppendReply(const StatusOr<RedisValue>& reply, std::vector<PendingChunk>& chunks);

  // Progress JSON from Redis; kNotFound when nothing is known about the generation.
  StatusOr<std::string> Progress(RedisCommands& redis, int64_t org, int64_t gen, std::optional<int64_t> scenario);

  // Discards what an earlier attempt of a producer wrote (buffer, meta, seen bitmap, control hash, idle
  // deadline) so a fresh attempt starts at seq 0 without mixing with old chunks. Atomic, and only once the
  // compactor has applied every seq the control hash handed out: otherwise an old chunk still in the stream
  // would land in the fresh buffer. kUnavailable "not yet applied" then (retry later). Not for generations
  // whose FINISH marker was written (those are finalized, not restarted). The control hash keeps the
  // generation's attempt, one more than before when anything was appended since the last start: the next
  // attempt's envelopes carry it (ChunkEnvelope.attempt), and live streams tell their viewers to drop the
  // earlier attempt's text.
  Status Reset(RedisCommands& redis, const GenerationId& gen);
  // The producer gave up before writing a chunk of its current attempt (generation.run's last attempt
  // failed): the control hash says state "failed", so /progress does not report "receiving" until the hash
  // expires. It lives chunk_ttl_s from now; a later first append starts the generation again as usual. Not
  // when a producer has appended since the last start (the hash is that attempt's): then nothing changes.
  Status MarkFailed(RedisCommands& redis, const GenerationId& gen);

  // Entries in the chunk streams not yet delivered to the compactor group (XLEN where no group exists).
  StatusOr<int64_t> Backlog(RedisClient& redis);

  const KeySchema& keys() const { return keys_; }

 private:
  // The chunk's envelope, without the seq the script assigns.
  v1::ChunkEnvelope Envelope(const GenerationId& gen, const PendingChunk& c, int64_t now,
                             const std::string& source) const;
  // The chunk text into the envelope: zstd-compressed (CHUNK_COMPRESSION) when it is large enough and that pays.
  void SetEnvelopeData(v1::ChunkEnvelope& e, const std::string& data) const;

  const Config& config_;
  KeySchema keys_;
};

}  // namespace streamfleet
