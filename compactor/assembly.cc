#include "compactor/assembly.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace streamfleet::compactor {

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
  try {
    auto j = nlohmann::json::parse(text);
    d.valid = true;
    d.normalized = j.dump();
  } catch (const nlohmann::json::exception& e) {
    d.valid = false;
    // A parse error quotes the bytes it read ("last read: 'tr\xC3'"), cut wherever the lexer stopped: possibly
    // inside a multi-byte UTF-8 character. The reason goes into the metadata JSON, whose dump() throws on
    // invalid UTF-8, so make it valid here (U+FFFD for the cut bytes).
    d.error = nlohmann::json::parse(
                  nlohmann::json(e.what()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
                  .get<std::string>();
  }
  return d;
}

}  // namespace streamfleet::compactor
