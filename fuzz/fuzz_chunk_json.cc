// POST .../chunks with Content-Type application/json: one chunk object, ParseChunkJson; and its fast path
// (ParseCommonChunkJson) reads what it accepts exactly as the general parser does.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "streamfleet/chunks/common_chunk_json.h"
#include "streamfleet/chunks/request_parsing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto fast = streamfleet::ParseCommonChunkJson(text)) {
    auto general = streamfleet::ParseChunkJsonGeneral(text);
    FUZZ_CHECK(general.ok() && general->data == fast->data && general->seq == fast->seq &&
               general->final == fast->final && general->total_chunks == fast->total_chunks);
  }
  auto c = streamfleet::ParseChunkJson(text);
  if (c.ok()) {
    FUZZ_CHECK(!c->seq || *c->seq >= 0);
    FUZZ_CHECK(c->total_chunks >= 0);
    FUZZ_CHECK(c->data.size() <= size);  // the text is decoded from the body, never larger
  } else {
    FUZZ_CHECK(c.status().code() == streamfleet::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!c.status().message().empty());
  }
  return 0;
}
