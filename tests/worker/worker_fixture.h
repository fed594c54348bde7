#pragma once
// The queue-worker test fixture: one redis-server per suite, services built from a map environment, a
// manual clock, and helpers to enqueue, drain and read the dead letters and status hashes.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "queue-worker/worker_service.h"
#include "support/map_env.h"
#include "support/redis_server.h"

namespace streamfleet::worker {

constexpr int64_t kStart = 1'900'000'000'000;

class WorkerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new testing::RedisServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    redis_ = RedisClient::Connect(server_->config()).value();
    ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
  }
  WorkerService& Make(std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env = {{"REDIS_PORT", std::to_string(server_->port())},
                                              {"QUEUES", "critical:6,default:3,low:1"},
                                              {"VISIBILITY_TIMEOUT", "200ms"},
                                              {"TASK_BACKOFF_BASE", "1s"},
                                              {"TASK_BACKOFF_CAP", "10s"},
                                              {"TASK_MAX_ATTEMPTS", "3"}};
    for (auto& [k, v] : extra) env[k] = v;
    auto c = LoadConfig(testing::MapEnv(env), "127.0.0.1:0");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    configs_.push_back(std::make_unique<Config>(*c));
    services_.push_back(std::make_unique<WorkerService>(*configs_.back(), clock_, handlers_, registry_));
    EXPECT_TRUE(services_.back()->EnsureGroups(*redis_).ok());
    return *services_.back();
  }
  std::string Enqueue(const std::string& type, const std::string& payload = "{}", EnqueueOptions o = {}) {
    auto r = EnqueueTask(*redis_, keys_, type, payload, o, clock_.NowMsOverride());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r->id;
  }
  int Drain(WorkerService& w, const std::string& consumer = "w") {
    int n = 0;
    for (int i = 0; i < 1000; ++i) {
      auto r = w.PollOnce(*redis_, consumer, 10);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok() || *r == 0) break;
      n += *r;
    }
    return n;
  }
  std::vector<StreamEntry> DeadLetters() {
    return ParseEntries(keys_.DeadLetters(), *redis_->Command({"XRANGE", keys_.DeadLetters(), "-", "+"}));
  }
  std::string StatusField(const std::string& id, const std::string& f) {
    auto r = redis_->Command({"HGET", keys_.Status(id), f});
    return r.ok() ? r->str : "";
  }

  inline static testing::RedisServer* server_ = nullptr;
  std::unique_ptr<RedisClient> redis_;
  ManualClock clock_{kStart};
  TaskKeys keys_{"streamfleet"};
  HandlerRegistry handlers_;
  prometheus::Registry registry_;
  std::vector<std::unique_ptr<Config>> configs_;  // services keep references
  std::vector<std::unique_ptr<WorkerService>> services_;
};

}  // namespace streamfleet::worker
