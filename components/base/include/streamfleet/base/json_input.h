#pragma once
// JSON from outside the process (request bodies, task payloads, provider events, assembled LLM output):
// parsed with a depth limit and refused, never crashed on.
//
// Why not nlohmann::json::parse: its parser and its copy constructor recurse once per nesting level, so a
// value nested ~70,000 levels deep (a few hundred KiB of "[[[[") overflows the stack and kills the process.
// ParseJsonInput builds the value itself from nlohmann's SAX events and stops at `max_depth` before any deep
// structure exists; every value that leaves it is at most `max_depth` deep, so the recursive copies, dumps
// and comparisons done with it later are bounded too. It also refuses duplicate object keys, which
// nlohmann would resolve silently by keeping the last one ({"seq":0,"seq":5} is ambiguous: refuse it).
//
// Thread-safety: pure functions. Errors: kInvalidArgument with the byte offset and the reason.
#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

#include "streamfleet/base/status.h"

namespace streamfleet {

struct JsonLimits {
  // Nesting levels of objects and arrays; the top-level value's own brackets count as level 1.
  int max_depth = 64;
  // 0 = no size limit (the caller bounded the body already).
  size_t max_bytes = 0;
  bool reject_duplicate_keys = true;
};

// Limits for the assembled text of a generation: LLM output is data, not a request, so deeper values are
// accepted, but still bounded (a deeper answer is stored as text, with the fallback recorded).
inline constexpr JsonLimits kGeneratedJsonLimits{512, 0, false};

StatusOr<nlohmann::json> ParseJsonInput(std::string_view text, const JsonLimits& limits = {});

// What CheckJsonInput saw besides validity.
struct JsonFacts {
  bool holds_nul = false;  // a string or key holds U+0000
};
// The same rules and errors as ParseJsonInput, without building the value: memory follows the depth, not the
// size (a DOM of many small values costs several times its text), for documents too large to hold twice.
Status CheckJsonInput(std::string_view text, const JsonLimits& limits = {}, JsonFacts* facts = nullptr);

// Whether a checked document may be used as it is, in place of its re-serialization: not when it starts with a
// UTF-8 byte order mark, which the parser skips but PostgreSQL's jsonb refuses and which inside another
// document (a GET's answer) is not JSON.
inline bool UsableAsSent(std::string_view text) { return !text.starts_with("\xEF\xBB\xBF"); }

}  // namespace streamfleet
