#pragma once
// Test support: the Redis a suite runs against. One redis-server by default; a real 3+3 Redis Cluster when
// STREAMFLEET_TEST_REDIS=cluster, so the same integration tests check the cluster path unchanged (the
// *_cluster ctest entries set it).
#include <map>
#include <memory>
#include <string>

#include "streamfleet/base/config.h"
#include "streamfleet/testing/redis_cluster.h"
#include "streamfleet/testing/redis_server.h"

namespace streamfleet::testing {

// True when STREAMFLEET_TEST_REDIS=cluster.
bool ClusterRequested();

class TestRedis {
 public:
  TestRedis();
  bool cluster() const { return cluster_ != nullptr; }
  RedisConfig config() const;
  // The environment a service config needs to reach it: REDIS_PORT, or REDIS_URL + REDIS_CLUSTER.
  std::map<std::string, std::string> env() const;
  void FlushAll();
  // The single server (nullptr in cluster mode): for tests that kill and restart it.
  RedisServer* server() { return server_.get(); }
  RedisCluster* nodes() { return cluster_.get(); }

 private:
  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<RedisCluster> cluster_;
};

}  // namespace streamfleet::testing
