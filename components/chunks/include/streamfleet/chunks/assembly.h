#pragma once
// Pure assembly of a generation from its buffer: order by seq, concatenate, find missing seqs, decode JSON.
// No I/O, so every edge case is a unit test.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace streamfleet {

struct Assembled {
  std::string text;                 // chunks concatenated in seq order, byte-exact
  int64_t chunk_count = 0;          // distinct seqs present
  std::vector<int64_t> missing;     // seqs in [0, total) absent (only when total is known)
  // The seqs present as runs of consecutive ones, [first, last] each, in order: what the text is made of,
  // so that a later write can be checked to hold all of it (sql_store.cc, "seq_runs").
  std::vector<std::pair<int64_t, int64_t>> runs;
  int64_t malformed_elements = 0;   // buffer elements of neither form, or compressed and undecodable (skipped, counted)
};

// elements: buffer list elements (buffer_element.h: "<seq>:<text>" or "<seq>z:<zstd frame>"); extra: chunks
// from another store (generation_chunks), merged by seq. total: 0 when unknown. max_bytes bounds what
// decompression may produce in all (the generation byte limit): a frame past it counts as malformed.
Assembled Assemble(const std::vector<std::string>& elements, const std::map<int64_t, std::string>& extra,
                   int64_t total, size_t max_bytes = size_t{64} << 20);

struct JsonDecode {
  bool valid = false;
  // The parsed document re-serialized (valid only). Empty with `as_sent` for a document above
  // kNormalizeMaxBytes: stored as the text itself.
  std::string normalized;
  bool as_sent = false;
  std::string error;       // why decoding failed (invalid only)
};
// Above this, a valid document is checked without being built (CheckJsonInput) and stored as sent: its DOM
// and re-serialization cost several times its size, and a generation may be INGEST_MAX_GENERATION_BYTES.
inline constexpr size_t kNormalizeMaxBytes = size_t{1} << 20;
JsonDecode DecodeJson(const std::string& text);

}  // namespace streamfleet
