#include "queue-worker/finisher.h"

#include <algorithm>

#include "streamfleet/base/random.h"
#include "queue-worker/retry_policy.h"
#include "streamfleet/base/log.h"

namespace streamfleet::worker {

void Finisher::Finish(RedisClient& redis, Slot& slot, Slot::TypeStats& type, AttemptEnd&& end) {
  const v1::TaskEnvelope& task = end.task;
  if (end.took > std::chrono::milliseconds(kShortTaskMs)) slot.batch_fast = false;
  type.duration->Observe(std::chrono::duration<double>(end.took).count());
  if (end.lease_lost) {
    SF_LOG_WARN("task {} ({}) was taken over by another worker while running here; leaving it to that worker",
                task.id(), task.type());
    metrics_.Processed(slot, task.type(), "lease_lost").Increment();
    return;
  }
  if (end.timed_out) {
    SF_LOG_WARN("task {} ({}) timed out after {}ms{}", task.id(), task.type(), end.timeout_ms,
                end.abandoned ? "; its handler ignored cancellation and was abandoned" : "");
    metrics_.timeouts.Add({{"type", task.type()}}).Increment();
    // A result that came too late is not trusted to be complete (handlers are idempotent: it runs again).
    if (!end.abandoned) {
      end.status = Status::DeadlineExceeded("timeout: ran longer than " + std::to_string(end.timeout_ms) + "ms");
    }
  }
  if (end.status.ok()) {
    // Record and ack go now, without waiting for the reply: no round trip, and a crash from here on does not
    // run this task again. A connection error keeps them owed in the slot (the next poll sends them).
    // With status records on and another task held, they go instead in the same write as that task's
    // "running" record, which is sent next, before its handler starts: the same crash window, one write
    // (one TLS record each way) per task instead of two.
    const bool defer = lifecycle_.records() && !end.abandoned && slot.HoldsAny();
    (void)lifecycle_.Succeeded(redis, slot.finished, end.stream, end.id, task.id(), std::move(end.result),
                               int64_t{task.attempt()} + 1, !defer);
    slot.ack_deferred = defer;
    type.succeeded->Increment();
    return;
  }
  Failed(redis, slot, end);
}

void Finisher::Failed(RedisClient& redis, Slot& slot, const AttemptEnd& end) {
  const v1::TaskEnvelope& task = end.task;
  FailedAttempt f = DecideFailure(task, end.status, handlers_.Policy(task.type(), config_), clock_.NowMs(), RandomU64());
  if (f.dead) {
    if (DeadLetter(redis, slot, end.stream, end.id, f.next.SerializeAsString(), f.reason, end.times_delivered,
                   &f.next)) {
      SF_LOG_WARN("dead-lettered task {} ({}): {}", task.id(), task.type(), f.reason);
      metrics_.Processed(slot, task.type(), "dead_lettered").Increment();
    }
    return;
  }
  if (end.retry_after_ms > 0) {
    // The handler was told when to come back (Retry-After): then, not after the backoff; at most a day, so a
    // receiver's typo cannot park the task for years.
    f.run_at_ms = clock_.NowMs() + std::min<int64_t>(end.retry_after_ms, kMaxRetryAfterMs);
    f.next.set_run_at_ms(f.run_at_ms);
  }
  // Only while the delivery is still this slot's: another worker that claimed it meanwhile (this one's lease ran
  // out, Redis away) may be running it, and its outcome decides; a retry from here would run it once more.
  auto retried = lifecycle_.Retry(redis, end.stream, end.id, f.next, f.run_at_ms, end.status.ToString(), slot.consumer);
  if (retried.ok() && *retried) {
    metrics_.retries.Increment();
    metrics_.Processed(slot, task.type(), "retried").Increment();
  }
}

bool Finisher::DeadLetter(RedisClient& redis, const Slot& slot, const std::string& stream, const std::string& entry_id,
                          const std::string& raw, const std::string& reason, int64_t times_delivered,
                          const v1::TaskEnvelope* task) {
  auto written = lifecycle_.DeadLetter(redis, stream, entry_id, raw, reason, times_delivered, task, slot.consumer);
  if (!written.ok() || !*written) return false;
  metrics_.dead_lettered.Increment();
  return true;
}

}  // namespace streamfleet::worker
