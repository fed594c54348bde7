// POST .../chunks with Content-Type text/event-stream (an app relaying a provider's stream), and the
// queue-worker reading the provider itself: every line of the body through ParseSseLine.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "streamfleet/chunks/request_parsing.h"
#include "streamfleet/http/sse.h"

using streamfleet::SseLine;

namespace {

void CheckLine(std::string_view line) {
  auto l = streamfleet::ParseSseLine(line);
  if (!l.ok()) {
    FUZZ_CHECK(l.status().code() == streamfleet::StatusCode::kInvalidArgument);
    return;
  }
  if (l->kind == SseLine::Kind::kData) FUZZ_CHECK(!l->text.empty());
  if (l->kind != SseLine::Kind::kData) FUZZ_CHECK(l->text.empty());
  if (l->usage) FUZZ_CHECK(l->usage->is_object());
  // Only "data:" lines carry anything.
  if (l->kind != SseLine::Kind::kSkip || l->usage) FUZZ_CHECK(line.substr(0, 5) == "data:");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  size_t consumed = streamfleet::ForEachCompleteLine(body, [](std::string_view line) {
    CheckLine(line);
    return true;
  });
  if (consumed < body.size()) CheckLine(body.substr(consumed));  // the last line, without '\n'
  return 0;
}
