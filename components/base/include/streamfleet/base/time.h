#pragma once
// Wall-clock and monotonic time and the one timestamp format the fleet writes (rows' compacted_at, metadata,
// CLI output). Time that several processes compare comes from Redis (clock.h); these are for what one
// process measures or records.
#include <cstdint>
#include <string>

namespace streamfleet {

int64_t WallClockMs();   // milliseconds since the epoch
int64_t SteadyClockMs(); // monotonic milliseconds: timeouts and waits, never affected by clock steps
// "2026-11-25T18:00:00.123Z"
std::string IsoUtcFromMs(int64_t ms);
std::string IsoUtcNow();

}  // namespace streamfleet
