// The SDK's handler wrapper (src/sdk_handler.h) as the worker's executor calls it: the Task view, results,
// Retry-After, the per-type concurrency limit of a process, cancellation while waiting for it. The worker
// loop around it is the queue-worker's own (tests/worker_test.cc); tests/install/custom_worker_test.sh runs
// an installed SDK worker end to end.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "queue-worker/handlers.h"
#include "sdk_handler.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/worker/worker.h"

namespace streamfleet::worker {
namespace {

struct Attempt {
  Config config;
  std::unique_ptr<RedisClient> redis = RedisClient::Lazy(config.redis);  // never used: not connected
  v1::TaskEnvelope task;
  std::atomic<bool> cancelled{false};

  Attempt() {
    task.set_id("t1");
    task.set_type("thumbnail.render");
    task.set_queue("media");
    task.set_payload(R"({"w": 64})");
    task.set_attempt(2);
    task.set_enqueued_at_ms(1700000000000);
  }
  Status Run(const Handler& h, std::string* result = nullptr, int64_t* retry_after_ms = nullptr) {
    TaskContext ctx{task, *redis, config, ""};
    ctx.cancelled = &cancelled;
    Status s = h(ctx);
    if (result) *result = ctx.result;
    if (retry_after_ms) *retry_after_ms = ctx.retry_after_ms;
    return s;
  }
};

TEST(WorkerSdkTest, TheHandlerSeesTheTaskAndSetsItsResult) {
  Attempt a;
  Handler h = SdkHandler(
      [](Task& t) -> Status {
        EXPECT_EQ(t.id(), "t1");
        EXPECT_EQ(t.type(), "thumbnail.render");
        EXPECT_EQ(t.queue(), "media");
        EXPECT_EQ(t.payload(), R"({"w": 64})");
        EXPECT_EQ(t.attempt(), 2);
        EXPECT_EQ(t.max_attempts(), 3);
        EXPECT_EQ(t.enqueued_at_ms(), 1700000000000);
        EXPECT_FALSE(t.cancelled());
        EXPECT_EQ(t.deadline(), std::chrono::steady_clock::time_point::max());
        auto j = t.payload_json();
        if (!j.ok()) return j.status();
        t.set_result("w=" + std::to_string((*j)["w"].get<int>()));
        return Status::Ok();
      },
      0, 3);
  std::string result;
  ASSERT_TRUE(a.Run(h, &result).ok());
  EXPECT_EQ(result, "w=64");
}

TEST(WorkerSdkTest, APayloadThatIsNotJsonIsInvalidArgument) {
  Attempt a;
  a.task.set_payload("{not json");
  Handler h = SdkHandler([](Task& t) { return t.payload_json().status(); }, 0, 5);
  Status s = a.Run(h);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("payload: ", 0), 0u) << s.message();
}

TEST(WorkerSdkTest, RetryAfterAndALongResultCut) {
  Attempt a;
  Handler h = SdkHandler(
      [](Task& t) {
        t.set_result(std::string(kMaxTaskResultBytes + 10, 'x'));
        t.retry_after(std::chrono::seconds(7));
        return Status::Unavailable("downstream busy");
      },
      0, 5);
  std::string result;
  int64_t retry_after_ms = 0;
  EXPECT_EQ(a.Run(h, &result, &retry_after_ms).code(), StatusCode::kUnavailable);
  EXPECT_EQ(result.size(), kMaxTaskResultBytes);
  EXPECT_EQ(retry_after_ms, 7000);
}

TEST(WorkerSdkTest, AtMostTheConcurrencyLimitRunAtOnceAndAThrowReleasesItsPlace) {
  std::atomic<int> running{0}, most{0}, ran{0};
  Handler h = SdkHandler(
      [&](Task& t) -> Status {
        int now = ++running;
        for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        --running;
        ++ran;
        if (t.id() == "throw") throw std::runtime_error("boom");
        return Status::Ok();
      },
      2, 5);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&h, i] {
      Attempt a;
      if (i % 3 == 0) a.task.set_id("throw");
      try {
        (void)a.Run(h);
      } catch (const std::exception&) {
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ran.load(), 8);
  EXPECT_EQ(most.load(), 2);
}

TEST(WorkerSdkTest, ATaskCancelledWhileWaitingForAPlaceFailsWithoutRunning) {
  std::atomic<bool> release{false};
  std::atomic<int> calls{0};
  Handler h = SdkHandler(
      [&](Task&) {
        ++calls;
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return Status::Ok();
      },
      1, 5);
  std::thread holder([&] {
    Attempt a;
    EXPECT_TRUE(a.Run(h).ok());
  });
  while (calls.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Attempt waiting;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    waiting.cancelled = true;  // what the watchdog does at the timeout
  });
  Status s = waiting.Run(h);
  canceller.join();
  release = true;
  holder.join();
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.ToString();
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace streamfleet::worker
