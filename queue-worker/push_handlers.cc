#include "queue-worker/push_handlers.h"

#include "streamfleet/base/codec.h"

#include "queue-worker/curl_handles.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <nlohmann/json.hpp>

#include "streamfleet/base/text.h"
#include "streamfleet/base/time.h"

namespace streamfleet::worker {

namespace {

// What one request collects from its answer.
struct Answer {
  std::string body;  // at most kMaxPushResultBytes
  std::string retry_after;
};

size_t KeepBody(char* data, size_t size, size_t n, void* user) {
  auto* a = static_cast<Answer*>(user);
  size_t len = size * n;
  if (a->body.size() < kMaxPushResultBytes) a->body.append(data, std::min(len, kMaxPushResultBytes - a->body.size()));
  return len;
}

size_t KeepRetryAfter(char* data, size_t size, size_t n, void* user) {
  size_t len = size * n;
  std::string_view line(data, len);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    std::string head(line.substr(0, kName.size()));
    for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (head == kName) {
      std::string v(line.substr(kName.size()));
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      static_cast<Answer*>(user)->retry_after = v;
    }
  }
  return len;
}

// One easy handle per thread, reset between requests: curl_easy_reset keeps its connection cache, so a
// thread's requests to a route reuse one keep-alive connection.
CURL* ThreadHandle() {
  struct Handle {
    CURL* c = nullptr;
    ~Handle() {
      if (c != nullptr) curl_easy_cleanup(c);
    }
  };
  thread_local Handle h;
  if (h.c == nullptr) {
    InitCurlOnce();
    h.c = curl_easy_init();
  } else {
    curl_easy_reset(h.c);
  }
  return h.c;
}

// The request's timeout and the deadline the receiver is told: the attempt's deadline when its type has a
// timeout, else TASK_ROUTE_TIMEOUT's, after which the request is cut and the task retried all the same (so the
// handler is told that one too, and can give up in time).
struct Timing {
  int64_t timeout_ms;
  int64_t deadline_ms;  // unix ms
};
Timing TimingOf(const TaskContext& ctx) {
  int64_t ms = ctx.config.task_route_timeout_ms;
  if (ctx.deadline != std::chrono::steady_clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.deadline - std::chrono::steady_clock::now());
    ms = std::max<int64_t>(1, left.count());
  }
  return {ms, WallClockMs() + ms};
}

Status Push(TaskContext& ctx, const std::string& url) {
  auto payload = ctx.PayloadJson();
  if (!payload.ok()) return payload.status();
  const Timing t = TimingOf(ctx);
  nlohmann::json doc = {{"id", ctx.task.id()},
                        {"type", ctx.task.type()},
                        {"payload", std::move(*payload)},
                        {"attempt", ctx.task.attempt()},
                        {"queue", ctx.task.queue()},
                        {"enqueued_at_ms", ctx.task.enqueued_at_ms()},
                        {"deadline_ms", t.deadline_ms}};
  const std::string body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string timestamp = std::to_string(WallClockMs() / 1000);

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add = [&headers](const std::string& line) {
    if (curl_slist* l = curl_slist_append(headers.get(), line.c_str())) {
      (void)headers.release();
      headers.reset(l);
    }
  };
  add("Content-Type: application/json");
  add("Idempotency-Key: " + ctx.task.id());
  add("X-Streamfleet-Timestamp: " + timestamp);
  add("X-Streamfleet-Deadline-Ms: " + std::to_string(t.timeout_ms));
  if (!ctx.config.task_signing_secret.empty()) {
    add("X-Streamfleet-Signature: " + PushSignature(ctx.config.task_signing_secret, timestamp, body));
  }
  add("Expect:");  // no 100-continue round trip for larger bodies

  Answer answer;
  CURL* c = ThreadHandle();
  if (c == nullptr) return Status::Internal("curl_easy_init failed");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "streamfleet-queue-worker");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(t.timeout_ms));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, KeepBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, KeepRetryAfter);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &answer);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, AbortIfCancelled);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(ctx.cancelled));
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  CURLcode rc = curl_easy_perform(c);
  const std::string where = RedactUrl(url);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Status::DeadlineExceeded("push handler timed out after " + std::to_string(t.timeout_ms) + "ms: " + where);
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK) return Status::DeadlineExceeded("push handler cancelled (task timeout)");
  if (rc != CURLE_OK) return Status::Unavailable("push handler " + where + ": " + curl_easy_strerror(rc));
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 200 && code < 300) {
    ctx.result = std::move(answer.body);
    return Status::Ok();
  }
  std::string what = "push handler answered HTTP " + std::to_string(code);
  if (!answer.body.empty()) what += ": " + TextExcerpt(answer.body, 200);
  if (code == 429 || code == 503) ctx.retry_after_ms = RetryAfterMs(answer.retry_after, WallClockMs());
  if (code == 408 || code == 429 || code >= 500) return Status::Unavailable(what);
  return Status::FailedPrecondition(what);
}

}  // namespace

std::string PushSignature(const std::string& secret, const std::string& timestamp, const std::string& body) {
  return "v1=" + HmacSha256Hex(secret, timestamp + "." + body);
}

int64_t RetryAfterMs(const std::string& value, int64_t now_ms) {
  if (value.empty()) return 0;
  int64_t seconds = -1;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && end == value.data() + value.size()) {
    // Bounded before the multiplication (which overflowed from about 9.2e15 s); the finisher caps at 24 h.
    constexpr int64_t kMaxSeconds = int64_t{366} * 24 * 3600;
    return seconds > 0 ? std::min(seconds, kMaxSeconds) * 1000 : 0;
  }
  time_t at = curl_getdate(value.c_str(), nullptr);  // an HTTP date
  if (at <= 0) return 0;
  return std::max<int64_t>(0, static_cast<int64_t>(at) * 1000 - now_ms);
}

void RegisterPushHandlers(HandlerRegistry& registry, const Config& config) {
  for (const TaskRoute& route : config.task_routes) {
    Handler h = [url = route.url](TaskContext& ctx) { return Push(ctx, url); };
    if (route.pattern.find_first_of("*?[") == std::string::npos) {
      registry.Register(route.pattern, std::move(h));
    } else {
      registry.RegisterPattern(route.pattern, std::move(h));
    }
  }
}

}  // namespace streamfleet::worker
