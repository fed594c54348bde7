#include "queue-worker/worker_service.h"

#include <chrono>
#include <limits>
#include <random>
#include <set>
#include <thread>

#include "streamfleet/common/backoff.h"
#include "streamfleet/common/envelope_version.h"
#include "streamfleet/common/log.h"
#include "streamfleet/common/stream_admin.h"

namespace streamfleet::worker {

namespace {
using Clk = std::chrono::steady_clock;
thread_local std::mt19937_64 rng{std::random_device{}()};
}  // namespace

StatusOr<std::vector<PeriodicTask>> ParsePeriodic(const std::string& spec) {
  std::vector<PeriodicTask> out;
  for (const std::string& item : SplitList(spec, ',')) {
    auto eq = item.find('=');
    auto at = item.find('@', eq == std::string::npos ? 0 : eq);
    if (eq == std::string::npos || at == std::string::npos || eq == 0 || at == eq + 1) {
      return Status::InvalidArgument("PERIODIC_TASKS item \"" + item + "\": expected name=type@interval[@queue]");
    }
    PeriodicTask p;
    p.name = item.substr(0, eq);
    p.type = item.substr(eq + 1, at - eq - 1);
    std::string rest = item.substr(at + 1);
    auto at2 = rest.find('@');
    if (at2 != std::string::npos) {
      p.queue = rest.substr(at2 + 1);
      rest = rest.substr(0, at2);
    }
    auto d = ParseDurationMs(rest, 1000);
    if (!d.ok() || *d <= 0 || !ValidQueueName(p.queue)) {
      return Status::InvalidArgument("PERIODIC_TASKS item \"" + item + "\": bad interval or queue");
    }
    p.interval_ms = *d;
    out.push_back(p);
  }
  return out;
}

StatusOr<std::map<std::string, int64_t>> ParseTimeouts(const std::string& spec) {
  std::map<std::string, int64_t> out;
  for (const std::string& item : SplitList(spec, ',')) {
    auto eq = item.find('=');
    auto d = eq == std::string::npos ? StatusOr<int64_t>(Status::InvalidArgument(""))
                                     : ParseDurationMs(item.substr(eq + 1), 1000);
    if (eq == 0 || !d.ok() || *d < 0) {
      return Status::InvalidArgument("TASK_TIMEOUTS item \"" + item + "\": expected type=duration (0 = none)");
    }
    out[item.substr(0, eq)] = *d;
  }
  return out;
}

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
      keys_(config.stream_prefix),
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
      sample_(RedisClient::Lazy(config.redis)) {
  if (!config.events_webhook_url.empty()) forwarder_ = std::make_unique<EventForwarder>(config, keys_);
  auto p = ParsePeriodic(config.periodic_tasks);
  if (p.ok()) periodic_ = *p;
  auto t = ParseTimeouts(config.task_timeouts);
  if (t.ok()) timeouts_ = *t;
}

AttemptRunner& WorkerService::RunnerFor(const std::string& consumer) {
  std::lock_guard<std::mutex> l(runners_mu_);
  auto& r = runners_[consumer];
  if (!r) r = std::make_unique<AttemptRunner>(config_.redis);
  return *r;
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
  for (const auto& [q, w] : config_.queues) SF_RETURN_IF_ERROR(EnsureGroup(redis, keys_.Queue(q), TaskKeys::Group()));
  return Status::Ok();
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
  Status flushed = FlushSlot(redis, slot);
  if (!ran.ok()) return ran;
  if (!flushed.ok()) return flushed;
  return ran;
}

Status WorkerService::FlushSlot(RedisClient& redis, Slot& slot) {
  std::vector<std::vector<std::string>> cmds = std::move(slot.status_writes);
  slot.status_writes.clear();
  for (const TaskAck& a : slot.acks) cmds.push_back({"XACK", a.stream, TaskKeys::Group(), a.id});
  if (cmds.empty()) return Status::Ok();
  auto r = redis.Pipeline(cmds);
  if (!r.ok()) {
    // Owed again: the next read (or flush) sends them. A task whose ack never arrives runs again.
    slot.status_writes.assign(cmds.begin(), cmds.end() - static_cast<long>(slot.acks.size()));
    return r.status();
  }
  slot.acks.clear();
  return Status::Ok();
}

StatusOr<int> WorkerService::PollBatch(RedisClient& redis, Slot& slot, int block_ms) {
  if (slot.held.empty()) {
    if (!slot.status_writes.empty()) {
      auto w = redis.Pipeline(slot.status_writes);  // before the acks below: a result is never behind its ack
      if (!w.ok()) return w.status();
      slot.status_writes.clear();
    }
    // The owed acks, the pause check and non-blocking reads of every open queue, in weighted order, in one
    // round trip.
    auto next = ReadNextTasks(redis, keys_, TaskKeys::Group(), slot.consumer, WeightedOrder(), slot.prefetch, slot.acks);
    redis_health_.Report(next.status(), "poll queues");
    if (!next.ok()) return next.status();
    slot.acks.clear();
    std::vector<StreamEntry> entries = std::move(next->entries);
    if (entries.empty()) {
      if (next->open_queues.empty()) {  // every queue paused
        std::this_thread::sleep_for(std::chrono::milliseconds(block_ms));
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
    slot.held.assign(std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end()));
    slot.batch_fast = true;
  }
  StreamEntry entry = std::move(slot.held.front());
  slot.held.pop_front();
  Execute(redis, entry, 1, slot);
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

void WorkerService::Execute(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot) {
  const std::string& consumer = slot.consumer;
  // Every line logged while this task runs (ours and its handler's) carries its entry and task id.
  LogScope entry_scope(LogContext().Entry(entry.id));
  const std::string* raw = entry.Field("e");
  v1::TaskEnvelope task;
  if (raw == nullptr || !task.ParseFromString(*raw)) {
    SF_LOG_WARN("dead-lettering undecodable task {} {}", entry.stream, entry.id);
    if (DeadLetterTask(redis, keys_, entry.stream, entry.id, raw ? *raw : "", "undecodable TaskEnvelope",
                       times_delivered).ok()) {
      dead_lettered_.Increment();
    }
    return;
  }
  LogScope task_scope(LogContext().Task(task.id()));
  if (std::string v = UnknownVersionReason("TaskEnvelope", task.version(), kTaskEnvelopeVersion); !v.empty()) {
    SF_LOG_WARN("dead-lettering task {} {}: {}", entry.stream, entry.id, v);
    if (DeadLetterTask(redis, keys_, entry.stream, entry.id, *raw, v, times_delivered).ok()) {
      dead_lettered_.Increment();
      processed_.Add({{"type", "unknown"}, {"outcome", "dead_lettered"}}).Increment();
    }
    return;
  }
  if (task.queue().empty()) task.set_queue(entry.stream.substr(keys_.Queue("").size()));
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
  const Handler* h = handlers_.Find(task.type());
  if (h == nullptr) {
    SF_LOG_WARN("dead-lettering task {}: unknown type \"{}\"", task.id(), task.type());
    if (DeadLetterTask(redis, keys_, entry.stream, entry.id, *raw, "unknown task type \"" + task.type() + "\"",
                       times_delivered).ok()) {
      dead_lettered_.Increment();
      ProcessedChild(slot, "unknown", "dead_lettered").Increment();
    }
    return;
  }
  // The attempt count comes from the envelope: a hand-made one could say INT32_MAX (or less than zero), and
  // attempt + 1 below must not overflow. Such a task has no attempts left anyway.
  if (task.attempt() < 0 || task.attempt() == std::numeric_limits<int32_t>::max()) task.set_attempt(1 << 30);
  const bool keep_status = config_.task_result_ttl_s > 0 && !task.id().empty();
  if (keep_status) (void)redis.Command({"HSET", keys_.Status(task.id()), "state", "running", "worker", entry.id});
  busy_.Increment();
  auto t0 = Clk::now();
  AttemptRunner::Options opts;
  auto timeout = timeouts_.find(task.type());
  opts.timeout_ms = timeout == timeouts_.end() ? config_.task_timeout_ms : timeout->second;
  opts.grace_ms = config_.task_timeout_grace_ms;
  // Three heartbeats per visibility timeout: one lost round trip still leaves the lease alive.
  opts.heartbeat_ms = std::max<int64_t>(10, config_.visibility_timeout_ms / 3);
  auto heartbeat = [&] {
    auto owned = ExtendLease(redis, entry.stream, TaskKeys::Group(), consumer, entry.id);
    if (owned.ok() && *owned) lease_extensions_.Increment();
    // The tasks read ahead wait behind this one: keep them from looking dead too.
    for (const StreamEntry& h : slot.held) (void)ExtendLease(redis, h.stream, TaskKeys::Group(), consumer, h.id);
    // A Redis error is not a lost lease: the next heartbeat tries again within the visibility timeout.
    return !owned.ok() || *owned;
  };
  AttemptRunner::Outcome out = RunnerFor(consumer).Run(*h, task, config_, opts, heartbeat);
  busy_.Decrement();
  const auto took = Clk::now() - t0;
  if (took > std::chrono::milliseconds(kShortTaskMs)) slot.batch_fast = false;
  prometheus::Histogram*& dur = slot.durations[task.type()];
  if (dur == nullptr) {
    dur = &duration_.Add({{"type", task.type()}},
                         prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120});
  }
  dur->Observe(std::chrono::duration<double>(took).count());
  if (out.lease_lost) {
    SF_LOG_WARN("task {} ({}) was taken over by another worker while running here; leaving it to that worker",
                task.id(), task.type());
    ProcessedChild(slot, task.type(), "lease_lost").Increment();
    return;
  }
  if (out.timed_out) {
    SF_LOG_WARN("task {} ({}) timed out after {}ms{}", task.id(), task.type(), opts.timeout_ms,
                out.abandoned ? "; its handler ignored cancellation and was abandoned" : "");
    timeouts_total_.Add({{"type", task.type()}}).Increment();
  }
  const Status& s = out.status;
  std::string ttl = std::to_string(config_.task_result_ttl_s);
  if (s.ok()) {
    if (keep_status) {
      slot.status_writes.push_back({"HSET", keys_.Status(task.id()), "state", "succeeded", "result", out.result,
                                    "attempts", std::to_string(task.attempt() + 1)});
      slot.status_writes.push_back({"EXPIRE", keys_.Status(task.id()), ttl});
    }
    slot.acks.push_back({entry.stream, entry.id});
    ProcessedChild(slot, task.type(), "succeeded").Increment();
    return;
  }
  RetryPolicy fallback{config_.task_max_attempts, config_.task_backoff_base_ms, config_.task_backoff_cap_ms};
  RetryPolicy policy = handlers_.Policy(task.type(), fallback);
  v1::TaskEnvelope next = task;
  next.set_attempt(task.attempt() + 1);
  next.add_errors("attempt " + std::to_string(task.attempt() + 1) + ": " + s.ToString());
  // Invalid input will not get better by retrying: dead-letter at once.
  bool permanent = s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kFailedPrecondition;
  if (permanent || next.attempt() >= policy.max_attempts) {
    std::string reason = (permanent ? "permanent error: " : "failed after " + std::to_string(next.attempt()) +
                                                                " attempts: ") + s.ToString();
    SF_LOG_WARN("dead-lettering task {} ({}): {}", task.id(), task.type(), reason);
    if (DeadLetterTask(redis, keys_, entry.stream, entry.id, next.SerializeAsString(), reason, times_delivered).ok()) {
      dead_lettered_.Increment();
      ProcessedChild(slot, task.type(), "dead_lettered").Increment();
      if (keep_status) {
        (void)redis.Pipeline({{"HSET", keys_.Status(task.id()), "state", "dead", "error", s.ToString(), "attempts",
                               std::to_string(next.attempt())},
                              {"EXPIRE", keys_.Status(task.id()), ttl}});
      }
    }
    return;
  }
  int64_t run_at = NowMs() + BackoffMs(policy, next.attempt(), rng());
  next.set_run_at_ms(run_at);
  if (ScheduleRetry(redis, keys_, entry.stream, entry.id, next, run_at).ok()) {
    retries_.Increment();
    ProcessedChild(slot, task.type(), "retried").Increment();
    if (keep_status) {
      (void)redis.Pipeline({{"HSET", keys_.Status(task.id()), "state", "retry_scheduled", "error", s.ToString(),
                             "attempts", std::to_string(next.attempt()), "run_at_ms", std::to_string(run_at)},
                            {"EXPIRE", keys_.Status(task.id()), ttl}});
    }
  }
}

Status WorkerService::HousekeepOnce(RedisClient& redis, const std::string& consumer) {
  auto moved = MoveDueTasks(redis, keys_, NowMs(), 500);
  if (!moved.ok()) return moved.status();
  int64_t now = NowMs();
  for (const auto& p : periodic_) {
    int64_t period = now / p.interval_ms;
    // SET NX on the period's key: exactly one process of the fleet fires it.
    auto r = redis.Command({"SET", keys_.Periodic(p.name, period), consumer, "NX", "PX",
                            std::to_string(p.interval_ms * 2 + 1000)});
    if (!r.ok()) return r.status();
    if (r->is_nil()) continue;
    EnqueueOptions o;
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
  Slot slot(consumer);
  for (const auto& [q, w] : config_.queues) {
    auto claimed = ClaimIdle(redis, keys_.Queue(q), TaskKeys::Group(), consumer, config_.visibility_timeout_ms, 10);
    if (!claimed.ok()) return claimed.status();
    for (auto& c : *claimed) {
      claimed_.Increment();
      if (c.times_delivered > config_.max_deliveries) {
        const std::string* raw = c.entry.Field("e");
        if (DeadLetterTask(redis, keys_, c.entry.stream, c.entry.id, raw ? *raw : "",
                           "delivered " + std::to_string(c.times_delivered) + " times (MAX_DELIVERIES)",
                           c.times_delivered).ok()) {
          dead_lettered_.Increment();
        }
        continue;
      }
      SF_LOG_INFO("running task {} taken over from a dead worker", c.entry.id);
      Execute(redis, c.entry, c.times_delivered, slot);
      SF_RETURN_IF_ERROR(FlushSlot(redis, slot));
    }
  }
  return Status::Ok();
}

void WorkerService::Run(const std::atomic<bool>& stop) {
  std::vector<std::thread> threads;
  for (int i = 0; i < config_.worker_concurrency; ++i) {
    threads.emplace_back([this, i, &stop] {
      auto redis = RedisClient::Lazy(config_.redis);
      Slot slot(config_.consumer_name + "-" + std::to_string(i));
      bool groups = false;
      JitteredBackoff backoff;
      // On stop the slot still runs the short tasks it read ahead (graceful drain), then sends its acks.
      while (!stop.load() || !slot.held.empty()) {
        if (!groups) groups = EnsureGroups(*redis).ok();
        auto r = groups ? PollBatch(*redis, slot, 500) : StatusOr<int>(Status::Unavailable("no groups"));
        if (r.ok()) {
          backoff.Reset();
          continue;
        }
        redis_health_.Report(r.status(), "poll queues");
        if (r.status().code() == StatusCode::kFailedPrecondition) groups = false;
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff.Next()));
      }
      redis_health_.Report(FlushSlot(*redis, slot), "ack tasks");
    });
  }
  threads.emplace_back([this, &stop] {
    auto redis = RedisClient::Lazy(config_.redis);
    std::string consumer = config_.consumer_name + "-housekeeper";
    while (!stop.load()) {
      redis_health_.Report(HousekeepOnce(*redis, consumer), "housekeeping");
      for (int i = 0; i < 5 && !stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  for (auto& t : threads) t.join();  // each slot finishes its running task first: graceful drain
}

void WorkerService::SampleGauges() {
  std::lock_guard<std::mutex> l(sample_mu_);
  abandoned_.Set(static_cast<double>(AttemptRunner::AbandonedNow()));
  auto z = sample_->Command({"ZCARD", keys_.Scheduled()});
  if (z.ok()) scheduled_.Set(static_cast<double>(z->integer));
  std::vector<std::string> streams;
  for (const auto& [q, w] : config_.queues) streams.push_back(keys_.Queue(q));
  streams.push_back(keys_.DeadLetters());
  stream_gauges_.Sample(*sample_, streams);
  for (const auto& [q, w] : config_.queues) {
    auto age = OldestWaitingSeconds(*sample_, keys_.Queue(q));
    if (age.ok()) oldest_waiting_.Add({{"queue", q}}).Set(*age);
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
