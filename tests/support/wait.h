#pragma once
// Test support: wait for a condition that background threads (or a server) make true, instead of sleeping
// for a time that is long enough only on a quiet machine.
#include <chrono>
#include <thread>

namespace streamfleet::testing {

// How long a test waits for something that should happen "soon" before it fails. Generous on purpose: a
// passing test returns as soon as the condition holds, so only a failing one pays for it, and a loaded CI
// machine (two cores shared by several builds) must not turn a slow success into a failure.
inline constexpr int kWaitMs = 20000;

// Polls pred every 25 ms until it holds or timeout_ms passed; returns its last value.
template <typename Pred>
bool WaitUntil(Pred pred, int timeout_ms = kWaitMs) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return true;
}

// Calls call() every 2 ms for `ms` of wall time: a test bounding how often something happens per unit of time
// (a client's reconnects under backoff) stays true on a fast machine and a slow one, where a fixed number of
// calls takes a time that depends on the machine.
template <typename Call>
void CallFor(int ms, Call call) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
    call();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace streamfleet::testing
