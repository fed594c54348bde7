#pragma once
// How far the compactor group has got through the chunk streams, in ingest time. An idle deadline
// (ingest time of a generation's newest chunk + GENERATION_IDLE_TIMEOUT) may only fire once every chunk
// ingested before it has been applied: otherwise a backlog makes generations look idle whose next chunks
// are merely still queued, and each is finalized again and again while the compactors catch up (every
// finalization rewriting the whole row, slowing them further).
#include <cstdint>
#include <string>
#include <vector>

#include "streamfleet/redis/redis.h"

namespace streamfleet {

// The stream-id time (ms) before which every entry of `streams` has been delivered to `group` and
// acknowledged: the oldest pending entry or the oldest undelivered one, minus 1 ms, whichever is older.
// 0 when nothing is behind (every entry read and acknowledged; a missing stream or group counts as that).
// Conservative when stale: applying entries only moves it forward.
StatusOr<int64_t> ConsumedWatermarkMs(RedisCommands& redis, const std::vector<std::string>& streams,
                                      const std::string& group);

}  // namespace streamfleet
