#pragma once
// The clock seam. Time that several processes compare (deadlines, first/last chunk timestamps) comes
// from the Redis server's TIME inside the scripts that use it; a Clock only overrides that "now" so tests
// can move time without sleeping. SystemClock returns 0 = "use the Redis server clock".
#include <atomic>
#include <cstdint>

#include "streamfleet/base/time.h"

namespace streamfleet {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the epoch, or 0 to let Redis scripts use the server's TIME.
  virtual int64_t NowMsOverride() = 0;
  // The override, else this host's wall clock: for what one process records (a cutoff, a timestamp).
  int64_t NowMs() {
    int64_t t = NowMsOverride();
    return t != 0 ? t : WallClockMs();
  }
};

class RedisServerClock : public Clock {
 public:
  int64_t NowMsOverride() override { return 0; }
};

// A clock tests move by hand. Thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_ms) : now_(start_ms) {}
  int64_t NowMsOverride() override { return now_.load(); }
  void Advance(int64_t ms) { now_.fetch_add(ms); }
  void Set(int64_t ms) { now_.store(ms); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace streamfleet
