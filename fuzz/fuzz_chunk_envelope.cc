// A chunk stream entry's "e" field as the compactor reads it: a streamfleet.v1.ChunkEnvelope from any
// producer (or garbage XADDed by hand), the "seq:data" buffer element the apply script stores for it, and
// the assembly and JSON decoding of the generation at finalization (components/chunks/include/streamfleet/chunks/assembly.h).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "streamfleet/chunks/assembly.h"
#include "fuzz/fuzz_check.h"
#include "streamfleet/v1/chunk.pb.h"

using streamfleet::Assemble;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in a string field is logged on every such input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  streamfleet::v1::ChunkEnvelope env;
  if (!env.ParseFromArray(data, static_cast<int>(size))) return 0;
  std::string wire = env.SerializeAsString();
  streamfleet::v1::ChunkEnvelope again;
  FUZZ_CHECK(again.ParseFromString(wire) && again.SerializeAsString() == wire);

  // total_chunks is bounded by GENERATION_MAX_CHUNKS before a chunk is applied (ChunkBuffer::Validate).
  int64_t total = std::clamp<int64_t>(env.total_chunks(), 0, 4096);
  std::string element = std::to_string(env.seq()) + ":" + env.data();
  auto a = Assemble({element}, {}, total);
  if (env.seq() >= 0) {
    FUZZ_CHECK(a.chunk_count == 1 && a.malformed_elements == 0 && a.text == env.data());
    bool inside = env.seq() < total;
    FUZZ_CHECK(static_cast<int64_t>(a.missing.size()) == total - (inside ? 1 : 0));
  } else {
    FUZZ_CHECK(a.chunk_count == 0 && a.malformed_elements == 1 && a.text.empty());
  }
  // The data itself as a buffer element (a chunk written by hand without "seq:") and as the document.
  auto raw = Assemble({env.data()}, {{0, "x"}}, 1);
  FUZZ_CHECK(raw.chunk_count + raw.malformed_elements >= 1 && raw.missing.empty());
  auto json = streamfleet::DecodeJson(a.text);
  FUZZ_CHECK(json.valid ? (json.as_sent || !json.normalized.empty()) && json.error.empty() : !json.error.empty());
  return 0;
}
