#pragma once
// A thread-safe RedisCommands over a RedisPool: each call leases a client for its duration.
//
// Why: AsyncRedis (one hiredis async connection) does not speak Redis Cluster. Request-path code written
// against RedisCommands (ChunkWriter in ingest) can run on a cluster through this adapter instead, at the
// cost of a connection set per concurrent caller rather than one shared pipelined connection.
#include "streamfleet/redis/redis.h"

namespace streamfleet {

class PooledRedisCommands final : public RedisCommands {
 public:
  explicit PooledRedisCommands(RedisConfig config) : pool_(std::move(config)) {}

  // kUnavailable when no client can be connected; otherwise as RedisClient.
  StatusOr<RedisValue> Command(const std::vector<std::string>& argv, int extra_timeout_ms = 0) override;
  StatusOr<std::vector<RedisValue>> Pipeline(const std::vector<std::vector<std::string>>& commands,
                                             int extra_timeout_ms = 0) override;
  StatusOr<RedisValue> Eval(const LuaScript& script, const std::vector<std::string>& keys,
                            const std::vector<std::string>& args) override;

 private:
  RedisPool pool_;
};

}  // namespace streamfleet
