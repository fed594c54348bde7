#pragma once
// OpenAI-compatible chat-completion streams (server-sent events), parsed one line at a time. Shared by
// ingest (an app relays a provider's stream to POST .../chunks) and the queue-worker's generation.run (the
// worker reads the provider itself). Pure, no I/O.
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "streamfleet/base/status.h"

namespace streamfleet {

// One line of an SSE stream. kData: a delta text (non-empty); kDone: "data: [DONE]"; kSkip: comment,
// event/id/retry field, blank line, or an event without delta content (role-only, usage-only, keep-alive).
struct SseLine {
  enum class Kind { kData, kDone, kSkip };
  Kind kind = Kind::kSkip;
  std::string text;
  // The event's top-level "usage" object when it carries one (the last event with include_usage).
  std::optional<nlohmann::json> usage;
};
// kInvalidArgument for a data event that is not a chat-completion chunk (the caller decides: ingest rejects
// the request, generation.run counts and skips it).
StatusOr<SseLine> ParseSseLine(std::string_view line);

}  // namespace streamfleet
