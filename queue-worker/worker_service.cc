#include "queue-worker/worker_service.h"

#include <chrono>
#include <limits>
#include <random>
#include <set>
#include <thread>

#include "queue-worker/slot_threads.h"
#include "streamfleet/base/backoff.h"
#include "streamfleet/base/envelope_version.h"
#include "streamfleet/base/log.h"
#include "streamfleet/redis/stream_admin.h"

namespace streamfleet::worker {

namespace {
using Clk = std::chrono::steady_clock;
thread_local std::mt19937_64 rng{std::random_device{}()};
}  // namespace

int64_t BackoffMs(const RetryPolicy& p, int attempt, uint64_t random) {
  int64_t d = p.base_ms;
  // Doubling stops at the cap, and before it could overflow (a TASK_POLICY base near 2^63 ms).
  for (int i = 1; i < attempt && d < p.cap_ms && d <= std::numeric_limits<int64_t>::max() / 2; ++i) d *= 2;
  d = std::min(d, p.cap_ms);
  if (d <= 1) return d;
  return d / 2 + static_cast<int64_t>(random % static_cast<uint64_t>(d / 2 + 1));
}

WorkerService::WorkerService(const Config& config, Clock& clock, const HandlerRegistry& handlers,
                             prometheus::Registry& r)
    : config_(config),
      clock_(clock),
      handlers_(handlers),
      keys_(TaskKeys::FromConfig(config)),
      lifecycle_(TaskLifecycle::FromConfig(config)),
      processed_(prometheus::BuildCounter()
                     .Name("streamfleet_worker_tasks_processed_total")
                     .Help("Tasks run, by type and outcome (succeeded, retried, dead_lettered)")
                     .Register(r)),
      duration_(prometheus::BuildHistogram()
                    .Name("streamfleet_worker_task_duration_seconds")
                    .Help("Task handler run time, by type")
                    .Register(r)),
      wait_(prometheus::BuildHistogram()
                .Name("streamfleet_worker_task_wait_seconds")
                .Help("Time from enqueue (or the due time of a delayed task) to the start of its first attempt, by queue")
                .Register(r)),
      retries_(prometheus::BuildCounter()
                   .Name("streamfleet_worker_retries_total")
                   .Help("Task retries scheduled")
                   .Register(r)
                   .Add({})),
      dead_lettered_(prometheus::BuildCounter()
                         .Name("streamfleet_worker_dead_lettered_total")
                         .Help("Tasks sent to the dead-letter stream")
                         .Register(r)
                         .Add({})),
      claimed_(prometheus::BuildCounter()
                   .Name("streamfleet_worker_claimed_total")
                   .Help("Tasks taken over from dead workers")
                   .Register(r)
                   .Add({})),
      busy_(prometheus::BuildGauge()
                .Name("streamfleet_worker_busy")
                .Help("Worker slots running a task now")
                .Register(r)
                .Add({})),
      scheduled_(prometheus::BuildGauge()
                     .Name("streamfleet_worker_scheduled_tasks")
                     .Help("Delayed tasks and retries waiting in Redis")
                     .Register(r)
                     .Add({})),
      stream_gauges_(r),
      redis_health_(r, Dependency::kRedis),
      timeouts_total_(prometheus::BuildCounter()
                          .Name("streamfleet_worker_task_timeouts_total")
                          .Help("Task attempts that ran past their timeout (TASK_TIMEOUT, TASK_TIMEOUTS), by type")
                          .Register(r)),
      lease_extensions_(prometheus::BuildCounter()
                            .Name("streamfleet_worker_lease_extensions_total")
                            .Help("Heartbeats that kept a running task from being claimed by another worker")
                            .Register(r)
                            .Add({})),
      abandoned_(prometheus::BuildGauge()
                     .Name("streamfleet_worker_abandoned_handlers")
                     .Help("Handler threads still running after their timeout and grace (they ignored cancellation)")
                     .Register(r)
                     .Add({})),
      events_forwarded_(prometheus::BuildCounter()
                            .Name("streamfleet_worker_events_forwarded_total")
                            .Help("Fleet events turned into webhook tasks (forwarded) or acked without one (skipped)")
                            .Register(r)),
      oldest_waiting_(prometheus::BuildGauge()
                          .Name("streamfleet_worker_oldest_waiting_task_seconds")
                          .Help("Age of the oldest task of a queue not yet given to a worker (0 when none waits)")
                          .Register(r)),
      sample_(RedisClient::Lazy(config.redis)),
      shared_config_(std::make_shared<const Config>(config)),
      // Three heartbeats per visibility timeout: one lost round trip still leaves the lease alive.
      watchdog_(config.redis,
                Watchdog::Options{TaskKeys::Group(), std::max<int64_t>(10, config.visibility_timeout_ms / 3),
                                  config.task_timeout_grace_ms, 5},
                Watchdog::Hooks{[this] { lease_extensions_.Increment(); }}) {
  if (!config.events_webhook_url.empty()) forwarder_ = std::make_unique<EventForwarder>(config, keys_);
}

int64_t WorkerService::NowMs() {
  int64_t o = clock_.NowMsOverride();
  return o > 0 ? o : WallClockMs();
}

double WorkerService::Processed(const std::string& type, const std::string& outcome) {
  return processed_.Add({{"type", type}, {"outcome", outcome}}).Value();
}

Status WorkerService::Ready() const {
  return redis_health_.up() ? Status::Ok() : Status::Unavailable("redis unreachable");
}

Status WorkerService::EnsureGroups(RedisClient& redis) {
  for (const auto& stream : keys_.QueueStreams(QueueNames())) {
    SF_RETURN_IF_ERROR(EnsureGroup(redis, stream, TaskKeys::Group()));
  }
  return Status::Ok();
}

std::vector<std::string> WorkerService::QueueNames() const {
  std::vector<std::string> names;
  for (const auto& [q, w] : config_.queues) names.push_back(q);
  return names;
}

std::vector<std::string> WorkerService::WeightedOrder() {
  // Weighted sampling without replacement: critical (6) comes first most often, low (1) still gets turns.
  std::vector<std::pair<std::string, int>> left = config_.queues;
  std::vector<std::string> order;
  while (!left.empty()) {
    int total = 0;
    for (auto& [q, w] : left) total += w;
    int pick = static_cast<int>(rng() % static_cast<uint64_t>(total));
    for (size_t i = 0; i < left.size(); ++i) {
      pick -= left[i].second;
      if (pick < 0) {
        order.push_back(left[i].first);
        left.erase(left.begin() + static_cast<long>(i));
        break;
      }
    }
  }
  return order;
}

StatusOr<int> WorkerService::PollOnce(RedisClient& redis, const std::string& consumer, int block_ms) {
  Slot slot(consumer);
  auto ran = PollBatch(redis, slot, block_ms);
  // A cluster-mode read may hold more tasks than the slot's prefetch (ReadNextTasks): this slot dies with
  // the call, so it runs them all rather than leave them pending until another worker claims them.
  while (ran.ok() && *ran > 0 && !slot.held.empty()) {
    auto more = PollBatch(redis, slot, block_ms);
    if (!more.ok()) {
      ran = more;
      break;
    }
    *ran += *more;
  }
  Status flushed = FlushSlot(redis, slot);
  if (!ran.ok()) return ran;
  if (!flushed.ok()) return flushed;
  return ran;
}

void WorkerService::FlushAndReport(RedisClient& redis, Slot& slot, const char* what) {
  // Only a flush that talked to Redis says something about it: an empty one succeeds without a round trip,
  // and reporting that as "reachable again" logged a recovery at shutdown while Redis was down all along.
  bool owed = !slot.finished.empty();
  Status s = FlushSlot(redis, slot);
  if (owed) redis_health_.Report(s, what);
}

Status WorkerService::FlushSlot(RedisClient& redis, Slot& slot) { return lifecycle_.Flush(redis, slot.finished); }

void WorkerService::EnsureWatched(Slot& slot) {
  if (slot.config) return;
  slot.config = shared_config_;
  watchdog_.Watch(slot.watch);
}

RedisClient& WorkerService::HandlerRedis(Slot& slot) {
  if (slot.handler_redis == nullptr) {
    std::lock_guard<std::mutex> l(spares_mu_);
    auto& c = spares_[slot.consumer];
    if (!c) c = RedisClient::Lazy(config_.redis);
    slot.handler_redis = c.get();
  }
  return *slot.handler_redis;
}

Slot::TypeStats& WorkerService::TypeFor(Slot& slot, const std::string& type) {
  auto it = slot.types.find(type);
  if (it != slot.types.end()) return it->second;
  Slot::TypeStats& t = slot.types[type];
  if (const Handler* h = handlers_.Find(type)) {
    t.handler = std::make_shared<const Handler>(*h);
    auto timeout = config_.task_timeouts.find(type);
    t.timeout_ms = timeout == config_.task_timeouts.end() ? config_.task_timeout_ms : timeout->second;
    t.duration = &duration_.Add({{"type", type}}, prometheus::Histogram::BucketBoundaries{
                                                      0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120});
    t.succeeded = &processed_.Add({{"type", type}, {"outcome", "succeeded"}});
  }
  return t;
}

StatusOr<int> WorkerService::PollBatch(RedisClient& redis, Slot& slot, int block_ms) {
  if (slot.held.empty()) {
    // Before the acks below: a result is never behind its ack.
    SF_RETURN_IF_ERROR(lifecycle_.SendRecords(redis, slot.finished));
    // The owed acks, the pause check and non-blocking reads of every open queue, in weighted order, in one
    // round trip.
    auto next = ReadNextTasks(redis, keys_, TaskKeys::Group(), slot.consumer, WeightedOrder(), slot.prefetch,
                              slot.finished.acks);
    redis_health_.Report(next.status(), "poll queues");
    if (!next.ok()) return next.status();
    slot.finished.acks.clear();
    std::vector<StreamEntry> entries = std::move(next->entries);
    if (entries.empty()) {
      if (next->open_queues.empty()) {  // every queue paused
        // Not the whole BLOCK time: a resumed queue is served within kPausedPollMs (one cheap script call
        // per slot per period while paused).
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(block_ms, kPausedPollMs)));
        return 0;
      }
      if (keys_.cluster()) {
        // No blocking XREADGROUP over several streams in a cluster (they live on different masters).
        IdleWait(slot, block_ms);
        return 0;
      }
      std::vector<std::string> cmd = {"XREADGROUP", "GROUP", TaskKeys::Group(), slot.consumer, "COUNT",
                                      std::to_string(slot.prefetch), "BLOCK", std::to_string(block_ms), "STREAMS"};
      for (const auto& q : next->open_queues) cmd.push_back(keys_.Queue(q));
      for (size_t i = 0; i < next->open_queues.size(); ++i) cmd.push_back(">");
      auto r = redis.Command(cmd, block_ms);
      if (!r.ok()) return r.status();
      entries = ParseStreamReply(*r);
      if (entries.empty()) return 0;
    }
    slot.idle_ms = 0;
    EnsureWatched(slot);
    std::lock_guard<std::mutex> l(slot.watch->mu);
    slot.held.assign(std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end()));
    slot.watch->leases_fresh_at = WatchClock::now();  // delivery reset their idle time
    slot.batch_fast = true;
  }
  StreamEntry entry;
  {
    std::lock_guard<std::mutex> l(slot.watch->mu);
    entry = std::move(slot.held.front());
    slot.held.pop_front();
  }
  if (Execute(redis, entry, 1, slot) == kAbandoned) return kAbandoned;
  if (!slot.batch_fast && !slot.held.empty()) {
    // A slow batch: ack now. A finished task's lease is no longer renewed, so an ack owed until the tasks
    // held behind it ran could let another worker take it over and run it again.
    Status flushed = FlushSlot(redis, slot);
    redis_health_.Report(flushed, "ack tasks");
    if (!flushed.ok()) return flushed;
  }
  if (slot.held.empty()) {
    slot.prefetch = slot.batch_fast ? std::min(slot.prefetch * 2, std::max(1, config_.worker_prefetch)) : 1;
  }
  return 1;
}

prometheus::Counter& WorkerService::ProcessedChild(Slot& slot, const std::string& type, const std::string& outcome) {
  prometheus::Counter*& c = slot.processed[type + '\n' + outcome];
  if (c == nullptr) c = &processed_.Add({{"type", type}, {"outcome", outcome}});
  return *c;
}

namespace {

// No exception leaves a handler: it is the attempt's error.
Status RunHandler(const Handler& handler, TaskContext& ctx) {
  try {
    return handler(ctx);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("handler threw: ") + e.what());
  } catch (...) {
    return Status::Internal("handler threw a non-exception");
  }
}

}  // namespace

int WorkerService::Execute(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot) {
  EnsureWatched(slot);
  const std::string* raw = entry.Field("e");
  // Reused by this thread from task to task (its strings keep their capacity). Per thread, not per slot: an
  // abandoned thread's handler may still read its envelope while the slot's next thread decodes the next one.
  thread_local v1::TaskEnvelope task;
  task.Clear();
  if (raw == nullptr || !task.ParseFromString(*raw)) {
    LogScope entry_scope(LogContext().Entry(entry.id));
    SF_LOG_WARN("dead-lettering undecodable task {} {}", entry.stream, entry.id);
    // No status record to update: a failed parse leaves no id that can be trusted.
    DeadLetter(redis, entry.stream, entry.id, raw ? *raw : "", "undecodable TaskEnvelope", times_delivered, nullptr);
    return 0;
  }
  // Every line logged while this task runs (ours and its handler's) carries its entry and task id.
  LogScope scope(LogContext().Entry(entry.id).Task(task.id()));
  if (std::string v = UnknownVersionReason("TaskEnvelope", task.version(), kTaskEnvelopeVersion); !v.empty()) {
    SF_LOG_WARN("dead-lettering task {} {}: {}", entry.stream, entry.id, v);
    if (DeadLetter(redis, entry.stream, entry.id, *raw, v, times_delivered, &task)) {
      processed_.Add({{"type", "unknown"}, {"outcome", "dead_lettered"}}).Increment();
    }
    return 0;
  }
  if (task.queue().empty()) task.set_queue(keys_.QueueOf(entry.stream));
  if (task.attempt() == 0 && times_delivered == 1) {
    // Queue latency (Sidekiq's "latency"): what users feel when workers are too few. Wall clocks of the
    // enqueuer and this host; a skew below zero counts as zero.
    int64_t since = std::max(task.enqueued_at_ms(), task.run_at_ms());
    double waited = since > 0 ? std::max<double>(0, static_cast<double>(WallClockMs() - since) / 1000.0) : 0;
    prometheus::Histogram*& h = slot.waits[task.queue()];
    if (h == nullptr) {
      h = &wait_.Add({{"queue", task.queue()}}, prometheus::Histogram::BucketBoundaries{
                                                     0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                     5, 30, 300});
    }
    h->Observe(waited);
  }
  Slot::TypeStats& type = TypeFor(slot, task.type());
  if (type.handler == nullptr) {
    SF_LOG_WARN("dead-lettering task {}: unknown type \"{}\"", task.id(), task.type());
    if (DeadLetter(redis, entry.stream, entry.id, *raw, "unknown task type \"" + task.type() + "\"",
                   times_delivered, &task)) {
      ProcessedChild(slot, "unknown", "dead_lettered").Increment();
    }
    return 0;
  }
  // The attempt count comes from the envelope: a hand-made one could say INT32_MAX (or less than zero), and
  // attempt + 1 below must not overflow. Such a task has no attempts left anyway.
  if (task.attempt() < 0 || task.attempt() == std::numeric_limits<int32_t>::max()) task.set_attempt(1 << 30);
  // Who runs it (the consumer name, as XPENDING and the admin show it) and from which stream entry.
  lifecycle_.Running(redis, task.id(), slot.consumer, entry.id);
  RunningAttempt a;
  a.entry = &entry;
  a.task = &task;
  a.times_delivered = times_delivered;
  a.timeout_ms = type.timeout_ms;
  a.started = WatchClock::now();
  if (a.timeout_ms > 0) a.deadline = a.started + std::chrono::milliseconds(a.timeout_ms);
  {
    std::lock_guard<std::mutex> l(slot.watch->mu);
    slot.watch->running = &a;
    ++slot.watch->attempts;
  }
  // What the handler uses stays valid even if this thread is abandoned and outlives the service: the handler
  // copy and the configuration belong to the slot, which this thread's owner keeps alive.
  const Handler& handler = *type.handler;
  TaskContext ctx{task, HandlerRedis(slot), *slot.config, ""};
  ctx.cancelled = &a.cancelled;
  ctx.deadline = a.deadline;
  Status s = RunHandler(handler, ctx);
  const auto ended = WatchClock::now();
  AttemptEnd end{entry.stream, entry.id, task};
  {
    std::lock_guard<std::mutex> l(slot.watch->mu);
    if (a.abandoned) {
      // The slot, its task and its leases belong to the replacement thread now: touch nothing.
      Watchdog::AbandonedThreadEnded();
      return kAbandoned;
    }
    slot.watch->running = nullptr;
    // A handler that returns after its deadline timed out, even if the watchdog has not looked yet.
    end.timed_out = a.timed_out || ended >= a.deadline;
    end.lease_lost = a.lease_lost;
  }
  end.times_delivered = times_delivered;
  end.timeout_ms = a.timeout_ms;
  end.took = ended - a.started;
  end.status = std::move(s);
  end.result = std::move(ctx.result);
  Finish(redis, slot, std::move(end));
  return 0;
}

void WorkerService::FinishOrphan(RedisClient& redis, Slot& slot, const AbandonedAttempt& o) {
  LogScope scope(LogContext().Entry(o.id).Task(o.task.id()));
  AttemptEnd end{o.stream, o.id, o.task};
  end.times_delivered = o.times_delivered;
  end.timeout_ms = o.timeout_ms;
  end.took = o.abandoned_at - o.started;
  end.status = Status::DeadlineExceeded("timeout: still running " + std::to_string(o.grace_ms) +
                                        "ms after it was cancelled; handler abandoned");
  end.timed_out = o.timed_out;
  end.lease_lost = o.lease_lost;
  end.abandoned = true;
  Finish(redis, slot, std::move(end));
}

void WorkerService::Finish(RedisClient& redis, Slot& slot, AttemptEnd&& end) {
  const v1::TaskEnvelope& task = end.task;
  if (end.took > std::chrono::milliseconds(kShortTaskMs)) slot.batch_fast = false;
  Slot::TypeStats& type = TypeFor(slot, task.type());
  type.duration->Observe(std::chrono::duration<double>(end.took).count());
  if (end.lease_lost) {
    SF_LOG_WARN("task {} ({}) was taken over by another worker while running here; leaving it to that worker",
                task.id(), task.type());
    ProcessedChild(slot, task.type(), "lease_lost").Increment();
    return;
  }
  if (end.timed_out) {
    SF_LOG_WARN("task {} ({}) timed out after {}ms{}", task.id(), task.type(), end.timeout_ms,
                end.abandoned ? "; its handler ignored cancellation and was abandoned" : "");
    timeouts_total_.Add({{"type", task.type()}}).Increment();
    // A result that came too late is not trusted to be complete (handlers are idempotent: it runs again).
    if (!end.abandoned) {
      end.status = Status::DeadlineExceeded("timeout: ran longer than " + std::to_string(end.timeout_ms) + "ms");
    }
  }
  const Status& s = end.status;
  if (s.ok()) {
    // Written with the ack, before it (FlushSlot): the batch's result costs no round trip of its own.
    lifecycle_.Succeeded(slot.finished, end.stream, end.id, task.id(), std::move(end.result),
                         int64_t{task.attempt()} + 1);
    type.succeeded->Increment();
    return;
  }
  RetryPolicy policy = handlers_.Policy(task.type(), config_);
  v1::TaskEnvelope next = task;
  next.set_attempt(task.attempt() + 1);
  next.add_errors("attempt " + std::to_string(task.attempt() + 1) + ": " + s.ToString());
  // Invalid input will not get better by retrying: dead-letter at once.
  bool permanent = s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kFailedPrecondition;
  if (permanent || next.attempt() >= policy.max_attempts) {
    std::string reason = (permanent ? "permanent error: " : "failed after " + std::to_string(next.attempt()) +
                                                                " attempts: ") + s.ToString();
    SF_LOG_WARN("dead-lettering task {} ({}): {}", task.id(), task.type(), reason);
    if (DeadLetter(redis, end.stream, end.id, next.SerializeAsString(), reason, end.times_delivered, &next)) {
      ProcessedChild(slot, task.type(), "dead_lettered").Increment();
    }
    return;
  }
  int64_t run_at = NowMs() + BackoffMs(policy, next.attempt(), rng());
  next.set_run_at_ms(run_at);
  if (lifecycle_.Retry(redis, end.stream, end.id, next, run_at, s.ToString()).ok()) {
    retries_.Increment();
    ProcessedChild(slot, task.type(), "retried").Increment();
  }
}

bool WorkerService::DeadLetter(RedisClient& redis, const std::string& stream, const std::string& entry_id,
                               const std::string& raw, const std::string& reason, int64_t times_delivered,
                               const v1::TaskEnvelope* task) {
  if (!lifecycle_.DeadLetter(redis, stream, entry_id, raw, reason, times_delivered, task).ok()) return false;
  dead_lettered_.Increment();
  return true;
}

Status WorkerService::HousekeepOnce(RedisClient& redis, const std::string& consumer) {
  Slot slot(consumer);
  auto r = Housekeep(redis, slot);
  return r.ok() ? Status::Ok() : r.status();
}

StatusOr<int> WorkerService::Housekeep(RedisClient& redis, Slot& slot) {
  const std::string& consumer = slot.consumer;
  auto moved = MoveDueTasks(redis, keys_, NowMs(), 500, QueueNames());
  if (!moved.ok()) return moved.status();
  int64_t now = NowMs();
  for (const auto& p : config_.periodic_tasks) {
    int64_t period = now / p.interval_ms;
    // SET NX on the period's key: exactly one process of the fleet fires it.
    auto r = redis.Command({"SET", keys_.Periodic(p.name, period), consumer, "NX", "PX",
                            std::to_string(p.interval_ms * 2 + 1000)});
    if (!r.ok()) return r.status();
    if (r->is_nil()) continue;
    EnqueueOptions o = EnqueueOptions::FromConfig(config_);
    o.queue = p.queue;
    auto e = EnqueueTask(redis, keys_, p.type, "{}", o, now);
    if (!e.ok()) return e.status();
  }
  if (forwarder_) {
    auto round = forwarder_->ForwardOnce(redis, consumer, now, 100);
    if (!round.ok()) return round.status();
    events_forwarded_.Add({{"outcome", "forwarded"}}).Increment(static_cast<double>(round->forwarded));
    events_forwarded_.Add({{"outcome", "skipped"}}).Increment(static_cast<double>(round->skipped));
  }
  EnsureWatched(slot);
  for (const auto& stream : keys_.QueueStreams(QueueNames())) {
    auto claimed = ClaimIdle(redis, stream, TaskKeys::Group(), consumer, config_.visibility_timeout_ms, 10);
    if (!claimed.ok()) return claimed.status();
    for (auto& c : *claimed) {
      claimed_.Increment();
      if (c.times_delivered > config_.max_deliveries) {
        const std::string* raw = c.entry.Field("e");
        v1::TaskEnvelope task;
        const bool decoded = raw != nullptr && task.ParseFromString(*raw);
        DeadLetter(redis, c.entry.stream, c.entry.id, raw ? *raw : "",
                   "delivered " + std::to_string(c.times_delivered) + " times (MAX_DELIVERIES)", c.times_delivered,
                   decoded ? &task : nullptr);
        continue;
      }
      SF_LOG_INFO("running task {} taken over from a dead worker", c.entry.id);
      {
        // Claiming reset its idle time; the watchdog renews it from here (the claimed tasks behind it wait
        // unrenewed: if they wait longer than the visibility timeout, a housekeeper claims them again).
        std::lock_guard<std::mutex> l(slot.watch->mu);
        slot.watch->leases_fresh_at = WatchClock::now();
      }
      if (Execute(redis, c.entry, c.times_delivered, slot) == kAbandoned) return kAbandoned;
      SF_RETURN_IF_ERROR(FlushSlot(redis, slot));
    }
  }
  return 0;
}

bool WorkerService::SlotLoop(Slot& slot, std::optional<AbandonedAttempt> orphan, const std::atomic<bool>& stop) {
  // This thread's connections: an abandoned thread keeps its own, so they are never shared with the thread
  // that replaces it.
  auto redis = RedisClient::Lazy(config_.redis);
  auto handler_redis = RedisClient::Lazy(config_.redis);
  slot.handler_redis = handler_redis.get();
  if (orphan) FinishOrphan(*redis, slot, *orphan);
  bool groups = false;
  JitteredBackoff backoff;
  // On stop the slot still runs the short tasks it read ahead (graceful drain), then sends its acks.
  while (!stop.load() || !slot.held.empty()) {
    if (!groups) groups = EnsureGroups(*redis).ok();
    auto r = groups ? PollBatch(*redis, slot, 500) : StatusOr<int>(Status::Unavailable("no groups"));
    if (r.ok() && *r == kAbandoned) return false;  // this thread was replaced: `this` may be gone
    if (r.ok()) {
      backoff.Reset();
      continue;
    }
    redis_health_.Report(r.status(), "poll queues");
    if (r.status().code() == StatusCode::kFailedPrecondition) groups = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff.Next()));
  }
  FlushAndReport(*redis, slot, "ack tasks");
  return true;
}

bool WorkerService::HousekeeperLoop(Slot& slot, std::optional<AbandonedAttempt> orphan,
                                    const std::atomic<bool>& stop) {
  auto redis = RedisClient::Lazy(config_.redis);
  auto handler_redis = RedisClient::Lazy(config_.redis);
  slot.handler_redis = handler_redis.get();
  if (orphan) {
    FinishOrphan(*redis, slot, *orphan);
    FlushAndReport(*redis, slot, "housekeeping");
  }
  while (!stop.load()) {
    auto r = Housekeep(*redis, slot);
    if (r.ok() && *r == kAbandoned) return false;
    redis_health_.Report(r.ok() ? Status::Ok() : r.status(), "housekeeping");
    for (int i = 0; i < 5 && !stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
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
  threads.Wait();  // each slot finishes its running and read-ahead tasks first: graceful drain
}

void WorkerService::IdleWait(Slot& slot, int block_ms) {
  // Polling instead of blocking: 1 ms doubling up to the BLOCK time (at most 50 ms), so an idle slot costs
  // Redis little and a busy one never sleeps (the compactor's IdlePoll on the chunk path).
  slot.idle_ms = std::min<int64_t>({slot.idle_ms == 0 ? 1 : slot.idle_ms * 2, std::max(1, block_ms), 50});
  std::this_thread::sleep_for(std::chrono::milliseconds(slot.idle_ms));
}

void WorkerService::SampleGauges() {
  std::lock_guard<std::mutex> l(sample_mu_);
  abandoned_.Set(static_cast<double>(Watchdog::AbandonedNow()));
  // Counted when scraped, not kept per task: two updates of one shared atomic per task, from every slot
  // thread, cost more than a no-op task's own work.
  int busy = 0;
  for (const auto& slot : watchdog_.Slots()) {
    std::lock_guard<std::mutex> l(slot->mu);
    busy += slot->running != nullptr;
  }
  busy_.Set(busy);
  std::vector<std::vector<std::string>> zcards;
  for (const auto& z : keys_.AllScheduled(QueueNames())) zcards.push_back({"ZCARD", z});
  auto z = sample_->Pipeline(zcards);
  if (z.ok()) {
    double n = 0;
    for (const RedisValue& v : *z) n += v.is_error() ? 0 : static_cast<double>(v.integer);
    scheduled_.Set(n);
  }
  std::vector<std::string> streams = keys_.QueueStreams(QueueNames());
  for (const auto& d : keys_.AllDeadLetters(QueueNames())) streams.push_back(d);
  stream_gauges_.Sample(*sample_, streams);
  for (const auto& [q, w] : config_.queues) {
    // A queue waits as long as its oldest shard.
    double oldest = 0;
    bool any = false;
    for (const auto& stream : keys_.QueueShards(q)) {
      auto age = OldestWaitingSeconds(*sample_, stream);
      if (!age.ok()) continue;
      oldest = std::max(oldest, *age);
      any = true;
    }
    if (any) oldest_waiting_.Add({{"queue", q}}).Set(oldest);
  }
}

StatusOr<double> WorkerService::OldestWaitingSeconds(RedisClient& redis, const std::string& stream) {
  auto st = GetStreamStats(redis, stream);
  if (!st.ok()) return st.status();
  std::string after = "0-0";
  for (const auto& g : st->groups) {
    if (g.name == TaskKeys::Group()) after = g.last_delivered_id;
  }
  // The first entry the group has not been given yet: its id is its enqueue time (Redis server clock).
  auto r = redis.Command({"XRANGE", stream, "(" + after, "+", "COUNT", "1"});
  if (!r.ok()) return r.status();
  auto e = ParseEntries(stream, *r);
  if (e.empty()) return 0.0;
  return std::max<double>(0, static_cast<double>(WallClockMs() - StreamIdMs(e[0].id)) / 1000.0);
}

}  // namespace streamfleet::worker
