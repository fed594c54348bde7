#pragma once
// Routes fleet events to a webhook (EVENTS_WEBHOOK_URL): reads the events stream (KeySchema::EventsStream,
// where the compactor XADDs `type` + `e` = serialized v1::Event) as consumer group "webhooks", turns each
// event into a `webhook` task and acks it. The task's unique key is the event's stream id, so an event
// delivered twice (a crash between enqueue and XACK) enqueues one task. The group starts at the stream's
// end ("$"): events from before the first start are not sent. Entries of a dead forwarder are taken over
// after VISIBILITY_TIMEOUT. Undecodable or unknown events are acked, logged and counted as skipped.
#include <cstdint>
#include <string>

#include "streamfleet/base/config.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet::worker {

class EventForwarder {
 public:
  EventForwarder(const Config& config, const TaskKeys& keys);

  static std::string Group() { return KeySchema::EventsGroup(); }

  struct Round {
    int64_t forwarded = 0;  // webhook tasks enqueued (or already enqueued: duplicates)
    int64_t skipped = 0;    // undecodable / unknown events, acked without a task
  };
  // One round: takes over idle entries, reads up to `count` new events, enqueues and acks. now_ms is the
  // caller's clock for the tasks' enqueue time.
  StatusOr<Round> ForwardOnce(RedisClient& redis, const std::string& consumer, int64_t now_ms, int count);

  // The webhook body of one event entry ({"type": ..., "event_id": ..., fields of the event}), or an error
  // for an entry that is not a known event.
  static StatusOr<std::string> EventBody(const StreamEntry& entry);

 private:
  StatusOr<Round> Forward(RedisClient& redis, const std::vector<StreamEntry>& entries, int64_t now_ms);

  const Config& config_;
  const TaskKeys& keys_;
  std::string stream_;
  bool group_ready_ = false;
};

}  // namespace streamfleet::worker
