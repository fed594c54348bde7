#pragma once
// The chunk-stream entry format (docs/ARCHITECTURE.md "Chunk entries"), read by the compactor, the live tail
// and the operator tools, written by ChunkWriter. An entry holds either
//   - one or more fields "e", each a streamfleet.v1.ChunkEnvelope, in order (other producers, requests of one
//     chunk, chunks with client seqs or idempotency keys), or
//   - fields "b", each a streamfleet.v1.ChunkBatch: envelopes whose seqs follow the batch's first_seq (ingest's
//     requests of several chunks whose seqs it assigns).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "streamfleet/base/keys.h"
#include "streamfleet/base/status.h"
#include "streamfleet/chunks/chunk_wire_format.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

namespace v1 {
class ChunkEnvelope;
}

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
  uint32_t attempt = 0;     // which start of the generation's text (ChunkEnvelope.attempt)
};

// A chunk-stream entry's envelopes appended to *items, in order; false with *why, and *items as it was, when
// one of them is not an envelope, is of a version this code does not know, or a batch does not scan (the
// compactor dead-letters the entry; the live tail skips it). The compactor's and the live tail's one reading
// of the envelope. A compressed envelope's frame is checked (one frame, its recorded size equal to data_size
// and within max_plain_bytes) but not decompressed: the compactor keeps it compressed in the buffer list.
bool DecodeChunkEntry(const StreamEntry& e, std::vector<ChunkItem>* items, std::string* why,
                      size_t max_plain_bytes = size_t{64} << 20);

// How many envelopes an entry holds (chunk_wire_format.h counts one field's).
size_t ChunkEnvelopeCount(const StreamEntry& e);

// Appends `e` to a ChunkBatch being built (its field 1), serialized in place.
void AppendBatchEnvelope(std::string* batch, const v1::ChunkEnvelope& e);

// The item's text (decompressed when needed): the live tail, and chunk rows (GENERATION_CHUNK_STORAGE).
StatusOr<std::string> ChunkItemText(const ChunkItem& item);

}  // namespace streamfleet
