#include "streamfleet/redis/pooled_redis_commands.h"

namespace streamfleet {

StatusOr<RedisValue> PooledRedisCommands::Command(const std::vector<std::string>& argv, int extra_timeout_ms) {
  auto lease = pool_.Acquire();
  if (!lease.ok()) return lease.status();
  return (*lease)->Command(argv, extra_timeout_ms);
}

StatusOr<std::vector<RedisValue>> PooledRedisCommands::Pipeline(const std::vector<std::vector<std::string>>& commands,
                                                                int extra_timeout_ms) {
  auto lease = pool_.Acquire();
  if (!lease.ok()) return lease.status();
  return (*lease)->Pipeline(commands, extra_timeout_ms);
}

StatusOr<RedisValue> PooledRedisCommands::Eval(const LuaScript& script, const std::vector<std::string>& keys,
                                               const std::vector<std::string>& args) {
  auto lease = pool_.Acquire();
  if (!lease.ok()) return lease.status();
  return (*lease)->Eval(script, keys, args);
}

}  // namespace streamfleet
