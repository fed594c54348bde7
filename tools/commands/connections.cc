#include "tools/commands/connections.h"

#include "tools/commands/failure.h"

namespace streamfleet::ctl {

std::unique_ptr<RedisClient> ConnectRedis(const Config& config) {
  return Must(RedisClient::Connect(config.redis), "redis");
}

std::unique_ptr<SqlStore> OpenStore(const Config& config) {
  auto store = Must(SqlStore::Open(config.database_url), "database");
  Must(store->Ping(), "database");
  return store;
}

}  // namespace streamfleet::ctl
