#pragma once
// Redis Sentinel: which server is the master now. Asked at every (re)connect of a RedisClient configured
// with REDIS_SENTINELS, so a failover is followed without a restart.
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "streamfleet/base/config.h"
#include "redis_transport.h"
#include "streamfleet/base/status.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

// The master's host and port, from the first sentinel that knows it (SENTINEL get-master-addr-by-name) and
// names one not in `refused` ("host:port" found not to be a master), over TLS when config.tls says so.
// kUnavailable (with each sentinel's answer) when none does.
StatusOr<std::pair<std::string, int>> AskSentinelsForMaster(const RedisConfig& config,
                                                            const std::set<std::string>& refused = {});

// A connection to one sentinel ("host:port"), authenticated with the Sentinel credentials when there are any.
StatusOr<std::unique_ptr<RedisTransport>> ConnectSentinel(const RedisConfig& config, const std::string& node);
// One command on a sentinel connection; an error reply becomes a non-OK Status.
StatusOr<RedisValue> AskSentinel(RedisTransport& t, const std::vector<std::string>& argv);
// The master's address in a `SENTINEL get-master-addr-by-name` answer.
StatusOr<std::pair<std::string, int>> MasterAddress(const RedisValue& answer, const std::string& master);

}  // namespace streamfleet
