#pragma once
// Jittered exponential backoff, the one implementation every retry loop uses: the delay doubles from
// `initial_ms` up to `cap_ms`, and each wait is drawn from [delay/2, delay] so that many processes that
// lost Redis at the same moment do not reconnect in lock step.
#include <algorithm>
#include <cstdint>

#include "streamfleet/base/random.h"

namespace streamfleet {

class JitteredBackoff {
 public:
  explicit JitteredBackoff(int64_t initial_ms = 50, int64_t cap_ms = 5000)
      : initial_ms_(std::max<int64_t>(initial_ms, 1)), cap_ms_(std::max(cap_ms, initial_ms_)) {}

  // The next wait, in milliseconds; grows the delay for the call after.
  int64_t Next() {
    delay_ms_ = delay_ms_ == 0 ? initial_ms_ : std::min(delay_ms_ * 2, cap_ms_);
    // The per-thread engine of random.h: callers build one backoff per attempt loop on hot paths (the
    // compactor's Retry per batch), where seeding an engine of its own would cost more than the attempt.
    return delay_ms_ / 2 + static_cast<int64_t>(RandomU64() % static_cast<uint64_t>(delay_ms_ / 2 + 1));
  }
  // After a success: the next failure starts again from the initial delay.
  void Reset() { delay_ms_ = 0; }
  int64_t current_ms() const { return delay_ms_; }

 private:
  int64_t initial_ms_;
  int64_t cap_ms_;
  int64_t delay_ms_ = 0;
};

}  // namespace streamfleet
