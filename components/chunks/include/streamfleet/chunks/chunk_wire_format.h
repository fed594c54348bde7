#pragma once
// The protobuf wire format of chunk-stream entries, read without parsing (chunk_entry.h has the entry format
// itself): ChunkBatch records as views, an envelope's generation, envelope counts. No protobuf library and no
// Redis here, so the fuzz build checks these readers against protobuf's own parser (fuzz/fuzz_chunk_batch.cc).
// ScanChunkBatch accepts only bytes protobuf accepts; PeekEnvelopeGeneration may accept an envelope the parser
// refuses (a string field that is not UTF-8: it looks only at the wire format), never one it reads otherwise.
// None reads past its input.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace streamfleet {

// Whether a field of a chunk-stream entry holds envelopes ("e" or "b"; a task entry's envelope is "e" too): what
// a dead-letter replay copies back and what the operator JSON leaves out.
inline bool IsChunkEnvelopeField(std::string_view field) { return field == "e" || field == "b"; }

// The envelopes of a ChunkBatch as views into `raw`, its first_seq and (when asked) its attempt; false when
// the bytes do not scan.
bool ScanChunkBatch(std::string_view raw, std::vector<std::string_view>* envelopes, int64_t* first_seq,
                    uint32_t* attempt = nullptr);

// organization_id and generation_id of a serialized ChunkEnvelope, read off the wire format without parsing
// the rest (the data above all); false when the bytes do not scan.
bool PeekEnvelopeGeneration(std::string_view raw, int64_t* org, int64_t* gen);

// How many envelopes an entry field holds without decoding them: 1 for "e", a batch's count for "b" (its
// records are counted, not parsed), 0 for other fields.
size_t ChunkEnvelopeCount(std::string_view field, std::string_view value);

}  // namespace streamfleet
