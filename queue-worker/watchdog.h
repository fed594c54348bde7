#pragma once
// The per-process watchdog of the queue-worker's slots. Handlers run inline on their slot's thread (no
// hand-off per task: that cost two context switches per no-op task), so the slot thread cannot keep leases
// or enforce timeouts while a handler runs. One watchdog thread does it for every slot:
//   - every heartbeat period it renews the leases (ExtendLease) of each slot's running task and of the tasks
//     the slot read ahead and holds; a running task whose lease another worker now owns is cancelled and
//     marked lease_lost (the slot neither acks nor retries it);
//   - at the running attempt's deadline it sets the attempt's cancelled flag (TaskContext::Cancelled());
//   - when a cancelled handler is still running `grace` later, and the slot can be replaced (its `replace`
//     is set: WorkerService::Run's threads), it declares the slot thread abandoned: the attempt is handed,
//     as an AbandonedAttempt, to `replace`, which starts a new thread that finishes it (retry or dead letter)
//     and carries on with the slot. C++ cannot kill a thread: the abandoned one runs on until its handler
//     returns, then sees `abandoned` and ends without touching the slot, the service or the task. It owns
//     its Redis connections, so nothing it is in the middle of is shared. AbandonedNow() counts them.
// A slot without `replace` (a direct caller of PollOnce / PollBatch / HousekeepOnce, as tests do) is never
// abandoned: its cancelled handler is waited for, and the attempt still counts as timed out.
//
// The slot thread touches its SlotWatch only under `mu`, twice per task (start and end of an attempt), so the
// watchdog costs the hot path two uncontended lock/unlock pairs; it never wakes the slot thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "streamfleet/redis/redis.h"
#include "streamfleet/v1/task.pb.h"

namespace streamfleet::worker {

using WatchClock = std::chrono::steady_clock;

// A read-ahead task another worker's housekeeper claimed (its lease ran out here while Redis was away) is
// left to that worker. Two places notice it: a heartbeat (Watchdog::DropHeld) and the executor's check just
// before it runs (Executor::StillOurs); whichever does first logs it, once, in these words.
void LogReadAheadTakenOver(const std::string& stream, const std::string& id);

// The attempt a slot thread is running, on that thread's stack while its handler runs.
struct RunningAttempt {
  const StreamEntry* entry = nullptr;        // its lease (stream, id)
  const v1::TaskEnvelope* task = nullptr;
  int64_t times_delivered = 1;
  int64_t timeout_ms = 0;                    // 0 = none
  // TASK_LIMITS: the zset holding this attempt's permit (member: permit_token), renewed with its lease, so a
  // task running longer than the permit's lease keeps its place in max_running ("" = no limit).
  std::string permit_key;
  std::string permit_token;  // TaskPermitToken of this delivery
  int64_t permit_lease_ms = 0;
  WatchClock::time_point started;
  WatchClock::time_point deadline = WatchClock::time_point::max();
  std::atomic<bool> cancelled{false};        // TaskContext::cancelled
  // Guarded by SlotWatch::mu.
  bool timed_out = false;
  bool lease_lost = false;
  bool abandoned = false;
  WatchClock::time_point give_up = WatchClock::time_point::max();  // cancelled at: + grace
};

// What a replacement slot thread needs to finish an abandoned attempt (copies: the abandoned thread keeps its
// own).
struct AbandonedAttempt {
  std::string stream, id;
  v1::TaskEnvelope task;
  int64_t times_delivered = 1;
  int64_t timeout_ms = 0;
  int64_t grace_ms = 0;
  WatchClock::time_point started, abandoned_at;
  bool timed_out = false;
  bool lease_lost = false;
};

// What the watchdog sees of one thread that runs tasks inline: a slot, the housekeeper, a direct caller.
struct SlotWatch {
  explicit SlotWatch(std::string c) : consumer(std::move(c)) {}
  const std::string consumer;
  std::mutex mu;
  std::deque<StreamEntry> held;       // read ahead, not started: written under mu, leases kept by the watchdog
  RunningAttempt* running = nullptr;  // guarded by mu
  uint64_t attempts = 0;              // guarded by mu: tells a heartbeat's attempt from a later one
  // When the leases of `held` and of the running task were last renewed: the read or claim that delivered
  // them (the slot thread sets it), or the last heartbeat. Guarded by mu.
  WatchClock::time_point leases_fresh_at = WatchClock::time_point::min();
  // When the held tasks' leases were last known to be this slot's: their delivery or claim, or a heartbeat
  // whose renewals all got an answer. Older than half a visibility timeout (Redis away), a held task is asked
  // about before it runs (Executor). Guarded by mu.
  WatchClock::time_point leases_confirmed_at = WatchClock::time_point::min();
  // The held tasks were just delivered or claimed, which reset their idle time: their leases are fresh and
  // known to be this slot's. Call with mu held.
  void LeasesDeliveredNow() { leases_fresh_at = leases_confirmed_at = WatchClock::now(); }
  // Starts a replacement thread for this slot, handing it the abandoned attempt. Guarded by mu; empty = this
  // slot's thread cannot be replaced, so it is never abandoned.
  std::function<void(AbandonedAttempt)> replace;
};

class Watchdog {
 public:
  struct Options {
    std::string group;
    int64_t heartbeat_ms = 10000;
    int64_t grace_ms = 5000;
    int64_t tick_ms = 5;  // timeouts fire at most this late
  };
  struct Hooks {
    std::function<void()> lease_extended;  // the running task's lease was renewed
  };
  Watchdog(const RedisConfig& redis, Options opts, Hooks hooks);
  ~Watchdog();  // stops and joins the thread
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Watches the slot from now on (until the last owner drops it). Starts the thread on first use.
  void Watch(const std::shared_ptr<SlotWatch>& slot);
  // Every SlotWatch alive, for gauges.
  std::vector<std::shared_ptr<SlotWatch>> Slots();

  // Abandoned handler threads still running, process-wide (the gauge streamfleet_worker_abandoned_handlers).
  static int64_t AbandonedNow();
  // Called by an abandoned thread once its handler returned and it has unwound (SlotThreads).
  static void AbandonedThreadEnded();

 private:
  struct Lease {
    std::string stream, id;
  };
  struct Beat {  // one slot's heartbeat, taken under its lock and sent without it
    std::shared_ptr<SlotWatch> slot;
    uint64_t attempt = 0;  // SlotWatch::attempts of the running attempt (its lease is leases[0]), 0 = none
    std::vector<Lease> leases;  // the running task's first, if any
    std::string permit_key;     // the running task's TASK_LIMITS permit, renewed with its lease ("" = none)
    std::string permit_token;
    int64_t permit_lease_ms = 0;
  };
  struct Handoff {  // an abandoned attempt for its slot's replacement thread
    std::function<void(AbandonedAttempt)> replace;
    AbandonedAttempt attempt;
  };
  void Loop();
  // Deadlines, abandonment and heartbeat collection for one slot, under its lock. Fills `beat` when a
  // heartbeat is due and `handoff` when the slot thread was just abandoned; both are acted on unlocked.
  void Check(const std::shared_ptr<SlotWatch>& slot, WatchClock::time_point now, Beat& beat,
             std::optional<Handoff>& handoff);
  void SendBeat(const Beat& beat);
  // Takes a read-ahead task whose renewal found it owned elsewhere (or acked) out of the slot's held tasks.
  void DropHeld(SlotWatch& s, const Lease& lease);

  const RedisConfig redis_config_;
  const Options opts_;
  const Hooks hooks_;
  std::unique_ptr<RedisClient> redis_;  // the watchdog thread's own connection
  std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;                              // guarded by mu_
  std::vector<std::weak_ptr<SlotWatch>> slots_;    // guarded by mu_
  std::thread thread_;                             // started by the first Watch()
};

}  // namespace streamfleet::worker
