#pragma once
// A client for an OpenAI-compatible chat-completions stream (POST {base}/chat/completions, "stream": true,
// server-sent events) over libcurl.
//
// Threading: StreamChat is blocking (curl_easy_perform) and runs the whole transfer on the calling thread.
// In the queue-worker every slot is its own thread with its own Redis connection, so a stream occupies only
// its slot: the other slots keep taking tasks. Deltas reach the caller as they arrive, once per network
// read, so they can be appended while the provider is still talking.
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "streamfleet/base/config.h"
#include "streamfleet/base/status.h"

namespace streamfleet::worker {

struct ProviderOptions {
  std::string base_url;  // ".../v1"
  std::string api_key;   // "" = no Authorization header; never logged
  int64_t connect_timeout_ms = 10000;
  int64_t silence_timeout_ms = 60000;  // no byte for this long aborts the transfer
  // The attempt's cancel flag (TaskContext::cancelled: its timeout passed or its lease was lost); set, the
  // transfer stops within about a second. nullptr: never.
  const std::atomic<bool>* cancelled = nullptr;
  static ProviderOptions FromConfig(const Config& c);
};

// How a stream that was answered with HTTP 200 ended.
enum class StreamEnd {
  kDone,    // "data: [DONE]"
  kCut,     // the connection closed or failed before [DONE]
  kSilent,  // nothing arrived for silence_timeout_ms: the transfer was aborted
};

struct StreamResult {
  StreamEnd end = StreamEnd::kDone;
  int64_t deltas = 0;            // delta texts handed to on_deltas
  int64_t malformed_events = 0;  // data events that were not chat-completion chunks: counted and skipped
  std::optional<nlohmann::json> usage;  // the provider's usage object, when it sent one
  std::string detail;            // why it was cut or went silent
};

// Receives the deltas parsed from one network read (never empty). A non-OK status aborts the transfer and
// is what StreamChat returns.
using DeltaSink = std::function<Status(std::vector<std::string>& deltas)>;

// Errors before the stream started: kUnavailable for connect failures, timeouts and HTTP 408/429/5xx
// (worth retrying with backoff), kFailedPrecondition for any other HTTP status (401, 400, 404: retrying
// will not help). Afterwards the result says how the stream ended.
StatusOr<StreamResult> StreamChat(const ProviderOptions& options, const std::string& model,
                                  const std::string& user_content, const DeltaSink& on_deltas);

// Once per process, before any thread streams (curl_global_init is not thread-safe).
void InitProviderClient();

}  // namespace streamfleet::worker
