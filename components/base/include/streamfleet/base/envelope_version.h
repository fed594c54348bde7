#pragma once
// The envelope format versions this build understands (field `version` of ChunkEnvelope and TaskEnvelope in
// proto/streamfleet/v1; 0 = unset = 1). An entry written by a newer producer is dead-lettered with the reason
// from UnknownVersionReason, never read with the old meaning of its fields.
#include <cstdint>
#include <string>

namespace streamfleet {

// 2: `data` may be zstd-compressed (ChunkEnvelope.data_encoding). Producers write 2 only on compressed
// entries (plain ones leave the version unset), so plain entries stay readable by builds that know only 1.
inline constexpr uint32_t kChunkEnvelopeCompressed = 2;
// 3: the envelope may share its chunk-stream entry with others (one field "e" each, in order: ingest writes a
// request's chunks as one entry). A build that knows only 2 reads just an entry's first "e"; version 3 makes
// it dead-letter such an entry whole instead of dropping the rest. Written only on envelopes of requests
// with more than one chunk, so one-chunk requests stay readable by older builds.
inline constexpr uint32_t kChunkEnvelopeShared = 3;
// 4: the envelope is one of a ChunkBatch (entry field "b", chunk_entry.h): its seq is the batch's first_seq
// plus its position. Only inside a batch, which builds that know only 3 do not read (no field "e": they
// dead-letter the entry with that reason, replayable once upgraded).
inline constexpr uint32_t kChunkEnvelopeBatched = 4;
// The highest version this build reads.
inline constexpr uint32_t kChunkEnvelopeVersion = kChunkEnvelopeBatched;
inline constexpr uint32_t kTaskEnvelopeVersion = 1;

// "" when `version` is understood, else the dead-letter reason.
inline std::string UnknownVersionReason(const char* envelope, uint32_t version, uint32_t known) {
  if (version <= known) return "";
  return std::string(envelope) + " version " + std::to_string(version) + " is newer than this build understands (" +
         std::to_string(known) + "); upgrade the consumers, then replay the dead letter";
}

}  // namespace streamfleet
