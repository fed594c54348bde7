#pragma once
// Push handlers: task types run by the app's own HTTP endpoints, in any language (docs/push-handlers.md).
// TASK_ROUTES maps type names and globs to URLs; for each task of a routed type the worker POSTs
//   {"id", "type", "payload" (the task's JSON), "attempt", "queue", "enqueued_at_ms", "deadline_ms"}
// with Idempotency-Key: <task id>, X-Streamfleet-Timestamp: <unix s>, X-Streamfleet-Deadline-Ms (the time
// left, when the type has a timeout) and, with TASK_SIGNING_SECRET, X-Streamfleet-Signature:
// v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>. The answer decides:
//   2xx                      succeeded; the body (at most kMaxPushResultBytes) is the task's result
//   429, 503                 retried at Retry-After (seconds or an HTTP date) when given, else with backoff
//   other 5xx, 408, no answer, connection error, timeout     retried with the type's policy
//   other 1xx, 3xx, 4xx      permanent: dead-lettered at once (no retry storm)
// The request's timeout is the attempt's remaining deadline (TASK_TIMEOUTS / TASK_TIMEOUT), else
// TASK_ROUTE_TIMEOUT. Routes are the operator's configuration, so they are not subject to the webhook task's
// destination policy (an app on 127.0.0.1 or in the cluster network is the usual case).
//
// Each worker thread keeps its own libcurl handle and so its keep-alive connections: the HTTP hop costs no
// connection set-up per task. Thread-safety: the registered handlers may run on any number of threads.
#include <cstdint>
#include <string>

#include "queue-worker/handlers.h"

namespace streamfleet::worker {

inline constexpr size_t kMaxPushResultBytes = 64 * 1024;

// "v1=" + lowercase hex HMAC-SHA256(secret, timestamp + "." + body): what X-Streamfleet-Signature carries.
std::string PushSignature(const std::string& secret, const std::string& timestamp, const std::string& body);

// Milliseconds a Retry-After value asks for (delta seconds, or an HTTP date relative to now_ms); 0 when
// absent or unreadable.
int64_t RetryAfterMs(const std::string& value, int64_t now_ms);

// Registers a handler for every route of config.task_routes: exact names with Register (they win over a
// built-in of the same name), globs with RegisterPattern. `config` must outlive the registry.
void RegisterPushHandlers(HandlerRegistry& registry, const Config& config);

}  // namespace streamfleet::worker
