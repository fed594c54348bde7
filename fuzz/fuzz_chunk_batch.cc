// A chunk-stream entry's field "b" as the compactor, the live tail and the admin API scan it (a ChunkBatch,
// components/chunks/include/streamfleet/chunks/chunk_wire_format.h): whatever sits in Redis, the hand-written
// scanner reads only what protobuf's own parser reads the same way, and never past the bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "fuzz/fuzz_check.h"
#include "streamfleet/chunks/chunk_wire_format.h"
#include "streamfleet/v1/chunk.pb.h"

using namespace streamfleet;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Its own buffer, exactly `size` bytes: a read past the end is AddressSanitizer's to report.
  const std::string raw(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> views;
  int64_t first_seq = -1;
  uint32_t attempt = 0;
  if (ScanChunkBatch(raw, &views, &first_seq, &attempt)) {
    v1::ChunkBatch batch;
    FUZZ_CHECK(batch.ParseFromString(raw));
    FUZZ_CHECK(first_seq == batch.first_seq());
    FUZZ_CHECK(attempt == batch.attempt());
    FUZZ_CHECK(views.size() == static_cast<size_t>(batch.envelopes_size()));
    FUZZ_CHECK(ChunkEnvelopeCount("b", raw) == views.size());
    for (size_t i = 0; i < views.size(); ++i) {
      FUZZ_CHECK(views[i] == batch.envelopes(static_cast<int>(i)));
    }
  }
  // The same bytes as one envelope: the generation the live tail filters on is the parser's. (The peek may
  // accept an envelope the parser refuses, e.g. for a `source` that is not UTF-8: the tail then decodes it in
  // full, which refuses it.)
  int64_t org = 0, gen = 0;
  v1::ChunkEnvelope env;
  if (PeekEnvelopeGeneration(raw, &org, &gen) && env.ParseFromString(raw)) {
    FUZZ_CHECK(org == env.organization_id() && gen == env.generation_id());
  }
  FUZZ_CHECK(ChunkEnvelopeCount("e", raw) == 1 && ChunkEnvelopeCount("x", raw) == 0);
  return 0;
}
