#pragma once
// Test support: poll a condition that background threads make true (readiness after an outage, ...).
#include <chrono>
#include <thread>

namespace streamfleet::testing {

// Polls pred every 25 ms until it holds or timeout_ms passed; returns its last value.
template <typename Pred>
bool WaitUntil(Pred pred, int timeout_ms = 5000) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return true;
}

}  // namespace streamfleet::testing
