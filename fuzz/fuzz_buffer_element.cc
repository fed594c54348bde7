// A generation buffer's list element as the finalizer, the live hub and inspect-generation read it
// ("<seq>:<text>" or "<seq>z:<zstd frame>", components/chunks/include/streamfleet/chunks/buffer_element.h), and
// any bytes as a zstd frame: whatever sits in Redis (written by hand, corrupt, crafted to expand) is parsed and
// decompressed within the limit or refused, never more.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "streamfleet/base/compression.h"
#include "streamfleet/chunks/assembly.h"
#include "streamfleet/chunks/buffer_element.h"

using namespace streamfleet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  constexpr size_t kLimit = 1 << 16;

  BufferElementView v;
  if (ParseBufferElement(s, &v)) {
    FUZZ_CHECK(v.seq >= 0);
    BufferElementView again;
    const std::string encoded = BufferElement(v.seq, v.stored, v.compressed);  // `again` views into it
    FUZZ_CHECK(ParseBufferElement(encoded, &again));
    FUZZ_CHECK(again.seq == v.seq && again.stored == v.stored && again.compressed == v.compressed);
    auto text = BufferElementText(v, kLimit);
    if (text.ok()) FUZZ_CHECK(v.compressed ? text->size() <= kLimit : *text == v.stored);
  }

  auto plain = ZstdDecompress(s, kLimit);
  if (plain.ok()) {
    FUZZ_CHECK(plain->size() <= kLimit);
    auto back = ZstdDecompress(ZstdCompress(*plain), plain->size());
    FUZZ_CHECK(back.ok() && *back == *plain);
  }

  // The input as a chunk's text, compressed as ingest would store it: assembly gives it back exactly.
  auto only = Assemble({BufferElement(0, ZstdCompress(s), true)}, {}, 1, s.size());
  FUZZ_CHECK(only.chunk_count == 1 && only.text == s && only.missing.empty());
  return 0;
}
