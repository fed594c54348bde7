#pragma once
// The queue-worker test fixture: one redis-server per suite, services built from a map environment, a
// manual clock, and helpers to enqueue, drain and read the dead letters and status hashes.
// STREAMFLEET_TEST_REDIS=cluster runs the same tests against a real 3+3 Redis Cluster (one per suite) with
// the cluster key schema and TASK_QUEUE_SHARDS=4 (ctest entry worker_cluster_test).
#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "queue-worker/worker_service.h"
#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/redis/stream_admin.h"
#include "support/map_env.h"
#include "streamfleet/testing/redis_cluster.h"
#include "streamfleet/testing/redis_server.h"

namespace streamfleet::worker {

constexpr int64_t kStart = 1'900'000'000'000;
constexpr int kTestQueueShards = 4;

inline bool ClusterRun() {
  const char* v = std::getenv("STREAMFLEET_TEST_REDIS");
  return v != nullptr && std::string(v) == "cluster";
}

class WorkerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (ClusterRun()) {
      cluster_ = new testing::RedisCluster();
    } else {
      server_ = new testing::RedisServer();
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    delete cluster_;
    server_ = nullptr;
    cluster_ = nullptr;
  }
  void SetUp() override {
    redis_ = RedisClient::Connect(RedisConfigForTest()).value();
    if (cluster_ != nullptr) {
      cluster_->FlushAll();
    } else {
      ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
    }
  }
  static RedisConfig RedisConfigForTest() { return cluster_ != nullptr ? cluster_->config() : server_->config(); }
  // The environment that points a process at the test's Redis (server or cluster).
  static std::map<std::string, std::string> RedisEnv() {
    if (cluster_ == nullptr) return {{"REDIS_PORT", std::to_string(server_->port())}};
    auto env = cluster_->env();
    env["TASK_QUEUE_SHARDS"] = std::to_string(kTestQueueShards);
    return env;
  }
  static TaskKeys TestTaskKeys() {
    return ClusterRun() ? TaskKeys("streamfleet", KeySchemaMode::kCluster, kTestQueueShards) : TaskKeys("streamfleet");
  }
  WorkerService& Make(std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env = RedisEnv();
    env.insert({{"QUEUES", "critical:6,default:3,low:1"},
                {"VISIBILITY_TIMEOUT", "200ms"},
                {"TASK_BACKOFF_BASE", "1s"},
                {"TASK_BACKOFF_CAP", "10s"},
                {"TASK_MAX_ATTEMPTS", "3"}});
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
  // Every task dead-letter stream of the fixture's queues (one in standard mode, one per shard in a cluster).
  std::vector<StreamEntry> DeadLetters() {
    std::vector<StreamEntry> out;
    for (const auto& dlq : keys_.AllDeadLetters({"critical", "default", "low"})) {
      for (auto& e : ParseEntries(dlq, *redis_->Command({"XRANGE", dlq, "-", "+"}))) out.push_back(std::move(e));
    }
    return out;
  }
  // A queue's length and its group's pending count, over all its shards (one stream in standard mode).
  int64_t QueueLen(const std::string& queue) {
    int64_t n = 0;
    for (const auto& s : keys_.QueueShards(queue)) n += redis_->Command({"XLEN", s})->integer;
    return n;
  }
  int64_t Pending(const std::string& queue) {
    int64_t n = 0;
    for (const auto& s : keys_.QueueShards(queue)) {
      auto st = GetStreamStats(*redis_, s);
      if (st.ok() && !st->groups.empty()) n += st->groups[0].pending;
    }
    return n;
  }
  // Helpers that look at a queue the way one hand-written reader would, over every shard (one stream in
  // standard mode), so a test asserts the same thing in both modes.

  // Takes up to `count` new tasks of a queue as consumer `consumer` (a worker that then dies, say): one
  // XREADGROUP per shard, stopping at the first shard that has any.
  std::vector<StreamEntry> ReadAs(const std::string& consumer, const std::string& queue, int count = 1) {
    for (const auto& s : keys_.QueueShards(queue)) {
      auto r = redis_->Command({"XREADGROUP", "GROUP", TaskKeys::Group(), consumer, "COUNT", std::to_string(count),
                                "STREAMS", s, ">"});
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) return {};
      auto entries = ParseStreamReply(*r);
      if (!entries.empty()) return entries;
    }
    return {};
  }
  // Entries of a queue its group has not been given yet (after each shard's last-delivered-id).
  int64_t Unread(const std::string& queue) {
    int64_t n = 0;
    for (const auto& s : keys_.QueueShards(queue)) {
      auto st = GetStreamStats(*redis_, s);
      EXPECT_TRUE(st.ok()) << st.status().ToString();
      if (!st.ok()) continue;
      std::string after = "0-0";
      for (const auto& g : st->groups) {
        if (g.name == TaskKeys::Group()) after = g.last_delivered_id;
      }
      n += static_cast<int64_t>(redis_->Command({"XRANGE", s, "(" + after, "+"})->elements.size());
    }
    return n;
  }
  // How long a queue's oldest undelivered task has waited: its oldest shard's, as the gauge reports it.
  double OldestWaiting(WorkerService& w, const std::string& queue) {
    double oldest = 0;
    for (const auto& s : keys_.QueueShards(queue)) {
      auto age = w.OldestWaitingSeconds(*redis_, s);
      EXPECT_TRUE(age.ok()) << age.status().ToString();
      if (age.ok()) oldest = std::max(oldest, *age);
    }
    return oldest;
  }
  // Successful calls of one Redis command (e.g. "evalsha") so far, summed over every master (INFO
  // commandstats calls - failed_calls: an EVALSHA answered NOSCRIPT, then repaired and re-sent, is one).
  int64_t CommandCalls(const std::string& command) {
    auto field = [](const std::string& info, const std::string& name) -> int64_t {
      auto at = info.find(name);
      return at == std::string::npos ? 0 : std::stoll(info.substr(at + name.size()));
    };
    int64_t n = 0;
    const std::string line = "cmdstat_" + command + ":";
    for (const auto& m : redis_->Masters()) {
      auto info = redis_->CommandOn(m, {"INFO", "commandstats"});
      EXPECT_TRUE(info.ok()) << info.status().ToString();
      if (!info.ok()) continue;
      auto at = info->str.find(line);
      if (at == std::string::npos) continue;
      const std::string stats = info->str.substr(at, info->str.find('\n', at) - at);
      n += field(stats, "calls=") - field(stats, "failed_calls=");
    }
    return n;
  }
  // `n` unique keys whose tasks all land on the same shard (TaskKeys::ShardFor), so a test can read them in
  // enqueue order in one batch; any keys do in standard mode.
  std::vector<std::string> UniqueKeysOnOneShard(int n, const std::string& stem) {
    std::vector<std::string> out;
    for (int i = 0; static_cast<int>(out.size()) < n; ++i) {
      std::string k = stem + ":" + std::to_string(i);
      if (keys_.ShardFor(k) == 0) out.push_back(k);
    }
    return out;
  }

  // Pauses / resumes a queue the way operators do (streamfleetctl, admin): works in both modes.
  void SetPaused(const std::string& queue, bool paused) {
    ASSERT_TRUE(SetQueuePaused(*redis_, keys_, queue, paused).ok());
  }
  std::string StatusField(const std::string& id, const std::string& f) {
    auto r = redis_->Command({"HGET", keys_.Status(id), f});
    return r.ok() ? r->str : "";
  }

  inline static testing::RedisServer* server_ = nullptr;
  inline static testing::RedisCluster* cluster_ = nullptr;
  std::unique_ptr<RedisClient> redis_;
  ManualClock clock_{kStart};
  TaskKeys keys_ = TestTaskKeys();
  HandlerRegistry handlers_;
  prometheus::Registry registry_;
  std::vector<std::unique_ptr<Config>> configs_;  // services keep references
  std::vector<std::unique_ptr<WorkerService>> services_;
};

}  // namespace streamfleet::worker
