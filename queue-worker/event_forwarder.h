#pragma once
// Routes fleet events to a webhook (EVENTS_WEBHOOK_URL): reads the events stream (KeySchema::EventsStream,
// where the compactor XADDs `type` + `e` = serialized v1::Event) as consumer group "webhooks", turns each
// event into a `webhook` task and acks it. The task's unique key is the event's stream id, so an event
// delivered twice (a crash between enqueue and XACK) enqueues one task. The group starts at the stream's
// end ("$"): events from before the first start are not sent. Entries of a dead forwarder are taken over
// after VISIBILITY_TIMEOUT. Undecodable or unknown events are acked, logged and counted as skipped.
// A round reads and forwards batches until the stream is drained or its time budget is spent, each batch's
// enqueues in one pipeline (standard schema) and its acks in one XACK, so one worker keeps up with far more
// events than the fleet makes. The producers bound the stream (MAXLEN ~ 100000): events a stalled forwarder
// had not read by then are gone, and a round that finds such a gap logs it and counts it as lost.
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
    int64_t lost = 0;       // events the stream's trimming removed before this group read them
  };
  // One round: takes over idle entries, then reads batches of up to `count` new events, enqueues and acks,
  // until a batch is short or `budget_ms` has passed. now_ms is the caller's clock for the tasks' enqueue
  // time.
  StatusOr<Round> ForwardOnce(RedisClient& redis, const std::string& consumer, int64_t now_ms, int count,
                              int64_t budget_ms = 200);

  // The webhook body of one event entry ({"type": ..., "event_id": ..., fields of the event}), or an error
  // for an entry that is not a known event.
  static StatusOr<std::string> EventBody(const StreamEntry& entry);

 private:
  // Enqueues the webhook task of each entry that has one and acks the entries whose task is in.
  Status Forward(RedisClient& redis, const std::vector<StreamEntry>& entries, int64_t now_ms, Round& round);
  // The events trimmed before this group read them, not counted before (0 when there is no gap now). Called
  // with `drained` after a round read everything, to take Redis' count of unread events as its baseline.
  StatusOr<int64_t> CountLost(RedisClient& redis, bool drained);

  const Config& config_;
  const TaskKeys& keys_;
  std::string stream_;
  bool group_ready_ = false;
  // What Redis counts as unread when nothing is (its counters may keep counting lost events as unread).
  int64_t unread_drift_ = 0;
};

}  // namespace streamfleet::worker
