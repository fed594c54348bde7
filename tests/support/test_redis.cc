#include "support/test_redis.h"

#include <cstdlib>
#include <stdexcept>

#include "streamfleet/redis/redis.h"

namespace streamfleet::testing {

bool ClusterRequested() {
  const char* v = std::getenv("STREAMFLEET_TEST_REDIS");
  return v != nullptr && std::string(v) == "cluster";
}

TestRedis::TestRedis() {
  if (ClusterRequested()) {
    cluster_ = std::make_unique<RedisCluster>();
  } else {
    server_ = std::make_unique<RedisServer>();
  }
}

RedisConfig TestRedis::config() const { return cluster_ ? cluster_->config() : server_->config(); }

std::map<std::string, std::string> TestRedis::env() const {
  if (cluster_) return cluster_->env();
  return {{"REDIS_PORT", std::to_string(server_->port())}};
}

void TestRedis::FlushAll() {
  if (cluster_) {
    cluster_->FlushAll();
    return;
  }
  auto c = RedisClient::Connect(server_->config());
  if (!c.ok() || !(*c)->Command({"FLUSHALL"}).ok()) throw std::runtime_error("FLUSHALL failed");
}

}  // namespace streamfleet::testing
