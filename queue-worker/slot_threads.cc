#include "queue-worker/slot_threads.h"

namespace streamfleet::worker {

SlotThreads::~SlotThreads() {
  for (Lane& l : lanes_) {
    if (l.slot) {
      std::lock_guard<std::mutex> sl(l.slot->mu);
      l.slot->replace = nullptr;
    }
    if (l.thread.joinable()) l.thread.join();
  }
}

void SlotThreads::Start(std::shared_ptr<SlotWatch> slot, Body body) {
  std::lock_guard<std::mutex> l(mu_);
  size_t lane = lanes_.size();
  lanes_.push_back(Lane{slot, std::move(body), {}, false});
  if (slot) {
    std::lock_guard<std::mutex> sl(slot->mu);
    // Runs on the watchdog thread: it only queues the request; Wait() does the rest.
    slot->replace = [this, lane](AbandonedAttempt a) {
      {
        std::lock_guard<std::mutex> l(mu_);
        replace_.emplace_back(lane, std::move(a));
      }
      cv_.notify_all();
    };
  }
  Launch(lane, std::nullopt);
}

void SlotThreads::Launch(size_t lane, std::optional<AbandonedAttempt> orphan) {
  // The thread holds its own copy of the body (and so of what the body captured): an abandoned thread
  // outlives its Lane's next thread and maybe this object.
  lanes_[lane].thread = std::thread([this, lane, body = lanes_[lane].body, orphan = std::move(orphan)]() mutable {
    if (!body(std::move(orphan))) {  // abandoned: `this` may be gone
      body = nullptr;  // what the body holds (the slot, its connections) goes first
      // Last: a process ending its drain reads the count (RunProcess) and destroys the worker once it is 0.
      Watchdog::AbandonedThreadEnded();
      return;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      lanes_[lane].ended = true;
      ++ended_;
    }
    cv_.notify_all();
  });
}

void SlotThreads::Wait() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [&] { return !replace_.empty() || ended_ == lanes_.size(); });
    while (!replace_.empty()) {
      auto [lane, attempt] = std::move(replace_.front());
      replace_.pop_front();
      lanes_[lane].thread.detach();  // runs on until its handler returns, then ends by itself
      Launch(lane, std::move(attempt));
    }
    if (ended_ == lanes_.size()) break;
  }
  // No thread runs a task any more: nothing can be abandoned from here on.
  for (Lane& lane : lanes_) {
    if (lane.slot) {
      std::lock_guard<std::mutex> sl(lane.slot->mu);
      lane.slot->replace = nullptr;
    }
  }
  l.unlock();
  for (Lane& lane : lanes_) lane.thread.join();
}

}  // namespace streamfleet::worker
