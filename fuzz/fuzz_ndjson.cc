// POST .../chunks with Content-Type application/x-ndjson, as ingest reads it: the body arrives in reads of
// any size (the first input byte picks the read size), ForEachCompleteLine hands out complete lines, blank
// lines are skipped and every other line is a chunk object (ParseChunkJson). The lines must not depend on
// how the body was cut into reads.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "streamfleet/chunks/request_parsing.h"

using streamfleet::ForEachCompleteLine;

namespace {

// The lines of `body` read `read_size` bytes at a time, the way IngestService::HandleStreamed does.
std::vector<std::string> LinesByReads(std::string_view body, size_t read_size) {
  std::vector<std::string> lines;
  std::string pending;
  auto collect = [&](std::string_view line) {
    lines.emplace_back(line);
    return true;
  };
  for (size_t off = 0; off < body.size(); off += read_size) {
    pending.append(body.substr(off, read_size));
    size_t consumed = ForEachCompleteLine(pending, collect);
    FUZZ_CHECK(consumed != std::string_view::npos && consumed <= pending.size());
    pending.erase(0, consumed);
    FUZZ_CHECK(pending.find('\n') == std::string::npos);
  }
  if (!pending.empty()) lines.push_back(pending);
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t read_size = 1 + data[0] % 64;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::vector<std::string> whole = LinesByReads(body, body.size() + 1);
  FUZZ_CHECK(LinesByReads(body, read_size) == whole);

  // Stopping early consumes nothing past the line that stopped it.
  size_t seen = 0;
  size_t stopped = ForEachCompleteLine(body, [&](std::string_view) { return ++seen < 2; });
  FUZZ_CHECK(stopped == std::string_view::npos || seen < 2);

  for (const std::string& line : whole) {
    if (line.empty() || line == "\r") continue;
    auto c = streamfleet::ParseChunkJson(line);
    if (c.ok()) FUZZ_CHECK((!c->seq || *c->seq >= 0) && c->total_chunks >= 0);
  }
  return 0;
}
