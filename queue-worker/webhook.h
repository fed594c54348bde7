#pragma once
// The `webhook` task type: POST a JSON document to a URL with libcurl.
//   payload {"url": "https://...", "body": {...}, "headers": {"Name": "value"}, "timeout_ms": 5000}
//   or {"url_from": "EVENTS_WEBHOOK_URL", "body": ...}: the worker's configured events URL (the event
//   forwarder's tasks), signed like a push handler's request when TASK_SIGNING_SECRET is set.
// The outcome decides the retry (handlers.h: kInvalidArgument / kFailedPrecondition are dead-lettered at
// once, anything else is retried with backoff):
//   2xx                                      -> success
//   408, 429, 5xx, connect/transport error   -> kUnavailable (retried: the receiver may recover)
//   timeout or cancellation                  -> kDeadlineExceeded (retried)
//   other 1xx/3xx/4xx                        -> kFailedPrecondition (the receiver refuses this request;
//                                               repeating it would be a retry storm: dead-lettered)
//   every address refused by the policy      -> kFailedPrecondition (dead-lettered; the message names the
//                                               address and the rule)
// Destinations: WEBHOOK_ALLOW_NETS / WEBHOOK_DENY_NETS over built-in refusals of loopback, link-local and
// cloud metadata addresses (streamfleet/base/ip_nets.h), checked on each address libcurl is about to connect to.
// timeout_ms is capped at WEBHOOK_MAX_TIMEOUT. An error quotes at most 200 bytes of the answer's body,
// control characters replaced. Redirects are not followed.
// Delivery is at least once; every request carries `Idempotency-Key: <task id>` so receivers can dedupe.
#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "queue-worker/handlers.h"
#include "streamfleet/base/ip_nets.h"

namespace streamfleet::worker {

// The value of a webhook payload's "url_from" that names the worker's EVENTS_WEBHOOK_URL.
inline constexpr const char* kEventsWebhookUrlFrom = "EVENTS_WEBHOOK_URL";
// With TASK_SIGNING_SECRET set, the event forwarder's attestation of an events webhook task's body (payload
// field "attest"): the worker signs and posts only bodies the forwarder made, not any task an enqueuer
// (a task API token, say) writes with url_from.
std::string EventsWebhookAttestation(const std::string& secret, const std::string& body);

struct WebhookRequest {
  std::string url;  // http:// or https:// only
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  int64_t timeout_ms = 10000;
  DestinationPolicy policy;  // default: the built-in refusals only
};

// Sends the request; status_code gets the HTTP status (0 when none arrived). `cancelled` (may be null)
// aborts the transfer when set. Errors as in the table above.
Status PostWebhook(const WebhookRequest& req, const std::atomic<bool>* cancelled, long* status_code);

// Registers `webhook` (default timeout WEBHOOK_TIMEOUT, never past the attempt's deadline).
void RegisterWebhookHandler(HandlerRegistry& registry);

}  // namespace streamfleet::worker
