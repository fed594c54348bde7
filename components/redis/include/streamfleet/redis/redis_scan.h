#pragma once
// SCAN over every master: in a cluster each master holds only its slots' keys, so a flush or an inspection
// that SCANs one connection would silently see a third of the keys.
#include <functional>
#include <string>
#include <vector>

#include "streamfleet/redis/redis.h"

namespace streamfleet {

// Calls `on_batch` with each SCAN batch (MATCH pattern COUNT count) of every master in turn (one server in
// standard mode); `on_batch` returns false to stop early. SCAN's guarantees hold per master: a key present
// for the whole scan is seen at least once (possibly twice). Fails on the first error, after the batches
// already delivered; kUnavailable when the masters cannot be listed.
Status ScanAll(RedisClient& client, const std::string& pattern, int count,
               const std::function<bool(const std::vector<std::string>& keys)>& on_batch);

}  // namespace streamfleet
