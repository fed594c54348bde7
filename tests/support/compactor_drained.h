#pragma once
// Test support: whether the compactors have caught up, for tests that must wait for "everything was
// handled" (including duplicates and any re-finalization they queue) instead of sleeping a while.
#include <string>
#include <vector>

#include "streamfleet/base/keys.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/redis/stream_admin.h"

namespace streamfleet::testing {

// True when, on every chunk stream and finalize stream, the compactor group has been delivered the last
// entry and has nothing pending (read and acknowledged everything). A stream without entries counts as
// drained; an error reading a stream counts as not drained (ask again).
inline bool CompactorDrained(RedisClient& redis, const KeySchema& k) {
  std::vector<std::string> streams;
  for (int i = 0; i < k.chunk_streams(); ++i) streams.push_back(k.ChunkStream(i));
  for (int i = 0; i < k.control_shards(); ++i) streams.push_back(k.FinalizeStream(i));
  for (const auto& stream : streams) {
    auto last = redis.Command({"XREVRANGE", stream, "+", "-", "COUNT", "1"});
    if (!last.ok()) return false;
    auto entries = ParseEntries(stream, *last);
    if (entries.empty()) continue;
    auto st = GetStreamStats(redis, stream);
    if (!st.ok()) return false;
    bool read_all = false;
    for (const auto& g : st->groups) {
      if (g.name == k.CompactorGroup()) read_all = g.pending == 0 && g.last_delivered_id == entries.back().id;
    }
    if (!read_all) return false;
  }
  return true;
}

}  // namespace streamfleet::testing
