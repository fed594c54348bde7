#include "queue-worker/provider_client.h"

#include "queue-worker/curl_handles.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "streamfleet/base/text.h"
#include "streamfleet/http/sse.h"

namespace streamfleet::worker {

ProviderOptions ProviderOptions::FromConfig(const Config& c) {
  ProviderOptions o;
  o.base_url = c.provider_base_url;
  o.api_key = c.provider_api_key;
  o.connect_timeout_ms = c.provider_connect_timeout_ms;
  o.silence_timeout_ms = c.provider_silence_timeout_s * 1000;
  return o;
}

void InitProviderClient() { curl_global_init(CURL_GLOBAL_DEFAULT); }

namespace {

constexpr size_t kMaxErrorBody = 2048;
constexpr size_t kMaxLine = 4 << 20;  // a provider event larger than this is not a chat-completion chunk

using Clk = std::chrono::steady_clock;

// State of one transfer, shared with the callbacks.
struct Transfer {
  CURL* curl = nullptr;
  Clk::time_point last_byte = Clk::now();
  std::chrono::milliseconds silence{60000};
  bool silent = false;  // aborted by OnProgress for silence
  const std::atomic<bool>* cancel = nullptr;
  bool cancelled = false;  // aborted by OnProgress: the attempt was cancelled
  const DeltaSink* sink = nullptr;
  long http_status = 0;
  std::string error_body;  // first bytes of a non-200 answer, for the error message
  std::string pending;     // an incomplete line
  bool done = false;
  Status sink_status;
  StreamResult result;
};

void HandleLine(Transfer& t, std::string_view line, std::vector<std::string>& deltas) {
  if (t.done) return;  // after [DONE], nothing counts
  auto l = ParseSseLine(line);
  if (!l.ok()) {
    ++t.result.malformed_events;
    return;
  }
  if (l->usage) t.result.usage = std::move(l->usage);
  if (l->kind == SseLine::Kind::kDone) t.done = true;
  if (l->kind == SseLine::Kind::kData) deltas.push_back(std::move(l->text));
}

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  size_t bytes = size * n;
  t.last_byte = Clk::now();
  if (t.http_status == 0) curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &t.http_status);
  if (t.http_status != 200) {
    t.error_body.append(data, std::min(bytes, kMaxErrorBody - std::min(kMaxErrorBody, t.error_body.size())));
    return bytes;
  }
  t.pending.append(data, bytes);
  std::vector<std::string> deltas;
  size_t start = 0;
  for (size_t nl; (nl = t.pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    HandleLine(t, std::string_view(t.pending).substr(start, nl - start), deltas);
  }
  t.pending.erase(0, start);
  if (t.pending.size() > kMaxLine) {
    ++t.result.malformed_events;
    t.pending.clear();
  }
  if (!deltas.empty()) {
    t.result.deltas += static_cast<int64_t>(deltas.size());
    t.sink_status = (*t.sink)(deltas);
    if (!t.sink_status.ok()) return 0;  // aborts with CURLE_WRITE_ERROR
  }
  // [DONE] is the end even if the server keeps the connection open: stop reading (CURLE_WRITE_ERROR).
  return t.done ? 0 : bytes;
}

// Called by libcurl at least once a second, also while nothing arrives: the silence check. (libcurl's own
// CURLOPT_LOW_SPEED_TIME averages the speed over a window of several seconds: measured here, a 1 s setting
// aborted a silent stream only after 7 s.)
int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& t = *static_cast<Transfer*>(user);
  if (t.cancel != nullptr && t.cancel->load()) {
    // The attempt is over (its timeout, a lost lease): a stream that went on would keep appending beside the
    // retry, after the worker gave this thread up.
    t.cancelled = true;
    return 1;
  }
  if (Clk::now() - t.last_byte < t.silence) return 0;
  t.silent = true;
  return 1;  // CURLE_ABORTED_BY_CALLBACK
}

}  // namespace

StatusOr<StreamResult> StreamChat(const ProviderOptions& options, const std::string& model,
                                  const std::string& user_content, const DeltaSink& on_deltas) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Status::Internal("curl_easy_init failed");
  nlohmann::json body = {{"model", model},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}},
                         {"messages", nlohmann::json::array({{{"role", "user"}, {"content", user_content}}})}};
  std::string payload = body.dump();
  std::string url = options.base_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/chat/completions";

  curl_slist* raw_headers = curl_slist_append(nullptr, "Content-Type: application/json");
  raw_headers = curl_slist_append(raw_headers, "Accept: text/event-stream");
  if (!options.api_key.empty()) {
    raw_headers = curl_slist_append(raw_headers, ("Authorization: Bearer " + options.api_key).c_str());
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(raw_headers);

  Transfer t;
  t.curl = curl.get();
  t.sink = &on_deltas;
  t.silence = std::chrono::milliseconds(options.silence_timeout_ms);
  t.cancel = options.cancelled;
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // several slot threads: no SIGALRM-based timeouts
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout_ms));
  // Silence: no byte for silence_timeout_ms aborts (OnProgress), and so does the attempt's cancel flag (its
  // TASK_TIMEOUTS). There is deliberately no total timeout of its own: a long generation that keeps talking
  // is fine.
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  CURLcode rc = curl_easy_perform(c);
  if (t.http_status == 0) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.http_status);
  std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);

  if (rc == CURLE_WRITE_ERROR && !t.sink_status.ok()) return t.sink_status;
  if (t.cancelled) {
    return Status::DeadlineExceeded("the attempt was cancelled (its timeout passed or its lease was lost): provider "
                                    "stream stopped after " + std::to_string(t.result.deltas) + " deltas");
  }
  if (t.http_status != 200) {
    if (t.http_status == 0 && t.silent) return Status::Unavailable("provider silent before answering");
    if (t.http_status == 0) return Status::Unavailable("provider unreachable: " + why);
    // An excerpt, control characters replaced: the body goes into the row's metadata.error, the organization's
    // generation.failed event and the logs, and a gateway's error page may echo anything.
    std::string msg = "provider answered HTTP " + std::to_string(t.http_status) + ": " + TextExcerpt(t.error_body, 200);
    bool transient = t.http_status == 408 || t.http_status == 429 || t.http_status >= 500;
    return transient ? Status::Unavailable(msg) : Status::FailedPrecondition(msg);
  }
  // A last line without its newline still counts (a server that closes right after it).
  if (!t.pending.empty()) {
    std::vector<std::string> deltas;
    HandleLine(t, t.pending, deltas);
    if (!deltas.empty()) {
      t.result.deltas += static_cast<int64_t>(deltas.size());
      SF_RETURN_IF_ERROR(on_deltas(deltas));
    }
  }
  if (t.done) {
    t.result.end = StreamEnd::kDone;
  } else if (t.silent) {
    t.result.end = StreamEnd::kSilent;
    t.result.detail = "no data for " + std::to_string(options.silence_timeout_ms) + " ms";
  } else {
    t.result.end = StreamEnd::kCut;
    t.result.detail = rc == CURLE_OK ? "the stream ended without [DONE]" : why;
  }
  return t.result;
}

}  // namespace streamfleet::worker
