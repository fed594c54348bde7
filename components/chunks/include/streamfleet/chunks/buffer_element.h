#pragma once
// The elements of a generation's buffer list (app:scenario_planning:org:{org}[:scenario:{s}]:gen:{gen}), the
// documented decoding users rely on when they LRANGE a buffer (docs/storage.md):
//   "<seq>:<text>"          the chunk's text as sent
//   "<seq>z:<zstd frame>"   the chunk's text, zstd-compressed (CHUNK_COMPRESSION), one frame with its size
// A reader of the plain form only ("<seq>:" then the text) sees "<seq>z" as a malformed seq, never as text.
#include <cstdint>
#include <string>
#include <string_view>

#include "streamfleet/base/status.h"

namespace streamfleet {

std::string BufferElement(int64_t seq, std::string_view stored, bool compressed);

struct BufferElementView {
  int64_t seq = -1;
  std::string_view stored;  // the text, or the zstd frame when compressed
  bool compressed = false;
};

// false when `e` has neither form (no seq, a negative or malformed one).
bool ParseBufferElement(std::string_view e, BufferElementView* out);

// The element's text: `stored` itself, or its decompression (at most max_bytes; kInvalidArgument for a frame
// that is corrupt or larger).
StatusOr<std::string> BufferElementText(const BufferElementView& v, size_t max_bytes);

}  // namespace streamfleet
