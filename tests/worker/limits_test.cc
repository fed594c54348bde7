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
