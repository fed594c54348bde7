#pragma once
// What a failed attempt leads to, decided from the task's retry policy (HandlerRegistry::Policy: TASK_POLICY,
// the handler's default, or TASK_MAX_ATTEMPTS / TASK_BACKOFF_*). Pure functions: the caller makes the
// transition (TaskLifecycle::Retry or ::DeadLetter) and supplies the time and the randomness.
#include <cstdint>
#include <string>

#include "streamfleet/base/status.h"
#include "streamfleet/base/task_specs.h"
#include "streamfleet/v1/task.pb.h"

namespace streamfleet::worker {

// Milliseconds to wait before attempt `attempt` (1-based retry number), jittered in [d/2, d] with
// d = base_ms doubled per attempt up to cap_ms. Jitter spreads the retries of tasks that failed together
// (an outage) instead of sending them back all at once.
int64_t BackoffMs(const RetryPolicy& p, int attempt, uint64_t random);

struct FailedAttempt {
  // The envelope of what comes next: the attempt counted and "attempt N: <error>" appended to its history.
  // For a retry, run_at_ms is set to when it runs.
  v1::TaskEnvelope next;
  bool dead = false;      // dead-letter now instead of retrying
  std::string reason;     // dead: the dead letter's reason
  int64_t run_at_ms = 0;  // retry: when (wall clock ms)
};

// kInvalidArgument and kFailedPrecondition are permanent (input that will not get better by retrying: dead at
// once); any other error retries until the policy's attempts are used up.
FailedAttempt DecideFailure(const v1::TaskEnvelope& task, const Status& error, const RetryPolicy& policy,
                            int64_t now_ms, uint64_t random);

}  // namespace streamfleet::worker
