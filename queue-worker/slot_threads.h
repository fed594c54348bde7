#pragma once
// Keeps WorkerService::Run's threads (the slots and the housekeeper) running until each ends by itself. When
// the watchdog abandons a thread (its handler ignored cancellation past the grace, see watchdog.h), the
// thread is detached and a new one starts with the same body and the abandoned attempt, so the process keeps
// its concurrency. Only the thread that called Wait() starts, detaches and joins threads.
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "queue-worker/watchdog.h"

namespace streamfleet::worker {

class SlotThreads {
 public:
  // A thread's work. `orphan`: the attempt its abandoned predecessor left, to finish first. Returns false
  // when this thread itself was abandoned: it must then return without touching anything shared, and
  // SlotThreads does not touch it either (it may have outlived the SlotThreads).
  using Body = std::function<bool(std::optional<AbandonedAttempt> orphan)>;

  SlotThreads() = default;
  ~SlotThreads();  // joins what is still joinable (Wait() normally did)
  SlotThreads(const SlotThreads&) = delete;
  SlotThreads& operator=(const SlotThreads&) = delete;

  // Starts a thread for `slot` (nullptr: a thread the watchdog never abandons). Call before Wait().
  void Start(std::shared_ptr<SlotWatch> slot, Body body);
  // Replaces abandoned threads until every thread has ended by itself, then returns.
  void Wait();

 private:
  struct Lane {
    std::shared_ptr<SlotWatch> slot;
    Body body;
    std::thread thread;
    bool ended = false;  // guarded by mu_: its current thread returned true
  };
  void Launch(size_t lane, std::optional<AbandonedAttempt> orphan);  // mu_ held

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Lane> lanes_;  // a deque: Launch's threads refer to their Lane by index, never moved
  std::deque<std::pair<size_t, AbandonedAttempt>> replace_;  // guarded by mu_: requested by the watchdog
  size_t ended_ = 0;                                          // guarded by mu_
};

}  // namespace streamfleet::worker
