#include "streamfleet/chunks/assembly.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "streamfleet/base/json_input.h"
#include "streamfleet/base/text.h"

namespace streamfleet {

Assembled Assemble(const std::vector<std::string>& elements, const std::map<int64_t, std::string>& extra,
                   int64_t total) {
  Assembled a;
  std::map<int64_t, std::string_view> by_seq;
  for (const auto& [seq, data] : extra) by_seq.emplace(seq, data);
  for (const auto& e : elements) {
    auto colon = e.find(':');
    int64_t seq = -1;
    if (colon != std::string::npos) {
      auto [p, ec] = std::from_chars(e.data(), e.data() + colon, seq);
      if (ec != std::errc() || p != e.data() + colon) seq = -1;
    }
    if (seq < 0) {
      ++a.malformed_elements;
      continue;
    }
    by_seq.emplace(seq, std::string_view(e).substr(colon + 1));  // first copy of a seq wins; all are equal
  }
  size_t bytes = 0;
  for (const auto& [seq, d] : by_seq) bytes += d.size();
  a.text.reserve(bytes);
  for (const auto& [seq, d] : by_seq) a.text.append(d);
  a.chunk_count = static_cast<int64_t>(by_seq.size());
  if (total > 0) {
    for (int64_t s = 0; s < total; ++s) {
      if (!by_seq.count(s)) a.missing.push_back(s);
    }
  }
  return a;
}

JsonDecode DecodeJson(const std::string& text) {
  JsonDecode d;
  // Bounded depth: an answer nested deeper than kGeneratedJsonLimits is stored as text with the fallback
  // recorded, instead of recursing the compactor's stack away.
  auto j = ParseJsonInput(text, kGeneratedJsonLimits);
  if (j.ok()) {
    d.valid = true;
    d.normalized = j->dump();
  } else {
    d.valid = false;
    // The parser quotes the bytes it stopped at; they may be invalid UTF-8 (a chunk that cut a multi-byte
    // character), and this message goes into the row's metadata JSON.
    d.error = ToValidUtf8(j.status().message());
  }
  return d;
}

}  // namespace streamfleet
