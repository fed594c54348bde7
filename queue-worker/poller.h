#pragma once
// How a slot gets its tasks: reads a batch, runs the held tasks one by one inline (Executor; each is acked
// as it finishes, TaskLifecycle::Succeeded). The batch size (Slot::prefetch) doubles while every task of a
// batch finishes within kShortTaskMs, up to WORKER_PREFETCH, and drops to 1 after a slow one.
//
// Thread-safety: each call runs on the thread that owns the slot it is given; the poller has no state of its
// own.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <prometheus/counter.h>

#include "queue-worker/executor.h"
#include "queue-worker/slot.h"
#include "streamfleet/observability/dependency_health.h"
#include "streamfleet/taskqueue/task_lifecycle.h"

namespace streamfleet::worker {

class Poller {
 public:
  // How often a slot whose queues are all paused checks again (PAUSE / RESUME take effect this fast).
  static constexpr int64_t kPausedPollMs = 100;

  // cancelled: counts the cancelled tasks its reads skip (task_control.h).
  Poller(const Config& config, const TaskLifecycle& lifecycle, Executor& executor, DependencyHealth& redis_health,
         prometheus::Counter& cancelled)
      : config_(config), lifecycle_(lifecycle), executor_(executor), redis_health_(redis_health),
        cancelled_(cancelled) {}

  // Runs the next task the slot holds, reading a batch first when it holds none. Its ack is sent without
  // waiting for the reply (and stays owed after a connection error): Flush waits for them. Returns 1 if a
  // task ran, 0 if none, kAbandoned if the watchdog abandoned the calling thread while the task ran.
  StatusOr<int> PollBatch(RedisClient& redis, Slot& slot, int block_ms);
  // One poll with a slot of its own (a direct caller's): runs every task of one read, then acks them.
  StatusOr<int> PollOnce(RedisClient& redis, const std::string& consumer, int block_ms);
  // Sends what the slot still owes (records and acks a connection error held back) and waits until Redis has
  // applied every ack and record the slot sent.
  Status Flush(RedisClient& redis, Slot& slot) { return lifecycle_.Flush(redis, slot.finished); }
  // Flush, reported to the Redis health only when something was owed (an empty flush proves nothing).
  void FlushAndReport(RedisClient& redis, Slot& slot, const char* what);

 private:
  // The next batch for the slot: what it still owes first, then one round trip with the pause check and
  // non-blocking reads of the open queues; when none waits, a blocking read (standard mode), an idle
  // backoff (cluster mode) or a short sleep (every queue paused). Empty when nothing came.
  StatusOr<std::vector<StreamEntry>> ReadBatch(RedisClient& redis, Slot& slot, int block_ms);
  // Standard mode, nothing waiting: XREADGROUP ... BLOCK over the open queues.
  StatusOr<std::vector<StreamEntry>> BlockingRead(RedisClient& redis, Slot& slot,
                                                  const std::vector<std::string>& open_queues, int block_ms);
  // Cluster mode, nothing waiting: sleep the slot's idle backoff instead of a blocking read.
  void IdleWait(Slot& slot, int block_ms);
  // The slot holds `entries` from now on; the watchdog keeps their leases.
  void Hold(Slot& slot, std::vector<StreamEntry> entries);
  // Counts and logs the cancelled tasks a read skipped (already acked by it).
  void Skipped(RedisClient& redis, const std::vector<std::string>& cancelled_ids);

  const Config& config_;
  const TaskLifecycle& lifecycle_;
  Executor& executor_;
  DependencyHealth& redis_health_;
  std::atomic<int64_t> shard_error_logged_ms_{0};  // when a failing queue shard was last logged (ReadBatch)
  prometheus::Counter& cancelled_;
};

}  // namespace streamfleet::worker
