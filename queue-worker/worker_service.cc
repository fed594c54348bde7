#include "queue-worker/worker_service.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "queue-worker/queues.h"
#include "queue-worker/slot_threads.h"
#include "streamfleet/base/backoff.h"
#include "streamfleet/base/log.h"
#include "streamfleet/redis/stream_admin.h"

namespace streamfleet::worker {

namespace {
// The connection a slot reads and acks on. Its acks and status records are sent without waiting
// (TaskLifecycle), so they ask for no reply either (RedisConfig::quiet_sends): Redis then writes nothing
// for them, which over TLS saves a record per task, about half of what a task costs Redis there.
RedisConfig AckingConnection(RedisConfig c) {
  c.quiet_sends = true;
  return c;
}
}  // namespace

WorkerService::WorkerService(const Config& config, Clock& clock, const HandlerRegistry& handlers,
                             prometheus::Registry& registry)
    : config_(config),
      lifecycle_(TaskLifecycle::FromConfig(config)),
      metrics_(registry),
      // Three heartbeats per visibility timeout: one lost round trip still leaves the lease alive.
      watchdog_(config.redis,
                Watchdog::Options{TaskKeys::Group(), std::max<int64_t>(10, config.visibility_timeout_ms / 3),
                                  config.task_timeout_grace_ms, 5},
                Watchdog::Hooks{[this] { metrics_.lease_extensions.Increment(); }}),
      finisher_(config, clock, handlers, lifecycle_, metrics_),
      executor_(config, handlers, lifecycle_, metrics_, finisher_, watchdog_),
      poller_(config, lifecycle_, executor_, metrics_.redis_health, metrics_.cancelled),
      housekeeper_(config, clock, lifecycle_, executor_, finisher_, metrics_),
      sampler_(config, lifecycle_.keys(), metrics_, watchdog_) {}

double WorkerService::Processed(const std::string& type, const std::string& outcome) {
  return metrics_.processed.Add({{"type", type}, {"outcome", outcome}}).Value();
}

Status WorkerService::Ready() const {
  return metrics_.redis_health.up() ? Status::Ok() : Status::Unavailable("redis unreachable");
}

Status WorkerService::EnsureGroups(RedisClient& redis) {
  for (const auto& stream : lifecycle_.keys().QueueStreams(QueueNames(config_))) {
    SF_RETURN_IF_ERROR(EnsureGroup(redis, stream, TaskKeys::Group()));
  }
  return Status::Ok();
}

Status WorkerService::HousekeepOnce(RedisClient& redis, const std::string& consumer) {
  Slot slot(consumer);
  auto r = housekeeper_.Housekeep(redis, slot);
  return r.ok() ? Status::Ok() : r.status();
}

bool WorkerService::SlotLoop(Slot& slot, std::optional<AbandonedAttempt> orphan, const std::atomic<bool>& stop) {
  // This thread's connections: an abandoned thread keeps its own, so they are never shared with the thread
  // that replaces it.
  auto redis = RedisClient::Lazy(AckingConnection(config_.redis));
  auto handler_redis = RedisClient::Lazy(config_.redis);
  slot.handler_redis = handler_redis.get();
  if (orphan) executor_.FinishOrphan(*redis, slot, *orphan);
  bool groups = false;
  JitteredBackoff backoff;
  // On stop the slot still runs the short tasks it read ahead (graceful drain), then sends its acks.
  while (!stop.load() || slot.HoldsAny()) {
    if (!groups) groups = EnsureGroups(*redis).ok();
    auto r = groups ? poller_.PollBatch(*redis, slot, 500) : StatusOr<int>(Status::Unavailable("no groups"));
    if (r.ok() && *r == kAbandoned) return false;  // this thread was replaced: `this` may be gone
    if (r.ok()) {
      backoff.Reset();
      continue;
    }
    metrics_.redis_health.Report(r.status(), "poll queues");
    if (r.status().code() == StatusCode::kFailedPrecondition) groups = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff.Next()));
  }
  poller_.FlushAndReport(*redis, slot, "ack tasks");
  return true;
}

bool WorkerService::HousekeeperLoop(Slot& slot, std::optional<AbandonedAttempt> orphan,
                                    const std::atomic<bool>& stop) {
  auto redis = RedisClient::Lazy(AckingConnection(config_.redis));
  auto handler_redis = RedisClient::Lazy(config_.redis);
  slot.handler_redis = handler_redis.get();
  if (orphan) {
    executor_.FinishOrphan(*redis, slot, *orphan);
    poller_.FlushAndReport(*redis, slot, "housekeeping");
  }
  while (!stop.load()) {
    auto r = housekeeper_.Reclaim(*redis, slot, &stop);
    if (r.ok() && *r == kAbandoned) return false;
    metrics_.redis_health.Report(r.ok() ? Status::Ok() : r.status(), "housekeeping");
    Nap(stop);
  }
  return true;
}

bool WorkerService::SchedulerLoop(const std::string& consumer, const std::atomic<bool>& stop) {
  auto redis = RedisClient::Lazy(config_.redis);
  std::string failing;  // the last round's error ("" when it succeeded): logged when it changes
  while (!stop.load()) {
    // Not reported to redis_health: the slots and the housekeeping thread report whether Redis answers, and a
    // failure of this round beside their successes (a timeout of one script) would flip readiness each round.
    Status s = housekeeper_.Schedule(*redis, consumer);
    if (!s.ok() && s.ToString() != failing) {
      SF_LOG_WARN("scheduling round failed (due tasks, periodic tasks, schedules, events wait; retried every "
                  "250 ms): {}", s.ToString());
    } else if (s.ok() && !failing.empty()) {
      SF_LOG_INFO("scheduling rounds succeed again");
    }
    failing = s.ok() ? "" : s.ToString();
    Nap(stop);
  }
  return true;
}

void WorkerService::Nap(const std::atomic<bool>& stop) {
  // 250 ms between rounds, cut short by stop.
  for (int i = 0; i < 5 && !stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

void WorkerService::Run(const std::atomic<bool>& stop) {
  SlotThreads threads;
  for (int i = 0; i < config_.worker_concurrency; ++i) {
    // Shared with the slot's threads: a replacement carries on with the slot an abandoned thread left.
    auto slot = std::make_shared<Slot>(config_.consumer_name + "-" + std::to_string(i));
    threads.Start(slot->watch, [this, slot, &stop](std::optional<AbandonedAttempt> orphan) {
      return SlotLoop(*slot, std::move(orphan), stop);
    });
  }
  auto housekeeper = std::make_shared<Slot>(config_.consumer_name + "-housekeeper");
  threads.Start(housekeeper->watch, [this, housekeeper, &stop](std::optional<AbandonedAttempt> orphan) {
    return HousekeeperLoop(*housekeeper, std::move(orphan), stop);
  });
  // Runs no handler, so it is never abandoned. Reads the events group as the housekeeper's consumer, as the
  // single housekeeping thread did, so the events an upgraded worker held are its own again.
  threads.Start(nullptr, [this, consumer = housekeeper->consumer, &stop](std::optional<AbandonedAttempt>) {
    return SchedulerLoop(consumer, stop);
  });
  threads.Wait();  // each slot finishes its running and read-ahead tasks first: graceful drain
}

}  // namespace streamfleet::worker
