#pragma once
// Test fixture of the chunks tests that drive a ChunkBuffer against a real Redis: one redis-server per
// suite, flushed before each test, with the config, clock, client and buffer built on it.
#include <gtest/gtest.h>

#include <memory>

#include "streamfleet/base/clock.h"
#include "streamfleet/chunks/chunk_buffer.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/testing/redis_server.h"
#include "support/map_env.h"

namespace streamfleet {

class BufferOnRedisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new testing::RedisServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    auto c = LoadConfig(testing::MapEnv({{"REDIS_URL", server_->url()}}), "127.0.0.1:0");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    config_ = *c;
    auto r = RedisClient::Connect(config_.redis);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    redis_ = std::move(*r);
    ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
    buffer_ = std::make_unique<ChunkBuffer>(config_, clock_);
  }

  static inline testing::RedisServer* server_ = nullptr;
  Config config_;
  RedisServerClock clock_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<ChunkBuffer> buffer_;
};

}  // namespace streamfleet
