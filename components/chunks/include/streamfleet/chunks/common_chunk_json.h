#pragma once
// The common shape of a chunk object, read without building a JSON document: ParseChunkJson's fast path.
// With the general parser (a DOM of nlohmann::json from SAX events) parsing was about half of ingest's CPU on
// NDJSON bodies (docs/performance.md, "Ingest").
#include <optional>
#include <string_view>

#include "streamfleet/chunks/request_parsing.h"

namespace streamfleet {

// A flat object whose keys are among "data", "seq", "final" and "total_chunks", each at most once, with a
// string "data" (any JSON escapes, valid UTF-8), "seq" a non-negative and "total_chunks" a positive integer of
// at most 18 digits (no sign, fraction or exponent), "final" a boolean, and null for any but "data": read as
// the general parser reads it. Anything else, valid or not, is nullopt and left to the general parser, which
// decides and words the error. fuzz/fuzz_chunk_json.cc checks that the two agree on every input.
std::optional<ChunkInput> ParseCommonChunkJson(std::string_view text);

}  // namespace streamfleet
