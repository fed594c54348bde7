// POST .../chunks with Content-Type application/json: one chunk object, ParseChunkJson.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "streamfleet/chunks/request_parsing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto c = streamfleet::ParseChunkJson(std::string_view(reinterpret_cast<const char*>(data), size));
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
