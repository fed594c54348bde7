#pragma once
// What one slot of the queue-worker carries from poll to poll. Short tasks are read ahead in batches (one
// read per batch); each is acked as it finishes, without waiting for the reply. A slot is used by one thread at a time; the watchdog (watchdog.h) sees its held tasks and running
// attempt through `watch`. The housekeeper and direct callers (PollOnce, HousekeepOnce) use a Slot too.
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include "queue-worker/handlers.h"
#include "queue-worker/watchdog.h"
#include "streamfleet/taskqueue/task_lifecycle.h"

namespace streamfleet::worker {

// What PollBatch, Execute and the housekeeper return when the watchdog abandoned the calling thread while a
// task ran (only WorkerService::Run's threads can be abandoned): the caller must then return at once and
// touch nothing shared.
inline constexpr int kAbandoned = -1;

// A batch grows only while each of its tasks finishes within this: read-ahead never delays a long task's
// successors by more than that, and a held task's lease is renewed with the running task's heartbeat.
inline constexpr int64_t kShortTaskMs = 5;

struct Slot {
  explicit Slot(std::string c)
      : consumer(std::move(c)), watch(std::make_shared<SlotWatch>(consumer)), held(watch->held) {}
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  // What the slot caches per task type, so a task costs one hash lookup of its type.
  struct TypeStats {
    // A copy of the registry's handler (nullptr: unknown type). Never replaced while the slot lives, so an
    // abandoned thread can still be running it.
    std::shared_ptr<const Handler> handler;
    int64_t timeout_ms = 0;
    prometheus::Histogram* duration = nullptr;
    prometheus::Counter* succeeded = nullptr;
    const TaskLimit* limit = nullptr;  // TASK_LIMITS of the type (nullptr: none)
  };

  std::string consumer;
  std::shared_ptr<SlotWatch> watch;  // the held tasks and the running attempt, as the watchdog sees them
  std::deque<StreamEntry>& held;     // watch->held: read ahead, not started (in this consumer's PEL)
  // `held` is shared with the watchdog, which takes out a task another worker took over (Watchdog::DropHeld):
  // read and take it under watch->mu, through these.
  bool HoldsAny() const {
    std::lock_guard<std::mutex> l(watch->mu);
    return !held.empty();
  }
  std::optional<StreamEntry> TakeHeld() {
    std::lock_guard<std::mutex> l(watch->mu);
    if (held.empty()) return std::nullopt;
    std::optional<StreamEntry> e(std::move(held.front()));
    held.pop_front();
    return e;
  }
  FinishedTasks finished;   // records and acks a connection error held back (task_lifecycle.h), or deferred:
  // with status records on, a finished task's record and ack go out with the next held task's "running"
  // record, in one write, before that task's handler starts (ack_deferred); `runs` counts the tasks that
  // reached their handler, so an entry that did not can send what waited for it.
  bool ack_deferred = false;
  uint64_t runs = 0;
  int prefetch = 1;         // tasks to read next time: doubles while a batch's tasks are short, else 1
  bool batch_fast = true;   // every task of the current batch finished within kShortTaskMs
  int64_t idle_ms = 0;      // cluster mode: the current idle poll backoff (0 after a read found tasks)
  // Set on the slot's first task. The configuration the handlers see: kept alive by the slot, so by an
  // abandoned thread too.
  std::shared_ptr<const Config> config;
  // The handlers' own connection (never the slot's reading/acking one: an abandoned handler may be in the
  // middle of a command). Owned by the slot's thread (WorkerService::Run), or by the executor for direct
  // callers.
  RedisClient* handler_redis = nullptr;
  // Metric children and handlers by label, so the hot path does not hash label maps under the family's lock.
  std::unordered_map<std::string, TypeStats> types;  // registered types only (TypeFor)
  TypeStats unknown_type;  // what TypeFor answers for a type no handler takes (not kept per name; never changed)
  std::unordered_map<std::string, prometheus::Counter*> processed;  // "type\noutcome", the rarer outcomes
  std::unordered_map<std::string, prometheus::Histogram*> waits;
};

}  // namespace streamfleet::worker
