#pragma once
// Redis Sentinel: which server is the master now. Asked at every (re)connect of a RedisClient configured
// with REDIS_SENTINELS, so a failover is followed without a restart.
#include <string>
#include <utility>

#include "streamfleet/base/config.h"
#include "streamfleet/base/status.h"

namespace streamfleet {

// The master's host and port, from the first sentinel that knows it (SENTINEL get-master-addr-by-name),
// over TLS when config.tls says so. kUnavailable (with each sentinel's answer) when none does.
StatusOr<std::pair<std::string, int>> AskSentinelsForMaster(const RedisConfig& config);

}  // namespace streamfleet
