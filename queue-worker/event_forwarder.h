#pragma once
// Routes fleet events to a webhook (EVENTS_WEBHOOK_URL): reads the events stream (KeySchema::EventsStream,
// where the compactor XADDs `type` + `e` = serialized v1::Event) as consumer group "webhooks", turns each
// event into a `webhook` task and acks it. The task's unique key is the event's stream id, so an event
// delivered twice (a crash between enqueue and XACK) enqueues one task. The group starts at the stream's
// end ("$"): events from before the first start are not sent. Entries of a dead forwarder are taken over
// after VISIBILITY_TIMEOUT. Undecodable or unknown events are acked, logged and counted as skipped.
// A round reads and forwards batches until the stream is drained or its time budget is spent, each batch's
// enqueues in one pipeline (standard schema) and its acks in one XACK, so one worker keeps up with far more
// events than the fleet makes. The producers bound the stream (MAXLEN ~ EVENTS_MAXLEN): events a stalled forwarder
// had not read by then are gone, and the first round that finds such a gap, on any worker, logs and counts
// them as lost (once fleet-wide).
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
    // Counted when this forwarder's XACK takes them out of the pending list (a failed ack: when redelivered).
    int64_t forwarded = 0;  // events whose webhook task is enqueued (or already was: duplicates), acked
    int64_t skipped = 0;    // undecodable / unknown events, acked without a task
    int64_t lost = 0;       // events the stream's trimming removed before this group read them
  };
  // One round: counts the events trimmed before the group read them (logged), takes over idle entries, then
  // reads batches of up to `count` new events, enqueues and acks, until a batch is short or `budget_ms` has
  // passed. Adds what it did to `round` as it goes, so a round that fails part way still reports it. now_ms
  // is the caller's clock for the tasks' enqueue time.
  Status ForwardOnce(RedisClient& redis, const std::string& consumer, int64_t now_ms, int count, Round& round,
                     int64_t budget_ms = 200);

  // The webhook body of one event entry ({"type": ..., "event_id": ..., fields of the event}), or an error
  // for an entry that is not a known event.
  static StatusOr<std::string> EventBody(const StreamEntry& entry);

 private:
  // Counts (and logs) into round.lost the events trimmed before the group read them (once fleet-wide).
  Status CountTrimmedUnread(RedisClient& redis, Round& round);
  // Enqueues the webhook task of each entry that has one and acks the entries whose task is in.
  Status Forward(RedisClient& redis, const std::vector<StreamEntry>& entries, int64_t now_ms, Round& round);

  const Config& config_;
  const TaskKeys keys_;  // a copy: the forwarder does not rely on its creator's keys outliving it
  std::string stream_;
  bool group_ready_ = false;
};

}  // namespace streamfleet::worker
