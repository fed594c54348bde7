#include "streamfleet/chunks/chunk_scripts.h"

#include "lua_scripts.h"

namespace streamfleet::scripts {

namespace {

// Redis server time in ms, unless the caller passed an override (the clock seam, tests only).
constexpr const char* kNow = R"(
local function now_ms(override)
  local o = tonumber(override)
  if o and o > 0 then return o end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
)";

}  // namespace

// Applies chunks of one or more generations (a read batch's worth) in one call.
// KEYS: per generation g (0-based) 6 keys at 6g+1..6g+6: buffer list, meta hash, seen bitmap, ctl hash,
//       deadlines zset, finalize stream. (Redis Cluster: one generation per call, its keys share a slot.)
// ARGV: 1 now override, 2 idle_ms, 3 ttl_s, 4 max_chunks, 5 G (generations), then per generation:
//       member "org:scenario:gen", nc (chunks), nf (totals), ingest time of its newest item (stream-id ms;
//       "0" = now), the attempt its items carry (ChunkItem::attempt; a group holds one attempt), then nc pairs: seq, list element (buffer_element.h: "<seq>:<text>" or "<seq>z:<frame>";
//       the caller formats it: no string building in Lua), then nf totals (from finish envelopes, and seq + 1 of a final chunk without one).
//       A compressed chunk's seq is "<seq>/<text bytes>" (its element's length is not its text's, and
//       received_bytes counts text); plain ones stay bare, so the common case costs no extra argument.
// Returns per generation {duplicate chunks (1-based positions among its nc), totals that changed the known
// total (1-based positions among its nf), llen, queued_finalize (0/1), superseded (0/1)}. Superseded: the
// items' attempt is older than the control hash's (the producer started over since they were written; they are
// redeliveries of what was applied before the reset): nothing is written and every chunk is a duplicate.
//
// Cost: this script is most of the compactor's Redis time, and its cost is per argument and per call:
// every ARGV string is created in Lua, every redis.call converts its arguments back. So two arguments per
// chunk, duplicates (rare) reported instead of a flag per chunk, one call per read batch with one TIME,
// and per generation a fixed number of calls (6 in the common case) however many chunks it has: one
// BITFIELD does every dedupe bit, one RPUSH every element, one HMGET + one HSET the meta counters
// (read-modify-write is safe: the script is atomic). Within the BITFIELD, one field per run of consecutive
// seqs (up to 52 bits) rather than one per seq: four arguments per run instead of four per chunk.
const LuaScript& ApplyChunks() {
  static const LuaScript s(std::string(kNow) + std::string(lua::kApplyChunks));
  return s;
}

// KEYS: 1 deadlines zset, 2 finalize stream. ARGV: 1 now override, 2 limit, 3 consumed watermark (ms of
// ingest time before which every chunk entry is applied; "0" = all of them, components/chunks/include/streamfleet/chunks/consumed_watermark.h).
// A deadline is due when it has passed and the compactors have read past it: a generation whose later
// chunks still wait in the backlog is not idle.
// Returns the number of deadlines turned into finalize entries. ZREM+XADD in one script: exactly once,
// whichever compactor runs it.
// allow-oom: a full Redis (noeviction) must still queue the idle generations' finalizations, which let their
// buffers go; each is a ZREM and one small XADD.
const LuaScript& SweepDeadlines() {
  static const LuaScript s("#!lua flags=allow-oom\n" + std::string(kNow) + std::string(lua::kSweepDeadlines));
  return s;
}

// KEYS: 1 ctl hash, 2 buffer list, 3 meta hash, 4 seen bitmap.
// ARGV: 1 finalized received_chunks, 2 grace_s (0 = keep the buffer until its TTL; negative: delete it now), 3 finalize id, 4 the
//       attempt the snapshot read (the control hash's, "0" when it has none), 5 the TTL the control hash gets
//       when it has none (CHUNK_TTL: it may have been created here).
// Returns 1 when marked compacted, 0 when chunks arrived after the snapshot (a later finalize follows) or the
// generation was started over since (ChunkWriter::Reset: the keys are the next attempt's).
const LuaScript& MarkCompacted() {
  static const LuaScript s(std::string(lua::kMarkCompacted));
  return s;
}

// KEYS: 1 the events stream. ARGV: 1 its MAXLEN (approximate trim), 2 the event type, 3 the serialized Event.
// Returns the entry id. Flagged allow-oom (the finalizer's event beside MarkCompacted).
const LuaScript& PublishEvent() {
  static const LuaScript s(std::string(lua::kPublishEvent));
  return s;
}

// The producer side of a generation, checked and applied in one atomic call (ingest, the SSE relay, the
// worker's provider stream).
// KEYS: 1 ctl hash, 2 chunk stream, 3 ingest hash (KeySchema::IngestKey), 4 owner key (standalone only: on a
//       cluster the owner lives in another slot and the caller claims it first, generation_owner.h).
// ARGV: 1 scenario id ("0" = none), 2 organization, 3 byte limit, 4 ttl_s, 5 owner ttl_s, 6 n (chunks),
//       7 batch parts (0 = none), then
//       - without a batch, per chunk 5: envelope (protobuf bytes), kind ('a' seq to assign, 'c' client seq,
//         'f' finish), number (the seq for 'c', the total for 'f', the chunk's idempotency key for 'a' or ""),
//         digest of the data ('c', keyed 'a'), data bytes;
//       - a batch (n > 1 chunks, all 'a' without keys): 8 data bytes of all n, then per part its ChunkBatch
//         bytes without first_seq and its envelope count (chunk_entry.h).
//       and last, after either, GENERATION_MAX_CHUNKS.
// Refused with nothing written (SFCONFLICT <reason>: ..., SFLIMIT ...):
//   scenario_conflict           the scenario differs from the one the generation started with;
//   generation_owned_elsewhere  the id's owner record names another organization;
//   seq_conflict                a client seq already received with other data (the same data again is a
//                               retry: accepted, not appended again, not counted toward the byte limit);
//   idempotency_key_reused      a chunk idempotency key already used for other data;
//   total_conflict              a finish whose total is smaller than an earlier finish's (equal: a retry,
//                               skipped; larger: the generation grew, appended), or than the seqs already
//                               handed out (next_seq, with those this request assigns before it);
//   SFLIMIT                     the generation would exceed its byte limit (counting only new data), or the
//                               seqs it assigns would reach GENERATION_MAX_CHUNKS.
// A keyed chunk seen before is not appended again and answers with the seq it got then. The chunks appended go
// into one stream entry, a field "e" each in order, closed at 64 KiB; a batch's parts into one entry each, a
// field "b" with first_seq appended (docs/ARCHITECTURE.md "Chunk entries").
// Returns {last stream id ("" when nothing was appended), the seq of every 'a' chunk in order (empty for a
// batch), replayed count, 1 when this started the generation, and for a batch its first seq}.
const LuaScript& IngestAppend() {
  // Seqs are reserved here, after the checks, so a rejected batch burns none and the request needs one
  // round trip. The seq goes into the envelope by appending field 5 (varint) to its bytes: in protobuf a
  // scalar field that occurs again later in the message wins, so the result is a valid envelope carrying
  // that seq without Lua having to parse or re-encode it.
  static const LuaScript s(std::string(lua::kIngestAppend));
  return s;
}

const LuaScript& ResetGeneration() {
  // KEYS: 1 ctl hash, 2 buffer list, 3 meta hash, 4 seen bitmap, 5 deadlines zset, 6 ingest hash, 7 finalize
  //       stream.
  // ARGV: 1 deadline member, 2 the control hash's TTL (s) until the next attempt's first append.
  // Returns 1 (reset: the control hash's attempt one more, started_after the finalize stream's last entry id)
  // or 0 (chunks of this attempt not yet applied).
  // received_chunks counts distinct seqs applied and the producer wrote seqs 0..next_seq-1, so equality
  // means no chunk of the old attempt is still in a stream (a redelivery of an applied-but-unacked entry
  // after a compactor crash is the remaining, documented, window).
  static const LuaScript s(std::string(lua::kResetGeneration));
  return s;
}

const LuaScript& MarkFailed() {
  // KEYS: 1 ctl hash. ARGV: 1 the control hash's TTL (s).
  // Returns 1 (state "failed", the TTL restarted) or 0 (a producer has appended since the last start: the
  // hash is that attempt's).
  static const LuaScript s(std::string(lua::kMarkFailed));
  return s;
}

}  // namespace streamfleet::scripts
