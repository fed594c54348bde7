#include "streamfleet/chunks/buffer_element.h"

#include <charconv>

#include "streamfleet/base/compression.h"

namespace streamfleet {

std::string BufferElement(int64_t seq, std::string_view stored, bool compressed) {
  std::string s = std::to_string(seq);
  std::string e;
  e.reserve(s.size() + 2 + stored.size());
  e.append(s);
  if (compressed) e.push_back('z');
  e.push_back(':');
  e.append(stored);
  return e;
}

bool ParseBufferElement(std::string_view e, BufferElementView* out) {
  auto colon = e.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  size_t digits = colon;
  bool compressed = e[colon - 1] == 'z';
  if (compressed) --digits;
  int64_t seq = -1;
  auto [p, ec] = std::from_chars(e.data(), e.data() + digits, seq);
  if (digits == 0 || ec != std::errc() || p != e.data() + digits || seq < 0) return false;
  out->seq = seq;
  out->stored = e.substr(colon + 1);
  out->compressed = compressed;
  return true;
}

StatusOr<std::string> BufferElementText(const BufferElementView& v, size_t max_bytes) {
  if (!v.compressed) return std::string(v.stored);
  return ZstdDecompress(v.stored, max_bytes);
}

}  // namespace streamfleet
