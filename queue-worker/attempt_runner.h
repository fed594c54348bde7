#pragma once
// Runs one handler attempt on a thread of its own (kept across attempts), so the slot thread stays free to keep the task's lease
// (worker_service.cc heartbeats with ExtendLease) and to enforce the attempt's timeout.
//
// Timeout: at the deadline the attempt's cancelled flag is set (TaskContext::Cancelled()) and the attempt
// counts as failed with reason "timeout", whatever the handler returns afterwards (handlers are
// idempotent; a result that came too late is not trusted to be complete). A handler that ignores the flag
// is waited for `grace_ms` more; then its thread is detached ("abandoned") together with everything it
// touches (its own Redis connection, its own copies of the envelope, config and handler), so the slot goes
// on with the next task. C++ cannot kill a thread: an abandoned handler runs until it returns;
// AbandonedNow() (the gauge streamfleet_worker_abandoned_handlers) shows them, a restart clears them.
//
// Thread-safety: one AttemptRunner per slot (its spare connection is not shared); Run is not reentrant.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "queue-worker/handlers.h"

namespace streamfleet::worker {

class AttemptRunner {
 public:
  explicit AttemptRunner(const RedisConfig& redis) : redis_config_(redis) {}
  ~AttemptRunner();
  AttemptRunner(const AttemptRunner&) = delete;
  AttemptRunner& operator=(const AttemptRunner&) = delete;

  struct Options {
    int64_t timeout_ms = 0;  // 0 = no timeout
    int64_t grace_ms = 5000;
    int64_t heartbeat_ms = 10000;
  };
  struct Outcome {
    Status status;
    std::string result;
    bool timed_out = false;
    bool lease_lost = false;  // another worker owns the task now: neither ack nor retry it
    bool abandoned = false;
  };

  // Runs handler(ctx) and waits for it; every heartbeat_ms calls heartbeat() on this thread. A heartbeat
  // returning false (the lease is lost: another worker owns the task now) cancels the attempt, and
  // heartbeats stop. A cancelled handler that does not return within grace_ms is abandoned.
  Outcome Run(const Handler& handler, const v1::TaskEnvelope& task, const Config& config, const Options& opts,
              const std::function<bool()>& heartbeat);

  // Abandoned handler threads still running, process-wide.
  static int64_t AbandonedNow();

 private:
  struct Executor;
  RedisConfig redis_config_;
  std::shared_ptr<const Config> config_;  // copied on the first Run; the configuration does not change
  std::shared_ptr<Executor> executor_;    // the attempt thread; replaced after an abandonment
  // The handlers' connection, reused from attempt to attempt; an abandoned attempt keeps it.
  std::unique_ptr<RedisClient> spare_;
};

}  // namespace streamfleet::worker
