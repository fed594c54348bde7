#pragma once
// The servers a streamfleetctl command talks to, opened from the fleet's configuration. Opened by the
// command that needs them (not up front) so that a command needing neither, or only one, works while the
// other is down.
#include <memory>

#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/sql/sql_store.h"

namespace streamfleet::ctl {

// Failure "redis: ..." when Redis cannot be reached.
std::unique_ptr<RedisClient> ConnectRedis(const Config& config);
// DATABASE_URL, pinged: Failure "database: ..." when it cannot be opened or does not answer.
std::unique_ptr<SqlStore> OpenStore(const Config& config);

}  // namespace streamfleet::ctl
