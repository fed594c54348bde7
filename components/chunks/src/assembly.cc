#include "streamfleet/chunks/assembly.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "streamfleet/base/json_input.h"
#include "streamfleet/base/text.h"
#include "streamfleet/chunks/buffer_element.h"

namespace streamfleet {

Assembled Assemble(const std::vector<std::string>& elements, const std::map<int64_t, std::string>& extra,
                   int64_t total, size_t max_bytes) {
  Assembled a;
  std::map<int64_t, std::string_view> by_seq;
  std::vector<std::string> inflated;  // decompressed elements; by_seq views into them
  inflated.reserve(elements.size());
  size_t budget = max_bytes;          // what decompression may still produce
  for (const auto& [seq, data] : extra) by_seq.emplace(seq, data);
  for (const auto& e : elements) {
    BufferElementView v;
    if (!ParseBufferElement(e, &v)) {
      ++a.malformed_elements;
      continue;
    }
    if (by_seq.count(v.seq)) continue;  // first copy of a seq wins; all are equal
    if (v.compressed) {
      auto text = BufferElementText(v, budget);
      if (!text.ok()) {
        ++a.malformed_elements;
        continue;
      }
      budget -= text->size();
      inflated.push_back(std::move(*text));
      by_seq.emplace(v.seq, inflated.back());
    } else {
      by_seq.emplace(v.seq, v.stored);
    }
  }
  size_t bytes = 0;
  for (const auto& [seq, d] : by_seq) bytes += d.size();
  a.text.reserve(bytes);
  for (const auto& [seq, d] : by_seq) {
    a.text.append(d);
    if (a.runs.empty() || a.runs.back().second + 1 != seq) {
      a.runs.emplace_back(seq, seq);
    } else {
      a.runs.back().second = seq;
    }
  }
  a.chunk_count = static_cast<int64_t>(by_seq.size());
  if (total > 0) {
    for (int64_t s = 0; s < total; ++s) {
      if (!by_seq.count(s)) a.missing.push_back(s);
    }
  }
  return a;
}

namespace {

// PostgreSQL's jsonb refuses U+0000 ("unsupported Unicode escape sequence"): such a document could never be
// written there, and its finalization would be retried until dead-lettered. Text with the fallback recorded
// instead, on every backend, so a generation's row does not depend on the database.
constexpr const char* kNulError = "JSON holds U+0000 (a \\u0000 escape), which PostgreSQL's jsonb cannot store";

// Whether a serialized document holds a \u0000 escape (U+0000 in a string), and not only the text "\u0000"
// (an escaped backslash, "\\u0000"): an odd run of backslashes before the "u".
bool HoldsEscapedNul(const std::string& dumped) {
  for (size_t at = dumped.find("u0000"); at != std::string::npos; at = dumped.find("u0000", at + 1)) {
    size_t slashes = 0;
    while (slashes < at && dumped[at - 1 - slashes] == '\\') ++slashes;
    if (slashes % 2 == 1) return true;
  }
  return false;
}

}  // namespace

JsonDecode DecodeJson(const std::string& text) {
  JsonDecode d;
  if (text.size() > kNormalizeMaxBytes && UsableAsSent(text)) {
    JsonFacts facts;
    Status checked = CheckJsonInput(text, kGeneratedJsonLimits, &facts);
    if (!checked.ok()) {
      d.error = ToValidUtf8(checked.message());
    } else if (facts.holds_nul) {
      d.error = kNulError;
    } else {
      d.valid = true;
      d.as_sent = true;
    }
    return d;
  }
  // Bounded depth: an answer nested deeper than kGeneratedJsonLimits is stored as text with the fallback
  // recorded, instead of recursing the compactor's stack away.
  auto j = ParseJsonInput(text, kGeneratedJsonLimits);
  if (j.ok()) {
    d.normalized = j->dump();
    if (HoldsEscapedNul(d.normalized)) {
      d.normalized.clear();
      d.error = kNulError;
      return d;
    }
    d.valid = true;
  } else {
    d.valid = false;
    // The parser quotes the bytes it stopped at; they may be invalid UTF-8 (a chunk that cut a multi-byte
    // character), and this message goes into the row's metadata JSON.
    d.error = ToValidUtf8(j.status().message());
  }
  return d;
}

}  // namespace streamfleet
