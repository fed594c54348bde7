#pragma once
// Pure parsing of what clients send to ingest: ids in paths, chunk JSON objects (one per request or per
// NDJSON line). OpenAI-compatible SSE lines: streamfleet/http/sse.h. No I/O, unit-tested on its own.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "streamfleet/http/sse.h"
#include "streamfleet/base/status.h"

namespace streamfleet {

// A positive integer id of at most 18 digits ("12"); anything else (sign, spaces, "*", ":") is rejected so
// nothing but digits ever reaches a key.
std::optional<int64_t> ParseId(std::string_view s);

struct Route {
  enum class Kind { kChunks, kFinish, kProgress, kGeneration, kStart, kStream, kEvents, kUnknown };
  Kind kind = Kind::kUnknown;
  int64_t org = 0;
  int64_t gen = 0;
  std::string bad_id;  // set when the shape matched but an id was malformed
};
// /v1/orgs/{org}/generations/{gen}[/(chunks|finish|progress|stream)], /v1/orgs/{org}/generations and
// /v1/orgs/{org}/events.
Route MatchRoute(std::string_view path);

struct ChunkInput {
  std::optional<int64_t> seq;  // absent: ingest assigns the next one
  std::string data;
  bool final = false;
  int64_t total_chunks = 0;  // 0 = unknown
};
// {"seq": 0, "data": "...", "final": false, "total_chunks": null}; kInvalidArgument with the reason.
// The common shape is read by ParseCommonChunkJson (common_chunk_json.h), everything else by the general
// parser below.
StatusOr<ChunkInput> ParseChunkJson(std::string_view text);
// ParseChunkJson without its fast path: a bounded JSON document (json_input.h), then its fields. The reference
// the fast path is tested against.
StatusOr<ChunkInput> ParseChunkJsonGeneral(std::string_view text);

// A streamed body (NDJSON or SSE) arrives in reads of any size: hands each complete line of `buffer` to
// on_line, without its '\n', in order, stopping when on_line returns false. Returns how many bytes were
// consumed (the rest is an incomplete line the caller keeps for the next read), or npos when on_line stopped.
size_t ForEachCompleteLine(std::string_view buffer, const std::function<bool(std::string_view)>& on_line);

}  // namespace streamfleet
