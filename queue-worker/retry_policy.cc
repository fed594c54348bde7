#include "queue-worker/retry_policy.h"

#include <algorithm>
#include <limits>

namespace streamfleet::worker {

int64_t BackoffMs(const RetryPolicy& p, int attempt, uint64_t random) {
  int64_t d = p.base_ms;
  // Doubling stops at the cap, and before it could overflow (a TASK_POLICY base near 2^63 ms).
  for (int i = 1; i < attempt && d < p.cap_ms && d <= std::numeric_limits<int64_t>::max() / 2; ++i) d *= 2;
  d = std::min(d, p.cap_ms);
  if (d <= 1) return d;
  return d / 2 + static_cast<int64_t>(random % static_cast<uint64_t>(d / 2 + 1));
}

FailedAttempt DecideFailure(const v1::TaskEnvelope& task, const Status& error, const RetryPolicy& policy,
                            int64_t now_ms, uint64_t random) {
  FailedAttempt out;
  out.next = task;
  out.next.set_attempt(task.attempt() + 1);
  out.next.add_errors("attempt " + std::to_string(task.attempt() + 1) + ": " + error.ToString());
  const bool permanent =
      error.code() == StatusCode::kInvalidArgument || error.code() == StatusCode::kFailedPrecondition;
  if (permanent || out.next.attempt() >= policy.max_attempts) {
    out.dead = true;
    out.reason = (permanent ? "permanent error: "
                            : "failed after " + std::to_string(out.next.attempt()) + " attempts: ") +
                 error.ToString();
    return out;
  }
  out.run_at_ms = now_ms + BackoffMs(policy, out.next.attempt(), random);
  out.next.set_run_at_ms(out.run_at_ms);
  return out;
}

}  // namespace streamfleet::worker
