#include "queue-worker/housekeeper.h"

#include "queue-worker/queues.h"
#include "streamfleet/base/log.h"
#include "streamfleet/redis/stream_admin.h"

namespace streamfleet::worker {

Housekeeper::Housekeeper(const Config& config, Clock& clock, const TaskLifecycle& lifecycle, Executor& executor,
                         Finisher& finisher, WorkerMetrics& metrics)
    : config_(config),
      clock_(clock),
      lifecycle_(lifecycle),
      executor_(executor),
      finisher_(finisher),
      metrics_(metrics),
      schedules_(config, lifecycle.keys(), metrics.schedules_fired) {
  if (!config.events_webhook_url.empty()) {
    forwarder_ = std::make_unique<EventForwarder>(config, lifecycle_.keys());
    // Every outcome's series from the start at 0: a first sample of N (a worker that starts into a gap of lost
    // events) is no increase to Prometheus, and StreamfleetEventsLost would not fire.
    for (const char* o : {"forwarded", "skipped", "lost"}) metrics_.events_forwarded.Add({{"outcome", o}});
  }
}

StatusOr<int> Housekeeper::Housekeep(RedisClient& redis, Slot& slot) {
  Status scheduled = Schedule(redis, slot.consumer);  // a failed schedule still lets the reclaim run
  auto reclaimed = Reclaim(redis, slot);
  if (reclaimed.ok() && *reclaimed == kAbandoned) return reclaimed;
  if (!scheduled.ok()) return scheduled;  // the first failure
  return reclaimed;
}

Status Housekeeper::Schedule(RedisClient& redis, const std::string& consumer) {
  // One "now" for the round: the Redis server's (docs/task-protocol.md), unless a test's clock overrides it.
  // This host's clock released every delayed task and retry of the fleet early on a worker running ahead, and
  // a SCHEDULES occurrence fired twice under two labels from two workers whose clocks differed.
  int64_t now = clock_.NowMsOverride();
  if (now == 0) {
    auto server = RedisTimeMs(redis);
    if (!server.ok()) return server.status();
    now = *server;
  }
  // Each step is tried even when one before it failed (a Redis Cluster node that is down holds one step's
  // keys, not all of them); the round reports the first failure.
  Status first = Status::Ok();
  auto note = [&first](Status s) {
    if (!s.ok() && first.ok()) first = std::move(s);
  };
  note(MoveDueTasks(redis, lifecycle_.keys(), now, 500, QueueNames(config_)).status());
  note(FirePeriodic(redis, now));
  note(schedules_.FireDue(redis, now));
  note(ForwardEvents(redis, consumer, now));
  // A trim that failed (a queue stream or its group not there yet) is tried again in kTrimIntervalMs; the
  // round goes on: the reclaim of a dead worker's tasks must not wait for it.
  if (Status trimmed = TrimQueues(redis, now); !trimmed.ok()) {
    SF_LOG_WARN("trimming the queue streams failed (tried again in {} s): {}", kTrimIntervalMs / 1000,
                trimmed.ToString());
  }
  return first;
}

Status Housekeeper::TrimQueues(RedisClient& redis, int64_t now_ms) {
  if (now_ms < next_trim_ms_) return Status::Ok();
  next_trim_ms_ = now_ms + kTrimIntervalMs;
  for (const auto& stream : lifecycle_.keys().QueueStreams(QueueNames(config_))) {
    // Only below every entry the group still holds (pending: running, held, or a dead worker's to claim) or
    // has not delivered: a task is gone from its stream once it succeeded, was retried (its next attempt is a
    // new entry) or dead-lettered (the dead letter keeps a copy). No keep window: nothing reads a queue stream
    // outside the group.
    auto trimmed = TrimAcknowledged(redis, stream);
    if (!trimmed.ok()) return trimmed.status();
    metrics_.trimmed.Increment(static_cast<double>(*trimmed));
    auto removed = RemoveDeadConsumers(redis, stream, TaskKeys::Group(), config_.dead_consumer_idle_ms);
    if (!removed.ok()) return removed.status();
  }
  return Status::Ok();
}

Status Housekeeper::FirePeriodic(RedisClient& redis, int64_t now_ms) {
  for (const PeriodicTask& p : config_.periodic_tasks) {
    EnqueueOptions o = EnqueueOptions::FromConfig(config_);
    o.queue = p.queue;
    auto fired = EnqueuePeriodic(redis, lifecycle_.keys(), p.name, p.interval_ms, p.type, o, now_ms);
    if (!fired.ok()) return fired.status();
  }
  return Status::Ok();
}

Status Housekeeper::ForwardEvents(RedisClient& redis, const std::string& consumer, int64_t now_ms) {
  if (!forwarder_) return Status::Ok();
  EventForwarder::Round round;
  Status s = forwarder_->ForwardOnce(redis, consumer, now_ms, 500, round);
  // Also what a round that failed part way did.
  metrics_.events_forwarded.Add({{"outcome", "forwarded"}}).Increment(static_cast<double>(round.forwarded));
  metrics_.events_forwarded.Add({{"outcome", "skipped"}}).Increment(static_cast<double>(round.skipped));
  metrics_.events_forwarded.Add({{"outcome", "lost"}}).Increment(static_cast<double>(round.lost));
  return s;
}

StatusOr<int> Housekeeper::Reclaim(RedisClient& redis, Slot& slot, const std::atomic<bool>* stop) {
  executor_.Watch(slot);
  {
    // Claimed tasks an abandoned predecessor of this thread left waiting: no longer renewed, so a housekeeper
    // claims them again after VISIBILITY_TIMEOUT (with their delivery counted) instead of them being held
    // here for good.
    std::lock_guard<std::mutex> l(slot.watch->mu);
    slot.held.clear();
  }
  Status first_failure = Status::Ok();
  for (const auto& stream : lifecycle_.keys().QueueStreams(QueueNames(config_))) {
    // SIGTERM: claiming on (up to kClaimCount per stream, run one after another here) would start tasks the
    // termination grace cuts off, each then counting one more delivery where it is claimed again.
    if (stop != nullptr && stop->load()) break;
    // XAUTOCLAIM looks at no more than 10 x COUNT pending entries per call: the cursor carries on from where the
    // last round stopped, so a dead worker's tasks behind a live worker's many pending ones are reached too.
    std::string& cursor = claim_cursors_[stream];
    auto claimed = ClaimIdle(redis, stream, TaskKeys::Group(), slot.consumer, config_.visibility_timeout_ms,
                             kClaimCount, &cursor);
    if (!claimed.ok()) {
      // The other streams are still reclaimed (a Redis Cluster shard whose node is down, or one queue's
      // stream replaced by another kind of key, kept a dead worker's tasks in every other queue waiting);
      // the round reports the first failure.
      if (first_failure.ok()) first_failure = claimed.status();
      continue;
    }
    // times_delivered of each task put in slot.held. By id, not by position: the watchdog takes out a held
    // task that yet another housekeeper claimed meanwhile (Watchdog::DropHeld).
    std::map<std::string, int64_t> deliveries;
    for (auto& c : *claimed) {
      metrics_.claimed.Increment();
      if (c.times_delivered > config_.max_deliveries) {
        const std::string* raw = c.entry.Field("e");
        v1::TaskEnvelope task;
        const bool decoded = raw != nullptr && task.ParseFromString(*raw);
        finisher_.DeadLetter(redis, slot, c.entry.stream, c.entry.id, raw ? *raw : "",
                             "delivered " + std::to_string(c.times_delivered) + " times (MAX_DELIVERIES)",
                             c.times_delivered, decoded ? &task : nullptr);
        continue;
      }
      // Held, as a poller's read-ahead is: the watchdog renews the leases of the claimed tasks that wait while
      // an earlier one runs, so no other housekeeper claims (and runs) them meanwhile.
      deliveries[c.entry.id] = c.times_delivered;
      std::lock_guard<std::mutex> l(slot.watch->mu);
      slot.held.push_back(std::move(c.entry));
      slot.watch->LeasesDeliveredNow();
    }
    while (std::optional<StreamEntry> entry = slot.TakeHeld()) {
      SF_LOG_INFO("running task {} taken over from a dead worker", entry->id);
      if (executor_.Execute(redis, *entry, deliveries[entry->id], slot) == kAbandoned) return kAbandoned;
    }
    // A failed flush (its node down) is reported and the other streams go on: acks it could not confirm
    // leave their entries pending, claimed again later, as after any connection error.
    if (Status flushed = lifecycle_.Flush(redis, slot.finished); !flushed.ok() && first_failure.ok()) {
      first_failure = flushed;
    }
  }
  if (!first_failure.ok()) return first_failure;
  return 0;
}

}  // namespace streamfleet::worker
