#include "queue-worker/executor.h"

#include <algorithm>
#include <limits>

#include "streamfleet/base/time.h"
#include "streamfleet/base/envelope_version.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/random.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/taskqueue/task_limits.h"

namespace streamfleet::worker {

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

Executor::Executor(const Config& config, const HandlerRegistry& handlers, const TaskLifecycle& lifecycle,
                   WorkerMetrics& metrics, Finisher& finisher, Watchdog& watchdog)
    : config_(config),
      handlers_(handlers),
      lifecycle_(lifecycle),
      metrics_(metrics),
      finisher_(finisher),
      watchdog_(watchdog),
      shared_config_(std::make_shared<const Config>(config)) {}

void Executor::Watch(Slot& slot) {
  if (slot.config) return;
  slot.config = shared_config_;
  watchdog_.Watch(slot.watch);
}

RedisClient& Executor::HandlerRedis(Slot& slot) {
  if (slot.handler_redis == nullptr) {
    std::lock_guard<std::mutex> l(spares_mu_);
    auto& c = spares_[slot.consumer];
    if (!c) c = RedisClient::Lazy(config_.redis);
    slot.handler_redis = c.get();
  }
  return *slot.handler_redis;
}

Slot::TypeStats& Executor::TypeFor(Slot& slot, const std::string& type) {
  auto it = slot.types.find(type);
  if (it != slot.types.end()) return it->second;
  const Handler* h = handlers_.Find(type);
  // Not kept per name: a producer sending ever new type names (a bug, or on purpose) grew every slot's map for
  // as long as the worker ran.
  if (h == nullptr) return slot.unknown_type;
  Slot::TypeStats& t = slot.types[type];
  t.handler = std::make_shared<const Handler>(*h);
  auto timeout = config_.task_timeouts.find(type);
  t.timeout_ms = timeout == config_.task_timeouts.end() ? config_.task_timeout_ms : timeout->second;
  t.duration = &metrics_.Duration(type);
  t.succeeded = &metrics_.processed.Add({{"type", type}, {"outcome", "succeeded"}});
  auto limit = config_.task_limits.find(type);
  if (limit != config_.task_limits.end()) t.limit = &limit->second;
  return t;
}

int Executor::Execute(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot) {
  const uint64_t runs = slot.runs;
  const int ran = ExecuteEntry(redis, entry, times_delivered, slot);
  // A predecessor's record and ack waited for this entry's "running" write (Finisher::Finish); an entry that
  // never got that far (dead-lettered, postponed by a limit) sends them now rather than leave them waiting.
  if (ran != kAbandoned && slot.ack_deferred && slot.runs == runs) {
    slot.ack_deferred = false;
    (void)lifecycle_.SendOwed(redis, slot.finished);
  }
  return ran;
}

int Executor::ExecuteEntry(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot) {
  Watch(slot);
  if (!StillOurs(redis, entry, slot)) return 0;
  const std::string* raw = entry.Field("e");
  // Reused by this thread from task to task (its strings keep their capacity). Per thread, not per slot: an
  // abandoned thread's handler may still read its envelope while the slot's next thread decodes the next one.
  thread_local v1::TaskEnvelope task;
  task.Clear();
  if (raw == nullptr || !task.ParseFromString(*raw)) {
    LogScope entry_scope(LogContext().Entry(entry.id));
    SF_LOG_WARN("dead-lettering undecodable task {} {}", entry.stream, entry.id);
    // No status record to update: a failed parse leaves no id that can be trusted.
    finisher_.DeadLetter(redis, slot, entry.stream, entry.id, raw ? *raw : "", "undecodable TaskEnvelope",
                         times_delivered, nullptr);
    return 0;
  }
  // Every line logged while this task runs (ours and its handler's) carries its entry and task id.
  LogScope scope(LogContext().Entry(entry.id).Task(task.id()));
  Slot::TypeStats* type = Admit(redis, entry, times_delivered, slot, task);
  if (type == nullptr) return 0;
  if (type->limit != nullptr && !Permit(redis, entry, times_delivered, slot, *type, task)) return 0;
  const int ran = Run(redis, entry, times_delivered, slot, *type, task);
  // An abandoned thread touches nothing: its permit expires with its lease. One whose lease was lost gives back
  // only its own permit (a worker that claimed the task since holds another: the tokens are per delivery).
  if (type->limit != nullptr && ran != kAbandoned) {
    (void)ReleaseTaskPermit(redis, config_.stream_prefix, task.type(),
                            TaskPermitToken(entry.stream, entry.id, times_delivered));
  }
  return ran;
}

bool Executor::StillOurs(RedisClient& redis, const StreamEntry& entry, Slot& slot) {
  {
    std::lock_guard<std::mutex> l(slot.watch->mu);
    const auto since = WatchClock::now() - slot.watch->leases_confirmed_at;
    if (since < std::chrono::milliseconds(config_.visibility_timeout_ms / 2)) return true;
  }
  // The heartbeats have not got through for half a visibility timeout (Redis away): another worker's
  // housekeeper may have claimed this read-ahead task meanwhile. Asked before it runs: the heartbeat that would
  // drop it (Watchdog::DropHeld) may come only after its handler started. A Redis error answers nothing: it
  // runs, as before (its "running" write and its ack meet the same error).
  auto owned = ExtendLease(redis, entry.stream, TaskKeys::Group(), slot.consumer, entry.id);
  if (!owned.ok() || *owned) return true;
  LogReadAheadTakenOver(entry.stream, entry.id);
  return false;
}

int64_t Executor::PermitLeaseMs(const Slot::TypeStats& type) const {
  // A permit outlives the attempt's timeout (then the worker gives up on it anyway); without one, a default,
  // renewed with the running task's lease (Watchdog), so only a dead worker's permit expires.
  return type.timeout_ms > 0 ? type.timeout_ms + config_.task_timeout_grace_ms : kDefaultPermitLeaseMs;
}

bool Executor::Permit(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, const Slot& slot,
                      Slot::TypeStats& type, const v1::TaskEnvelope& task) {
  const int64_t now = WallClockMs();
  auto r = AcquireTaskPermit(redis, config_.stream_prefix, task.type(), *type.limit,
                             TaskPermitToken(entry.stream, entry.id, times_delivered), now,
                             PermitLeaseMs(type));
  if (!r.ok()) {
    SF_LOG_WARN("task {}: limit check failed ({}); it stays pending", task.id(), r.status().ToString());
    return false;
  }
  if (*r == LimitOutcome::kAdmitted) return true;
  const bool rate = *r == LimitOutcome::kRateExceeded;
  // Back to the scheduled set: the next second for a rate, a short jittered wait for a free slot.
  const int64_t delay = rate ? 1000 - now % 1000 + static_cast<int64_t>(RandomU64() % 100)
                             : 100 + static_cast<int64_t>(RandomU64() % 400);
  const char* held_by = rate ? "per_second" : "max_running";
  auto postponed = lifecycle_.Postpone(redis, entry.stream, entry.id, task, now + delay, held_by, slot.consumer);
  if (postponed.ok() && *postponed) {
    metrics_.limited.Add({{"type", task.type()}, {"limit", held_by}}).Increment();
  }
  return false;
}

Slot::TypeStats* Executor::Admit(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot,
                                 v1::TaskEnvelope& task) {
  // Only the rare dead-letter paths below need the raw envelope again (Execute decoded it: it is there).
  if (std::string v = UnknownVersionReason("TaskEnvelope", task.version(), kTaskEnvelopeVersion); !v.empty()) {
    SF_LOG_WARN("dead-lettering task {} {}: {}", entry.stream, entry.id, v);
    if (finisher_.DeadLetter(redis, slot, entry.stream, entry.id, *entry.Field("e"), v, times_delivered, &task)) {
      metrics_.Processed(slot, "unknown", "dead_lettered").Increment();
    }
    return nullptr;
  }
  // The stream it was read from names its queue, whatever the envelope says: a hand-written envelope naming
  // another queue (or one no worker reads) was retried and postponed into that queue's stream, where it could
  // wait for ever, while cluster mode kept it in its own shard.
  if (std::string q = lifecycle_.keys().QueueOf(entry.stream); !q.empty()) task.set_queue(std::move(q));
  if (task.attempt() == 0 && times_delivered == 1) {
    // Queue latency (Sidekiq's "latency"): what users feel when workers are too few. Wall clocks of the
    // enqueuer and this host; a skew below zero counts as zero.
    int64_t since = std::max(task.enqueued_at_ms(), task.run_at_ms());
    double waited = since > 0 ? std::max<double>(0, static_cast<double>(WallClockMs() - since) / 1000.0) : 0;
    metrics_.Wait(slot, task.queue()).Observe(waited);
  }
  Slot::TypeStats& type = TypeFor(slot, task.type());
  if (type.handler == nullptr) {
    SF_LOG_WARN("dead-lettering task {}: unknown type \"{}\"", task.id(), task.type());
    if (finisher_.DeadLetter(redis, slot, entry.stream, entry.id, *entry.Field("e"),
                             "unknown task type \"" + task.type() + "\"", times_delivered, &task)) {
      metrics_.Processed(slot, "unknown", "dead_lettered").Increment();
    }
    return nullptr;
  }
  // The attempt count comes from the envelope: a hand-made one could say INT32_MAX (or less than zero), and
  // attempt + 1 must not overflow (retry_policy.h). Such a task has no attempts left anyway.
  if (task.attempt() < 0 || task.attempt() == std::numeric_limits<int32_t>::max()) task.set_attempt(1 << 30);
  return &type;
}

int Executor::Run(RedisClient& redis, const StreamEntry& entry, int64_t times_delivered, Slot& slot,
                  Slot::TypeStats& type, v1::TaskEnvelope& task) {
  // Who runs it (the consumer name, as XPENDING and the admin show it) and from which stream entry.
  // With the predecessor's record and ack if they waited for this write (Finisher::Finish), before the handler
  // starts: a crash from here on re-runs only this task.
  lifecycle_.Running(redis, slot.finished, task.id(), slot.consumer, entry.id);
  slot.ack_deferred = false;
  ++slot.runs;
  RunningAttempt a;
  a.entry = &entry;
  a.task = &task;
  a.times_delivered = times_delivered;
  a.timeout_ms = type.timeout_ms;
  if (type.limit != nullptr) {
    a.permit_key = TaskPermitsKey(config_.stream_prefix, task.type());
    a.permit_token = TaskPermitToken(entry.stream, entry.id, times_delivered);
    a.permit_lease_ms = PermitLeaseMs(type);
  }
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
      // The slot, its task and its leases belong to the replacement thread now: touch nothing. (The
      // abandoned count falls once this thread has unwound: SlotThreads::Launch.)
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
  end.retry_after_ms = ctx.retry_after_ms;
  finisher_.Finish(redis, slot, type, std::move(end));
  return 0;
}

void Executor::FinishOrphan(RedisClient& redis, Slot& slot, const AbandonedAttempt& o) {
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
  finisher_.Finish(redis, slot, TypeFor(slot, o.task.type()), std::move(end));
}

}  // namespace streamfleet::worker
