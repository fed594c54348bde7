// The task queue (EnqueueTask -> two WorkerServices under Run) on a real 3+3 Redis Cluster while the cluster
// changes under it: the master of one queue shard SIGKILLed mid-run (its replica promoted) and another
// shard's slot migrated mid-run (ASK / TRYAGAIN while it moves, MOVED after). Immediate, delayed and
// fail-once-then-retry tasks. Verified as the reliability suite does for at-least-once delivery: every task
// id ran to success at least once, its effect (recorded once per id, like an HSETNX) is there exactly once
// and for no other id, nothing was dead-lettered, and nothing is left pending, unread or scheduled.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "queue-worker/worker_service.h"
#include "streamfleet/base/time.h"
#include "streamfleet/redis/cluster_slots.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "support/map_env.h"
#include "streamfleet/testing/redis_cluster.h"
#include "support/wait.h"

namespace streamfleet {
namespace {

using std::chrono::milliseconds;

constexpr int kShards = 6;  // more shards than masters: every master serves some of the queue

class TaskQueueClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new testing::RedisCluster(); }
  static void TearDownTestSuite() { delete cluster_; }

  void SetUp() override {
    cluster_->FlushAll();
    env_ = cluster_->env();
    env_.insert({{"TASK_QUEUE_SHARDS", std::to_string(kShards)},
                 {"QUEUES", "default:1"},
                 {"WORKER_CONCURRENCY", "2"},
                 {"VISIBILITY_TIMEOUT", "1s"},
                 // Deliveries lost with the killed master or refused mid-failover must not dead-letter a task.
                 {"MAX_DELIVERIES", "50"},
                 {"TASK_MAX_ATTEMPTS", "50"},
                 {"TASK_BACKOFF_BASE", "200ms"},
                 {"TASK_BACKOFF_CAP", "500ms"},
                 {"REDIS_TIMEOUT", "1s"}});
    config_ = LoadConfig(testing::MapEnv(env_), "127.0.0.1:0").value();
    redis_ = RedisClient::Connect(config_.redis).value();
  }

  // Enqueues one task the way a producer does, retrying what fails (kUnavailable while a master is down or a
  // slot moves). The id is fixed, so a retry whose first attempt did land is the same task delivered twice
  // (at-least-once), never a second task.
  void Produce(const TaskKeys& keys, const std::string& id, const std::string& type, int64_t delay_ms) {
    EnqueueOptions o;
    o.id = id;
    Status last;
    bool enqueued = testing::WaitUntil([&] {
      const int64_t now = WallClockMs();
      o.run_at_ms = delay_ms > 0 ? now + delay_ms : 0;
      auto r = EnqueueTask(*redis_, keys, type, "{}", o, now);
      last = r.status();
      return r.ok();
    }, 60000);
    if (!enqueued) {
      ADD_FAILURE() << "task " << id << ": " << last.ToString();
      return;
    }
    if (delay_ms > 0) {
      std::lock_guard<std::mutex> l(mu_);
      run_at_[id] = o.run_at_ms;
    }
  }

  // Runs, successes and the effect of each task, recorded by the handlers.
  struct Runs {
    int failed_first_attempts = 0;
    int successes = 0;
    int64_t first_started_ms = 0;
  };
  Status Handle(const worker::TaskContext& c, bool fail_first_attempt) {
    // A run that takes time on purpose: long enough that the run spans the kill and the move.
    std::this_thread::sleep_for(milliseconds(3));
    std::lock_guard<std::mutex> l(mu_);
    Runs& r = runs_[c.task.id()];
    if (r.first_started_ms == 0) r.first_started_ms = WallClockMs();
    if (fail_first_attempt && c.task.attempt() == 0) {
      ++r.failed_first_attempts;
      return Status::Unavailable("fails its first attempt");
    }
    ++r.successes;
    effects_.insert(c.task.id());  // the idempotent effect: applied once per id however often it runs
    return Status::Ok();
  }
  int Succeeded() {
    std::lock_guard<std::mutex> l(mu_);
    return static_cast<int>(effects_.size());
  }

  // What is left in the queue, over every shard: pending entries, entries never delivered, scheduled tasks.
  // -1 while Redis does not answer.
  int64_t Leftover(const TaskKeys& keys) {
    int64_t n = 0;
    for (const auto& s : keys.QueueShards("default")) {
      auto st = GetStreamStats(*redis_, s);
      if (!st.ok()) return -1;
      std::string after = "0-0";
      for (const auto& g : st->groups) {
        if (g.name != TaskKeys::Group()) continue;
        n += g.pending;
        after = g.last_delivered_id;
      }
      auto unread = redis_->Command({"XRANGE", s, "(" + after, "+"});
      auto scheduled = redis_->Command({"ZCARD", keys.ScheduledOf(s)});
      if (!unread.ok() || !scheduled.ok()) return -1;
      n += static_cast<int64_t>(unread->elements.size()) + scheduled->integer;
    }
    return n;
  }

  inline static testing::RedisCluster* cluster_ = nullptr;
  std::map<std::string, std::string> env_;
  Config config_;
  std::unique_ptr<RedisClient> redis_;
  std::mutex mu_;
  std::map<std::string, Runs> runs_;
  std::set<std::string> effects_;
  std::map<std::string, int64_t> run_at_;
};

TEST_F(TaskQueueClusterTest, MasterFailoverAndSlotMigrationMidRunLoseNoTaskAndApplyNoneTwice) {
  constexpr int kTasks = 900;
  worker::HandlerRegistry handlers;
  handlers.Register("ok", [this](worker::TaskContext& c) { return Handle(c, false); });
  handlers.Register("flaky", [this](worker::TaskContext& c) { return Handle(c, true); });

  // Two workers, as two processes would run them (own configs, registries, consumer names).
  RedisServerClock clock;
  std::vector<std::unique_ptr<Config>> configs;
  std::vector<std::unique_ptr<prometheus::Registry>> registries;
  std::vector<std::unique_ptr<worker::WorkerService>> fleet;
  for (int i = 0; i < 2; ++i) {
    auto env = env_;
    env["CONSUMER_NAME"] = "tq-" + std::to_string(i);
    configs.push_back(std::make_unique<Config>(LoadConfig(testing::MapEnv(env), "127.0.0.1:0").value()));
    registries.push_back(std::make_unique<prometheus::Registry>());
    fleet.push_back(std::make_unique<worker::WorkerService>(*configs.back(), clock, handlers, *registries.back()));
    ASSERT_TRUE(fleet.back()->EnsureGroups(*redis_).ok());
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> loops;
  for (auto& w : fleet) loops.emplace_back([&w, &stop] { w->Run(stop); });

  const TaskKeys keys = TaskKeys::FromConfig(config_);
  std::set<std::string> ids, flaky;
  // Every 10th task fails its first attempt and retries; every 7th waits 0.5-2.5 s in its shard's zset.
  auto produce = [&](int n) {
    std::string id = "task-" + std::to_string(n);
    bool fails = n % 10 == 3;
    if (fails) flaky.insert(id);
    ids.insert(id);
    Produce(keys, id, fails ? "flaky" : "ok", n % 7 == 0 ? 500 + (n % 5) * 500 : 0);
  };
  std::atomic<int> n = 0;
  for (; n < kTasks / 3; ++n) produce(n);

  // Failover: the master of queue shard 1 dies. Redis replicates asynchronously, so what it acknowledged is
  // only safe once a replica has it: WAIT first (what a producer that needs this guarantee does).
  const int victim_slot = KeySlot(keys.Queue("default", 1));
  const std::string victim = cluster_->MasterOf(victim_slot);
  auto waited = redis_->CommandOn(victim, {"WAIT", "1", "2000"});
  ASSERT_TRUE(waited.ok() && waited->integer >= 1) << "the replica did not confirm the writes";
  cluster_->KillMasterOf(victim_slot);
  for (; n < 2 * kTasks / 3; ++n) produce(n);  // retries until the replica is promoted
  cluster_->WaitForFailover();
  EXPECT_NE(cluster_->MasterOf(victim_slot), victim);

  // A slot migration while tasks keep coming and running: shard 2's slot moves to another master.
  const int moving_slot = KeySlot(keys.Queue("default", 2));
  const std::string from = cluster_->MasterOf(moving_slot);
  std::string to;
  for (const auto& m : cluster_->Masters()) {
    if (m != from) to = m;
  }
  std::thread migration([&] {
    cluster_->BeginMigration(moving_slot, to);
    // The slot stays in migration for a while on purpose (tasks keep coming meanwhile), and at least until a
    // few tasks were produced while it moved: a loaded machine could otherwise finish the migration first.
    const int at_begin = n.load();
    std::this_thread::sleep_for(milliseconds(300));
    testing::WaitUntil([&] { return n.load() >= std::min(at_begin + 5, kTasks); });
    cluster_->FinishMigration(moving_slot, to);
  });
  for (; n < kTasks; ++n) produce(n);
  migration.join();
  EXPECT_EQ(cluster_->MasterOf(moving_slot), to);

  // Every task succeeded, then nothing is left anywhere (a task delivered twice may still be retrying).
  EXPECT_TRUE(testing::WaitUntil([&] { return Succeeded() == kTasks; }, 60000))
      << Succeeded() << " of " << kTasks << " tasks succeeded";
  EXPECT_TRUE(testing::WaitUntil([&] { return Leftover(keys) == 0; }, 20000)) << "left: " << Leftover(keys);
  stop = true;
  for (auto& t : loops) t.join();

  std::lock_guard<std::mutex> l(mu_);
  EXPECT_EQ(effects_, ids) << "every task's effect, and no other";
  int twice = 0;
  for (const auto& id : ids) {
    const Runs& r = runs_[id];
    EXPECT_GE(r.successes, 1) << id;
    twice += r.successes > 1;
    if (flaky.count(id)) {
      EXPECT_GE(r.failed_first_attempts, 1) << id << " did not go through its retry";
    }
    if (run_at_.count(id)) {
      EXPECT_GE(r.first_started_ms, run_at_[id]) << id << " ran before it was due";
    }
  }
  // At-least-once: a task whose ack was lost with the killed master, or whose enqueue reply was, runs again.
  RecordProperty("tasks_succeeded_more_than_once", twice);
  std::cout << twice << " of " << kTasks << " tasks succeeded more than once (at-least-once delivery)\n";
  for (const auto& dlq : keys.AllDeadLetters({"default"})) {
    auto len = redis_->Command({"XLEN", dlq});
    ASSERT_TRUE(len.ok()) << len.status().ToString();
    EXPECT_EQ(len->integer, 0) << dlq << ": nothing dead-lettered";
  }
}

}  // namespace
}  // namespace streamfleet
