// TASK_LIMITS (streamfleet/taskqueue/task_limits.h) with real WorkerServices on one Redis: a type's
// max_running holds across workers, per_second caps the starts in every second, and a held-back task waits in
// the scheduled set (not an attempt) and runs later.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_limits.h"
#include "support/wait.h"
#include "tests/worker/worker_fixture.h"

namespace streamfleet::worker {
namespace {

class LimitsTest : public WorkerTest {
 protected:
  std::string Field(const std::string& id, const std::string& f) {
    auto v = redis_->Command({"HGET", keys_.Status(id), f});
    return v.ok() ? v->str : "";
  }
};

TEST_F(LimitsTest, MaxRunningHoldsAcrossWorkers) {
  std::atomic<bool> release{false}, started{false};
  std::atomic<int> runs{0};
  handlers_.Register("export", [&](TaskContext&) {
    ++runs;
    started = true;
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return Status::Ok();
  });
  WorkerService& a = Make({{"TASK_LIMITS", "export=1/0"}});
  WorkerService& b = Make({{"TASK_LIMITS", "export=1/0"}});
  std::string first = Enqueue("export");
  auto own = RedisClient::Connect(RedisConfigForTest()).value();  // the runner thread's own connection
  std::thread runner([&] {
    auto r = a.PollOnce(*own, "a", 10);
    EXPECT_TRUE(r.ok() && *r == 1);
  });
  while (!started.load()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::string second = Enqueue("export");
  Drain(b, "b");  // reads the second export and puts it back: one may run fleet-wide
  EXPECT_EQ(runs.load(), 1) << "the second export did not start";
  EXPECT_EQ(Field(second, "state"), "scheduled");
  EXPECT_EQ(Field(second, "held_by"), "max_running");
  EXPECT_EQ(Field(second, "attempts"), "0") << "being held back is not an attempt";
  EXPECT_EQ(redis_->Command({"ZCARD", TaskPermitsKey("streamfleet", "export")})->integer, 1);
  release = true;
  runner.join();
  EXPECT_EQ(redis_->Command({"ZCARD", TaskPermitsKey("streamfleet", "export")})->integer, 0) << "released";
  ASSERT_TRUE(b.HousekeepOnce(*redis_, "hk").ok());  // the manual clock is past its run_at: due now
  Drain(b, "b");
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(Field(first, "state"), "succeeded");
  EXPECT_EQ(Field(second, "state"), "succeeded");
}

// Entry ids are unique within one stream only: two queues (or two shards of one) give out the same id in the
// same millisecond. Two such deliveries shared one permit (the token was the entry id), so with max_running 2 a
// third task of the type started beside them.
TEST_F(LimitsTest, DeliveriesWithTheSameEntryIdInTwoQueuesTakeAPermitEach) {
  std::atomic<bool> release{false};
  std::atomic<int> running{0};
  handlers_.Register("export", [&](TaskContext&) {
    ++running;
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return Status::Ok();
  });
  WorkerService& w = Make({{"TASK_LIMITS", "export=2/0"}});
  std::vector<std::string> ids;
  for (const char* queue : {"critical", "default"}) {
    EnqueueOptions o;
    o.queue = queue;
    ids.push_back(Enqueue("export", "{}", o));
    // The same entry id in both queues: the task's entry moved to it.
    std::string stream;  // the queue's shard that holds it (a cluster run has several)
    for (const auto& shard : keys_.QueueStreams({queue})) {
      if (redis_->Command({"XLEN", shard})->integer > 0) stream = shard;
    }
    auto entries = redis_->Command({"XRANGE", stream, "-", "+"});
    ASSERT_TRUE(entries.ok());
    ASSERT_EQ(entries->elements.size(), 1u);
    std::vector<std::string> add = {"XADD", stream, "4000000000000-0"};
    for (const auto& f : entries->elements[0].elements[1].elements) add.push_back(f.str);
    ASSERT_TRUE(redis_->Command({"XDEL", stream, entries->elements[0].elements[0].str}).ok());
    ASSERT_TRUE(redis_->Command(add).ok());
  }
  ids.push_back(Enqueue("export"));
  std::vector<std::thread> runners;
  for (int i = 0; i < 3; ++i) {
    runners.emplace_back([&, i] {
      auto own = RedisClient::Connect(RedisConfigForTest()).value();
      (void)w.PollOnce(*own, "r" + std::to_string(i), 10);
    });
  }
  ASSERT_TRUE(testing::WaitUntil([&] { return running.load() >= 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // time for a third to start, were it let
  EXPECT_EQ(running.load(), 2);
  EXPECT_EQ(redis_->Command({"ZCARD", TaskPermitsKey("streamfleet", "export")})->integer, 2) << "one permit each";
  release = true;
  for (auto& t : runners) t.join();
  EXPECT_EQ(redis_->Command({"ZCARD", TaskPermitsKey("streamfleet", "export")})->integer, 0) << "each released";
}

// A task whose lease lapsed is claimed and started by another worker while the first still runs it: each
// delivery holds a permit of its own. They shared one (the token was the stream and entry id): the second
// delivery's ZADD added nothing, so a third task could start beside the two, and the first one's release at
// its end freed the second's.
TEST_F(LimitsTest, TwoDeliveriesOfOneTaskHoldAPermitEach) {
  std::atomic<bool> release{false}, started{false};
  handlers_.Register("export", [&](TaskContext&) {
    started = true;
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return Status::Ok();
  });
  WorkerService& a = Make({{"TASK_LIMITS", "export=2/0"}});
  Enqueue("export");
  std::string stream, entry;
  for (const auto& shard : keys_.QueueStreams({"default"})) {
    auto r = redis_->Command({"XRANGE", shard, "-", "+"});
    if (r.ok() && !r->elements.empty()) stream = shard, entry = r->elements[0].elements[0].str;
  }
  ASSERT_FALSE(entry.empty());
  auto own = RedisClient::Connect(RedisConfigForTest()).value();
  std::thread runner([&] { (void)a.PollOnce(*own, "a", 10); });
  // EXPECTs only until the runner is joined (an ASSERT returning here would leave it joinable: terminate).
  EXPECT_TRUE(testing::WaitUntil([&] { return started.load(); }));
  const std::string permits = TaskPermitsKey("streamfleet", "export");
  EXPECT_EQ(redis_->Command({"ZCARD", permits})->integer, 1);
  // The second delivery takes its permit as Executor::Permit does.
  auto second = AcquireTaskPermit(*redis_, "streamfleet", "export", TaskLimit{2, 0},
                                  TaskPermitToken(stream, entry, 2), WallClockMs(), 600'000);
  EXPECT_TRUE(second.ok() && *second == LimitOutcome::kAdmitted) << second.status().ToString();
  EXPECT_EQ(redis_->Command({"ZCARD", permits})->integer, 2) << "the two deliveries hold one permit";
  auto third = AcquireTaskPermit(*redis_, "streamfleet", "export", TaskLimit{2, 0}, TaskPermitToken(stream, "9-9", 1),
                                 WallClockMs(), 600'000);
  EXPECT_TRUE(third.ok() && *third == LimitOutcome::kTooManyRunning);
  release = true;
  runner.join();
  EXPECT_EQ(redis_->Command({"ZCARD", permits})->integer, 1) << "the first delivery's end freed the second's permit";
}

// A limited task running longer than its permit's lease (TASK_LIMITS without a TASK_TIMEOUT: 10 minutes) lost
// its place: the permit expired while it ran and another task of the type started beside it. The running
// task's heartbeat renews the permit with its lease (here one every ~66 ms: VISIBILITY_TIMEOUT 200 ms).
TEST_F(LimitsTest, ARunningTasksPermitIsRenewedWithItsLease) {
  std::atomic<bool> release{false}, started{false};
  handlers_.Register("export", [&](TaskContext&) {
    started = true;
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return Status::Ok();
  });
  WorkerService& a = Make({{"TASK_LIMITS", "export=1/0"}});
  std::string id = Enqueue("export");
  auto own = RedisClient::Connect(RedisConfigForTest()).value();
  std::thread runner([&] {
    auto r = a.PollOnce(*own, "a", 10);
    EXPECT_TRUE(r.ok() && *r == 1);
  });
  ASSERT_TRUE(testing::WaitUntil([&] { return started.load(); }));
  const std::string permits = TaskPermitsKey("streamfleet", "export");
  auto expiry = [&] {
    auto r = redis_->Command({"ZRANGE", permits, "0", "-1", "WITHSCORES"});
    return r.ok() && r->elements.size() == 2 ? std::stoll(r->elements[1].str) : int64_t{0};
  };
  const int64_t first = expiry();
  ASSERT_GT(first, WallClockMs() + 500'000) << "the permit's default lease (10 minutes)";
  EXPECT_TRUE(testing::WaitUntil([&] { return expiry() > first + 100; }, 3000)) << "never renewed: " << first;
  release = true;
  runner.join();
  EXPECT_EQ(redis_->Command({"ZCARD", permits})->integer, 0) << "released when the task ended, not taken again";
  EXPECT_EQ(Field(id, "state"), "succeeded");
}

TEST_F(LimitsTest, PerSecondCapsTheStartsInEverySecond) {
  std::mutex mu;
  std::map<int64_t, int> starts;  // wall-clock second -> tasks started in it
  handlers_.Register("ping", [&](TaskContext&) {
    std::lock_guard<std::mutex> l(mu);
    ++starts[WallClockMs() / 1000];
    return Status::Ok();
  });
  WorkerService& w = Make({{"TASK_LIMITS", "ping=0/3"}});
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(Enqueue("ping"));
  const int64_t deadline = WallClockMs() + 8000;
  auto ran = [&] {
    std::lock_guard<std::mutex> l(mu);
    int n = 0;
    for (const auto& [second, count] : starts) n += count;
    return n;
  };
  while (ran() < 8 && WallClockMs() < deadline) {
    Drain(w, "w");
    ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(ran(), 8) << "every task ran in the end";
  for (const auto& [second, n] : starts) EXPECT_LE(n, 3) << "second " << second;
  EXPECT_GE(starts.size(), 3u) << "8 tasks at 3 per second take at least 3 seconds";
  for (const auto& id : ids) EXPECT_EQ(Field(id, "attempts"), "1") << "held back, never failed";
}

}  // namespace
}  // namespace streamfleet::worker
