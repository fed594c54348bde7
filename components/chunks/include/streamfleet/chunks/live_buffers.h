#pragma once
// The generation buffers still being received, listed from the deadlines sorted sets (one per control shard)
// rather than by SCAN over the keyspace. Every buffer the compactor applied chunks to and has not yet queued
// for finalization has its idle deadline there (apply_chunks.lua), so listing costs O(live generations)
// whatever else the Redis holds: a bounded SCAN of a Redis shared with the cache saw a fraction of the
// buffers (the LLEN gauges and their alert missed the rest), an unbounded one walked millions of keys per
// admin page view. A finalized buffer still within its TTL is not listed: it no longer grows.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "streamfleet/base/keys.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

struct LiveBufferLength {
  GenerationId gen;
  std::string key;   // the buffer list (KeySchema::BufferKey)
  int64_t llen = 0;  // 0 when no chunk has reached the list yet (a FINISH marker ahead of its chunks)
};

// Calls `on_page` with each page (up to about `page_size`) of live buffers and their LLEN, each generation
// once; `on_page` returns false to stop early. A generation whose deadline is added or removed during the
// walk may be missed (ZSCAN's guarantee: one present throughout is seen). Fails on the first error.
Status ForEachLiveBuffer(RedisClient& redis, const KeySchema& keys, int page_size,
                         const std::function<bool(const std::vector<LiveBufferLength>&)>& on_page);

}  // namespace streamfleet
