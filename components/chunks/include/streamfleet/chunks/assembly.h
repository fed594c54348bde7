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
  int64_t malformed_elements = 0;   // buffer elements without a "seq:" prefix (skipped, counted)
};

// elements: buffer list elements "seq:data"; extra: chunks from another store (generation_chunks), merged
// by seq. total: 0 when unknown.
Assembled Assemble(const std::vector<std::string>& elements, const std::map<int64_t, std::string>& extra,
                   int64_t total);

struct JsonDecode {
  bool valid = false;
  std::string normalized;  // the parsed document re-serialized (valid only)
  std::string error;       // why decoding failed (invalid only)
};
JsonDecode DecodeJson(const std::string& text);

}  // namespace streamfleet
