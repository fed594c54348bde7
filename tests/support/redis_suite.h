#pragma once
// Test support: the fixture of a suite that runs against one Redis (a redis-server, or the 3+3 cluster under
// STREAMFLEET_TEST_REDIS=cluster) for all its cases, flushed before each case, with a client connected to it.
//   class IngestTest : public testing::RedisSuite<> { ... };                       // ::testing::Test
//   class CompactorTest : public testing::RedisSuite<::testing::TestWithParam<std::string>> { ... };
// A fixture that overrides SetUp calls RedisSuite::SetUp() first.
#include <gtest/gtest.h>

#include <memory>

#include "streamfleet/redis/redis.h"
#include "support/test_redis.h"

namespace streamfleet::testing {

template <typename Base = ::testing::Test>
class RedisSuite : public Base {
 protected:
  // gtest runs suites one after the other: one server per suite, started here and stopped with it.
  static void SetUpTestSuite() { server_ = new TestRedis(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    server_->FlushAll();
    auto c = RedisClient::Connect(server_->config());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    redis_ = std::move(*c);
  }

  static inline TestRedis* server_ = nullptr;
  std::unique_ptr<RedisClient> redis_;
};

}  // namespace streamfleet::testing
