#pragma once
// Turns the end of an attempt into the task's next state: counts it (duration, outcome), then acks it with its
// result at once (TaskLifecycle::Succeeded, sent without waiting for the reply), retries it with backoff or dead-letters it
// (retry_policy.h decides, TaskLifecycle makes the transition). Also dead-letters deliveries that never ran
// (undecodable, unknown type, newer envelope, MAX_DELIVERIES).
//
// Thread-safety: no state of its own besides the metrics (thread-safe); each call runs on the thread that
// owns the slot it is given.
#include <chrono>
#include <cstdint>
#include <string>

#include "queue-worker/handlers.h"
#include "queue-worker/slot.h"
#include "queue-worker/worker_metrics.h"
#include "streamfleet/base/clock.h"
#include "streamfleet/taskqueue/task_lifecycle.h"

namespace streamfleet::worker {

// The longest wait a handler's retry_after_ms can ask for.
inline constexpr int64_t kMaxRetryAfterMs = 24LL * 3600 * 1000;

// How an attempt ended. The references point into the caller's frame (the delivery and its envelope).
struct AttemptEnd {
  AttemptEnd(const std::string& s, const std::string& i, const v1::TaskEnvelope& t) : stream(s), id(i), task(t) {}
  const std::string& stream;
  const std::string& id;
  const v1::TaskEnvelope& task;
  int64_t times_delivered = 1;
  int64_t timeout_ms = 0;
  std::chrono::steady_clock::duration took{};
  Status status;
  std::string result;
  int64_t retry_after_ms = 0;  // the handler's TaskContext::retry_after_ms (0 = the policy's backoff)
  bool timed_out = false;
  bool lease_lost = false;  // another worker owns the task now: neither ack nor retry it
  bool abandoned = false;   // its handler ignored cancellation and its thread was abandoned
};

class Finisher {
 public:
  Finisher(const Config& config, Clock& clock, const HandlerRegistry& handlers, const TaskLifecycle& lifecycle,
           WorkerMetrics& metrics)
      : config_(config), clock_(clock), handlers_(handlers), lifecycle_(lifecycle), metrics_(metrics) {}

  // Counts the attempt under its type's stats and acks (at once, on success), retries or
  // dead-letters its task. A task whose lease was lost is left to the worker that owns it now.
  void Finish(RedisClient& redis, Slot& slot, Slot::TypeStats& type, AttemptEnd&& end);

  // Dead-letters a delivery of `slot` (TaskLifecycle::DeadLetter: with `task`, the decoded envelope, its status
  // record says "dead") and counts it. False when the dead letter was not written: the delivery stays pending
  // and comes back, or another worker claimed it meanwhile and decides it.
  bool DeadLetter(RedisClient& redis, const Slot& slot, const std::string& stream, const std::string& entry_id,
                  const std::string& raw, const std::string& reason, int64_t times_delivered,
                  const v1::TaskEnvelope* task);

 private:
  // A failed attempt (an error, a timeout): retry or dead letter, as the type's policy says.
  void Failed(RedisClient& redis, Slot& slot, const AttemptEnd& end);

  const Config& config_;
  Clock& clock_;
  const HandlerRegistry& handlers_;
  const TaskLifecycle& lifecycle_;
  WorkerMetrics& metrics_;
};

}  // namespace streamfleet::worker
