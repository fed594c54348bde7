#include "queue-worker/webhook.h"

#include "queue-worker/push_handlers.h"

#include "queue-worker/curl_handles.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "streamfleet/base/codec.h"
#include "streamfleet/base/text.h"
#include "streamfleet/base/time.h"

namespace streamfleet::worker {

namespace {

// Of an answer's body only an excerpt goes into the error message (and from there into the status hash,
// the dead letter and logs): the receiver is not trusted to answer with something short or printable.
constexpr size_t kExcerptBytes = 200;
constexpr size_t kMaxResponseBytes = kExcerptBytes + 4;  // kept for the excerpt, the rest is dropped

size_t KeepPrefix(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  size_t len = size * n;
  if (out->size() < kMaxResponseBytes) out->append(data, std::min(len, kMaxResponseBytes - out->size()));
  return len;
}

bool HasLineBreak(const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; }

// What the open-socket callback knows: the policy, and the first refusal (for the error message).
struct Destination {
  const DestinationPolicy* policy;
  std::string refusal;
};

// libcurl's open-socket callback: called with each address it is about to connect to, after resolving, so
// the check sees the very address of the connection (a name that resolves to a public address when looked
// up and to 127.0.0.1 a moment later cannot get past it). CURL_SOCKET_BAD makes libcurl skip the address.
curl_socket_t OpenCheckedSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* d = static_cast<Destination*>(user);
  IpAddress a;
  std::string why;
  if (purpose != CURLSOCKTYPE_IPCXN || !IpAddress::FromSockaddr(&address->addr, a)) {
    why = "not an IP connection";
  } else {
    why = d->policy->Refusal(a);
  }
  if (!why.empty()) {
    if (d->refusal.empty()) d->refusal = std::move(why);
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// The payload's timeout_ms (or WEBHOOK_TIMEOUT), at most WEBHOOK_MAX_TIMEOUT and at least 1 ms: a task
// cannot hold a worker slot for as long as it likes.
int64_t TimeoutMs(const nlohmann::json& payload, const Config& config) {
  int64_t ms = config.webhook_timeout_ms;
  if (payload.contains("timeout_ms")) {
    const nlohmann::json& t = payload["timeout_ms"];
    // Above INT64_MAX (an unsigned JSON number) it is over the cap too.
    ms = t.is_number_unsigned() && t.get<uint64_t>() > static_cast<uint64_t>(config.webhook_max_timeout_ms)
             ? config.webhook_max_timeout_ms
             : t.get<int64_t>();
  }
  return std::clamp<int64_t>(ms, 1, config.webhook_max_timeout_ms);
}

// WEBHOOK_ALLOW_NETS / WEBHOOK_DENY_NETS (validated by LoadConfig; a Config built another way that does
// not parse refuses every destination rather than none).
StatusOr<DestinationPolicy> PolicyOf(const Config& config) {
  auto allow = ParseIpNets(config.webhook_allow_nets);
  auto deny = ParseIpNets(config.webhook_deny_nets);
  if (!allow.ok()) return Status::FailedPrecondition("WEBHOOK_ALLOW_NETS: " + allow.status().message());
  if (!deny.ok()) return Status::FailedPrecondition("WEBHOOK_DENY_NETS: " + deny.status().message());
  return DestinationPolicy(std::move(*allow), std::move(*deny));
}

}  // namespace

Status PostWebhook(const WebhookRequest& req, const std::atomic<bool>* cancelled, long* status_code) {
  *status_code = 0;
  if (req.url.rfind("http://", 0) != 0 && req.url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("webhook url must be http:// or https://");
  }
  InitCurlOnce();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Status::Internal("curl_easy_init failed");
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&](const std::string& line) {
    curl_slist* l = curl_slist_append(headers.get(), line.c_str());
    if (l != nullptr) {
      (void)headers.release();
      headers.reset(l);
    }
  };
  add_header("Content-Type: application/json");
  for (const auto& [name, value] : req.headers) {
    // A header made of user input must not smuggle in a second header or a second request.
    if (name.empty() || HasLineBreak(name) || HasLineBreak(value) || name.find(':') != std::string::npos) {
      return Status::InvalidArgument("webhook header \"" + name + "\" is malformed");
    }
    add_header(name + ": " + value);
  }
  std::string response;
  Destination destination{&req.policy, ""};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "streamfleet-queue-worker");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, req.timeout_ms)));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // worker threads: no SIGALRM-based DNS timeouts
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, KeepPrefix);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, AbortIfCancelled);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancelled));
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  // Never through a proxy from the environment (http_proxy, ALL_PROXY): the destination check below would see
  // only the proxy's address, and the proxy would fetch a refused destination for us.
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, OpenCheckedSocket);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &destination);
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_COULDNT_CONNECT && !destination.refusal.empty()) {
    // Permanent: the same URL resolves to a refused address again (and a rebinding name is no better).
    return Status::FailedPrecondition("webhook destination refused: " + destination.refusal + " (" +
                                      RedactUrl(req.url) + ")");
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Status::DeadlineExceeded("webhook timed out after " + std::to_string(req.timeout_ms) +
                                    "ms: " + RedactUrl(req.url));
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK) return Status::DeadlineExceeded("webhook cancelled (task timeout)");
  if (rc != CURLE_OK) return Status::Unavailable(std::string("webhook: ") + curl_easy_strerror(rc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status_code);
  long code = *status_code;
  std::string what = "webhook answered HTTP " + std::to_string(code);
  if (!response.empty()) what += ": " + TextExcerpt(response, kExcerptBytes);
  if (code >= 200 && code < 300) return Status::Ok();
  if (code == 408 || code == 429 || code >= 500) return Status::Unavailable(what);
  return Status::FailedPrecondition(what);
}

std::string EventsWebhookAttestation(const std::string& secret, const std::string& body) {
  return HmacSha256Hex(secret, "events-webhook." + body);
}

void RegisterWebhookHandler(HandlerRegistry& registry) {
  registry.Register("webhook", [](TaskContext& ctx) {
    auto parsed = ctx.PayloadJson();
    if (!parsed.ok()) return parsed.status();
    nlohmann::json& j = *parsed;
    const bool events = j.is_object() && !j.contains("url") && j.contains("url_from") &&
                        j["url_from"].is_string() && j["url_from"].get<std::string>() == kEventsWebhookUrlFrom;
    if (!j.is_object() || (!events && (!j.contains("url") || !j["url"].is_string())) ||
        (j.contains("headers") && !j["headers"].is_object()) ||
        (j.contains("timeout_ms") && !j["timeout_ms"].is_number_integer())) {
      return Status::InvalidArgument(
          "payload must be {\"url\": U, \"body\": {...}, \"headers\": {\"Name\": \"value\"}, \"timeout_ms\": N?}");
    }
    if (events && ctx.config.events_webhook_url.empty()) {
      return Status::FailedPrecondition("an events webhook task, and EVENTS_WEBHOOK_URL is not set on this worker");
    }
    WebhookRequest req;
    req.url = events ? ctx.config.events_webhook_url : j["url"].get<std::string>();
    req.body = j.contains("body") ? j["body"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : "{}";
    if (events && !ctx.config.task_signing_secret.empty()) {
      const std::string* attest = j.contains("attest") && j["attest"].is_string() ? j["attest"].get_ptr<const std::string*>() : nullptr;
      if (attest == nullptr ||
          !SecretEquals(*attest, EventsWebhookAttestation(ctx.config.task_signing_secret, req.body))) {
        return Status::FailedPrecondition("an events webhook task the event forwarder did not make (no valid attest): "
                                          "not signed, not sent");
      }
      // Signed as a push handler's request is (docs/push-handlers.md), so the receiver can verify it.
      const std::string ts = std::to_string(WallClockMs() / 1000);
      req.headers.emplace_back("X-Streamfleet-Timestamp", ts);
      req.headers.emplace_back("X-Streamfleet-Signature", PushSignature(ctx.config.task_signing_secret, ts, req.body));
    }
    if (j.contains("headers")) {
      for (const auto& [name, value] : j["headers"].items()) {
        if (!value.is_string()) return Status::InvalidArgument("webhook header values must be strings");
        req.headers.emplace_back(name, value.get<std::string>());
      }
    }
    if (!ctx.task.id().empty()) req.headers.emplace_back("Idempotency-Key", ctx.task.id());
    auto policy = PolicyOf(ctx.config);
    if (!policy.ok()) return policy.status();
    req.policy = std::move(*policy);
    req.timeout_ms = TimeoutMs(j, ctx.config);
    // Never wait past the attempt's own timeout: it is failed then anyway.
    if (ctx.deadline != std::chrono::steady_clock::time_point::max()) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(ctx.deadline - std::chrono::steady_clock::now());
      req.timeout_ms = std::min<int64_t>(req.timeout_ms, std::max<int64_t>(1, left.count()));
    }
    long code = 0;
    Status s = PostWebhook(req, ctx.cancelled, &code);
    if (s.ok()) ctx.result = "HTTP " + std::to_string(code);
    return s;
  });
}

}  // namespace streamfleet::worker
