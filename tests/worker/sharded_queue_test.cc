// The task queue end to end under WorkerService::Run: immediate, bulk, unique, delayed, retried,
// dead-lettered and paused/resumed tasks, each run exactly once (a retried one once per attempt). In
// standard mode against one redis-server; with STREAMFLEET_TEST_REDIS=cluster (worker_cluster_test) against
// a real 3+3 cluster with every queue split into stream shards.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "streamfleet/redis/stream_admin.h"
#include "support/wait.h"
#include "worker/worker_fixture.h"

namespace streamfleet::worker {
namespace {

class ShardedQueueTest : public WorkerTest {
 protected:
  // Runs per task id, and which queue each ran from.
  std::mutex mu_;
  std::map<std::string, int> runs_;
  std::map<std::string, std::string> queue_of_;

  void Count(TaskContext& c) {
    std::lock_guard<std::mutex> l(mu_);
    ++runs_[c.task.id()];
    queue_of_[c.task.id()] = c.task.queue();
  }
  size_t Ran() {
    std::lock_guard<std::mutex> l(mu_);
    return runs_.size();
  }
  int RunsOf(const std::string& id) {
    std::lock_guard<std::mutex> l(mu_);
    return runs_.count(id) ? runs_[id] : 0;
  }
  int64_t PendingEverywhere() {
    int64_t n = 0;
    for (const auto& s : keys_.QueueStreams({"critical", "default", "low"})) {
      auto st = GetStreamStats(*redis_, s);
      if (st.ok()) {
        for (const auto& g : st->groups) n += g.pending;
      }
    }
    return n;
  }
};

TEST_F(ShardedQueueTest, EveryKindOfTaskRunsExactlyOnceUnderRun) {
  handlers_.Register("ok", [this](TaskContext& c) {
    Count(c);
    return Status::Ok();
  });
  handlers_.Register("flaky", [this](TaskContext& c) {  // fails its first attempt only
    Count(c);
    return c.task.attempt() == 0 ? Status::Unavailable("upstream down") : Status::Ok();
  });
  handlers_.Register("doomed", [this](TaskContext& c) {  // a permanent error: dead-lettered at once
    Count(c);
    return Status::InvalidArgument("bad input");
  });
  auto& w = Make({{"WORKER_CONCURRENCY", "3"}, {"TASK_BACKOFF_BASE", "1s"}, {"TASK_BACKOFF_CAP", "1s"}});

  std::set<std::string> ok, flaky, doomed, low;
  SetPaused("low", true);  // before anything runs: low's tasks must wait for the resume
  for (const char* q : {"critical", "default"}) {
    EnqueueOptions o;
    o.queue = q;
    for (int i = 0; i < 15; ++i) ok.insert(Enqueue("ok", "{}", o));
  }
  std::vector<TaskToEnqueue> bulk(12, TaskToEnqueue{"ok", "{}", {}});
  auto added = EnqueueTasks(*redis_, keys_, bulk, kStart);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  for (const auto& r : *added) ok.insert(r.id);
  for (int i = 0; i < 5; ++i) {
    EnqueueOptions o;
    o.unique_key = "report:" + std::to_string(i);
    std::string id = Enqueue("ok", "{}", o);
    EXPECT_EQ(Enqueue("ok", "{}", o), id) << "a duplicate enqueue is the same task";
    ok.insert(id);
  }
  for (int i = 0; i < 8; ++i) {
    EnqueueOptions o;
    o.run_at_ms = kStart + 5'000;
    ok.insert(Enqueue("ok", "{}", o));
  }
  for (int i = 0; i < 6; ++i) flaky.insert(Enqueue("flaky"));
  for (int i = 0; i < 4; ++i) doomed.insert(Enqueue("doomed"));
  for (int i = 0; i < 10; ++i) {
    EnqueueOptions o;
    o.queue = "low";
    low.insert(Enqueue("ok", "{}", o));
  }
  const size_t open_tasks = ok.size() + flaky.size() + doomed.size();

  std::atomic<bool> stop{false};
  std::thread runner([&] { w.Run(stop); });
  // Delayed tasks and retries are due on the manual clock: move it while the fleet works.
  std::atomic<bool> ticking{true};
  std::thread ticker([&] {
    while (ticking.load()) {
      clock_.Advance(500);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  bool settled = testing::WaitUntil(
      [&] {
        for (const auto& id : flaky) {
          if (RunsOf(id) < 2) return false;
        }
        return Ran() >= open_tasks;
      },
      30000);
  EXPECT_TRUE(settled) << Ran() << " of " << open_tasks << " tasks ran";
  for (const auto& id : low) EXPECT_EQ(RunsOf(id), 0) << "paused queue served: " << id;

  SetPaused("low", false);
  EXPECT_TRUE(testing::WaitUntil([&] { return Ran() >= open_tasks + low.size(); }, 30000));
  // Let anything that would run twice show up before counting.
  EXPECT_TRUE(testing::WaitUntil([&] { return PendingEverywhere() == 0; }, 10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  runner.join();
  ticking = false;
  ticker.join();

  for (const auto& id : ok) {
    EXPECT_EQ(RunsOf(id), 1) << id;
    EXPECT_EQ(StatusField(id, "state"), "succeeded") << id;
  }
  for (const auto& id : low) {
    EXPECT_EQ(RunsOf(id), 1) << id;
    EXPECT_EQ(queue_of_[id], "low");
  }
  for (const auto& id : flaky) {
    EXPECT_EQ(RunsOf(id), 2) << "one failed attempt, one retry: " << id;
    EXPECT_EQ(StatusField(id, "state"), "succeeded") << id;
  }
  for (const auto& id : doomed) {
    EXPECT_EQ(RunsOf(id), 1) << id;
    EXPECT_EQ(StatusField(id, "state"), "dead") << id;
  }
  auto dead = DeadLetters();
  EXPECT_EQ(dead.size(), doomed.size());
  for (const auto& d : dead) {
    const std::string* src = d.Field("source_stream");
    ASSERT_NE(src, nullptr);
    EXPECT_EQ(keys_.QueueOf(*src), "default");
    // The dead letter sits next to the stream it came from (same shard in cluster mode).
    EXPECT_EQ(keys_.DeadLettersOf(*src), d.stream);
  }
  EXPECT_EQ(PendingEverywhere(), 0);
  int64_t scheduled = 0;
  for (const auto& z : keys_.AllScheduled({"critical", "default", "low"})) {
    scheduled += redis_->Command({"ZCARD", z})->integer;
  }
  EXPECT_EQ(scheduled, 0);
  if (keys_.cluster()) {
    int used = 0;
    for (const auto& s : keys_.QueueShards("default")) used += redis_->Command({"XLEN", s})->integer > 0;
    EXPECT_GT(used, 1) << "a queue spreads over its shards";
  }
}

}  // namespace
}  // namespace streamfleet::worker
