#include "queue-worker/event_forwarder.h"

#include <nlohmann/json.hpp>

#include "streamfleet/base/keys.h"
#include "streamfleet/base/log.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/chunks/fleet_events.h"

namespace streamfleet::worker {

EventForwarder::EventForwarder(const Config& config, const TaskKeys& keys)
    : config_(config), keys_(keys), stream_(KeySchema::FromConfig(config).EventsStream()) {}

StatusOr<std::string> EventForwarder::EventBody(const StreamEntry& entry) {
  auto ev = DecodeFleetEvent(entry);
  if (!ev.ok()) return ev.status();
  // The webhook is the compaction notice (EVENTS_WEBHOOK_URL); the other lifecycle events are for the live
  // events route and are acked without one.
  if (ev->type != "generation.compacted") return Status::NotFound(ev->type + " is not forwarded");
  return ev->json;
}

StatusOr<EventForwarder::Round> EventForwarder::Forward(RedisClient& redis, const std::vector<StreamEntry>& entries,
                                                        int64_t now_ms) {
  Round round;
  for (const auto& e : entries) {
    auto body = EventBody(e);
    if (body.ok()) {
      nlohmann::json payload = {{"url", config_.events_webhook_url}, {"body", nlohmann::json::parse(*body)}};
      EnqueueOptions o = EnqueueOptions::FromConfig(config_);
      o.unique_key = "event:" + e.id;
      o.unique_ttl_s = 86400;  // far longer than any redelivery of the entry
      auto r = EnqueueTask(redis, keys_, "webhook", payload.dump(), o, now_ms);
      if (!r.ok()) return r.status();  // not acked: redelivered, and the unique key dedupes it
      ++round.forwarded;
    } else {
      if (body.status().code() != StatusCode::kNotFound) {
        SF_LOG_WARN("events {} {}: {}; acked without a webhook", stream_, e.id, body.status().ToString());
      }
      ++round.skipped;
    }
    auto ack = redis.Command({"XACK", stream_, Group(), e.id});
    if (!ack.ok()) return ack.status();
  }
  return round;
}

StatusOr<EventForwarder::Round> EventForwarder::ForwardOnce(RedisClient& redis, const std::string& consumer,
                                                            int64_t now_ms, int count) {
  if (!group_ready_) {
    auto r = redis.Command({"XGROUP", "CREATE", stream_, Group(), "$", "MKSTREAM"});
    if (!r.ok() && r.status().code() != StatusCode::kAlreadyExists) return r.status();
    group_ready_ = true;
  }
  auto claimed = ClaimIdle(redis, stream_, Group(), consumer, config_.visibility_timeout_ms, count);
  if (!claimed.ok()) return claimed.status();
  std::vector<StreamEntry> entries;
  for (auto& c : *claimed) entries.push_back(std::move(c.entry));
  auto read = redis.Command(
      {"XREADGROUP", "GROUP", Group(), consumer, "COUNT", std::to_string(count), "STREAMS", stream_, ">"});
  if (!read.ok()) {
    if (read.status().code() == StatusCode::kFailedPrecondition) group_ready_ = false;  // NOGROUP: stream deleted
    return read.status();
  }
  for (auto& e : ParseStreamReply(*read)) entries.push_back(std::move(e));
  return Forward(redis, entries, now_ms);
}

}  // namespace streamfleet::worker
