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
  if (!config.events_webhook_url.empty()) forwarder_ = std::make_unique<EventForwarder>(config, lifecycle_.keys());
}

StatusOr<int> Housekeeper::Housekeep(RedisClient& redis, Slot& slot) {
  auto moved = MoveDueTasks(redis, lifecycle_.keys(), clock_.NowMs(), 500, QueueNames(config_));
  if (!moved.ok()) return moved.status();
  const int64_t now = clock_.NowMs();
  SF_RETURN_IF_ERROR(FirePeriodic(redis, slot.consumer, now));
  SF_RETURN_IF_ERROR(schedules_.FireDue(redis, now));
  SF_RETURN_IF_ERROR(ForwardEvents(redis, slot.consumer, now));
  return Reclaim(redis, slot);
}

Status Housekeeper::FirePeriodic(RedisClient& redis, const std::string& consumer, int64_t now_ms) {
  for (const PeriodicTask& p : config_.periodic_tasks) {
    const int64_t period = now_ms / p.interval_ms;
    // The key outlives its period (2 intervals + 1 s) so a worker whose clock is a little behind cannot fire
    // the same period again.
    auto r = redis.Command({"SET", lifecycle_.keys().Periodic(p.name, period), consumer, "NX", "PX",
                            std::to_string(p.interval_ms * 2 + 1000)});
    if (!r.ok()) return r.status();
    if (r->is_nil()) continue;
    EnqueueOptions o = EnqueueOptions::FromConfig(config_);
    o.queue = p.queue;
    auto e = EnqueueTask(redis, lifecycle_.keys(), p.type, "{}", o, now_ms);
    if (!e.ok()) return e.status();
  }
  return Status::Ok();
}

Status Housekeeper::ForwardEvents(RedisClient& redis, const std::string& consumer, int64_t now_ms) {
  if (!forwarder_) return Status::Ok();
  auto round = forwarder_->ForwardOnce(redis, consumer, now_ms, 100);
  if (!round.ok()) return round.status();
  metrics_.events_forwarded.Add({{"outcome", "forwarded"}}).Increment(static_cast<double>(round->forwarded));
  metrics_.events_forwarded.Add({{"outcome", "skipped"}}).Increment(static_cast<double>(round->skipped));
  return Status::Ok();
}

StatusOr<int> Housekeeper::Reclaim(RedisClient& redis, Slot& slot) {
  executor_.Watch(slot);
  for (const auto& stream : lifecycle_.keys().QueueStreams(QueueNames(config_))) {
    auto claimed = ClaimIdle(redis, stream, TaskKeys::Group(), slot.consumer, config_.visibility_timeout_ms, 10);
    if (!claimed.ok()) return claimed.status();
    for (auto& c : *claimed) {
      metrics_.claimed.Increment();
      if (c.times_delivered > config_.max_deliveries) {
        const std::string* raw = c.entry.Field("e");
        v1::TaskEnvelope task;
        const bool decoded = raw != nullptr && task.ParseFromString(*raw);
        finisher_.DeadLetter(redis, c.entry.stream, c.entry.id, raw ? *raw : "",
                             "delivered " + std::to_string(c.times_delivered) + " times (MAX_DELIVERIES)",
                             c.times_delivered, decoded ? &task : nullptr);
        continue;
      }
      SF_LOG_INFO("running task {} taken over from a dead worker", c.entry.id);
      {
        // Claiming reset its idle time; the watchdog renews it from here (the claimed tasks behind it wait
        // unrenewed: if they wait longer than the visibility timeout, a housekeeper claims them again).
        std::lock_guard<std::mutex> l(slot.watch->mu);
        slot.watch->leases_fresh_at = WatchClock::now();
      }
      if (executor_.Execute(redis, c.entry, c.times_delivered, slot) == kAbandoned) return kAbandoned;
      SF_RETURN_IF_ERROR(lifecycle_.Flush(redis, slot.finished));
    }
  }
  return 0;
}

}  // namespace streamfleet::worker
