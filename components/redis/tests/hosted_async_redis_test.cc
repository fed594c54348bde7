// AsyncRedis hosted on a loop it does not own (AsyncRedis::OnLoop, as ingest's HTTP loop hosts its fast
// path's connection), against a real redis-server: commands sent on the loop thread are answered there,
// commands sent from a callback or from another thread still arrive, and Close() answers what is pending
// and lets the host's loop end.
#include <gtest/gtest.h>
#include <uv.h>

#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "streamfleet/redis/async_redis.h"
#include "streamfleet/testing/redis_server.h"
#include "support/wait.h"

namespace streamfleet {
namespace {

using namespace std::chrono_literals;

// A libuv loop on a thread of its own that runs posted functions, standing in for the HTTP server's loop.
class HostLoop {
 public:
  HostLoop() {
    uv_loop_init(&loop_);
    uv_async_init(&loop_, &wake_, [](uv_async_t* a) { static_cast<HostLoop*>(a->data)->RunPosted(); });
    wake_.data = this;
    thread_ = std::thread([this] {
      uv_run(&loop_, UV_RUN_DEFAULT);
      ended_.set_value();
    });
  }
  ~HostLoop() {
    if (thread_.joinable()) thread_.join();
    uv_loop_close(&loop_);
  }
  // Runs f on the loop thread.
  void Post(std::function<void()> f) {
    std::lock_guard<std::mutex> l(mu_);
    posted_.push_back(std::move(f));
    uv_async_send(&wake_);
  }
  // Runs f on the loop thread and waits for it.
  void Run(const std::function<void()>& f) {
    std::promise<void> done;
    Post([&] {
      f();
      done.set_value();
    });
    done.get_future().get();
  }
  // Closes the host's own handle on the loop thread; the loop ends once every other handle is closed too.
  void CloseOwnHandle() {
    Post([this] { uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr); });
  }
  bool EndsWithin(std::chrono::milliseconds limit) { return ended_future_.wait_for(limit) == std::future_status::ready; }
  uv_loop_t* loop() { return &loop_; }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  void RunPosted() {
    std::vector<std::function<void()>> run;
    {
      std::lock_guard<std::mutex> l(mu_);
      run.swap(posted_);
    }
    for (auto& f : run) f();
  }

  uv_loop_t loop_;
  uv_async_t wake_;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  std::promise<void> ended_;
  std::future<void> ended_future_ = ended_.get_future();
  std::thread thread_;
};

class HostedAsyncRedisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new testing::RedisServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    host_.Run([&] { redis_ = AsyncRedis::OnLoop(server_->config(), host_.loop()); });
  }
  void TearDown() override {
    host_.Run([&] { redis_->Close(); });
    host_.CloseOwnHandle();
    EXPECT_TRUE(host_.EndsWithin(5s)) << "a handle of the hosted client is still open after Close()";
  }
  static testing::RedisServer* server_;
  std::unique_ptr<AsyncRedis> redis_;  // destroyed after host_ (declared before it): once its loop has ended
  HostLoop host_;
};

// Waits for a future without hanging the suite when the behaviour under test breaks.
template <typename T>
T Within(std::future<T> f, std::chrono::milliseconds limit = 5s) {
  if (f.wait_for(limit) != std::future_status::ready) {
    ADD_FAILURE() << "no answer within " << limit.count() << " ms";
    return T{};
  }
  return f.get();
}
testing::RedisServer* HostedAsyncRedisTest::server_ = nullptr;

TEST_F(HostedAsyncRedisTest, ACommandSentOnTheLoopThreadIsAnsweredOnIt) {
  std::promise<std::pair<std::string, std::thread::id>> answered;
  host_.Post([&] {
    redis_->Send({"SET", "k", "v"}, [&](StatusOr<RedisValue> r) {
      answered.set_value({r.ok() ? r->str : r.status().ToString(), std::this_thread::get_id()});
    });
  });
  auto [reply, thread] = Within(answered.get_future());
  EXPECT_EQ(reply, "OK");
  EXPECT_EQ(thread, host_.thread_id());
}

TEST_F(HostedAsyncRedisTest, ACommandSentFromACallbackAndOneFromAnotherThreadArrive) {
  std::promise<std::string> chained;
  host_.Post([&] {
    redis_->Send({"SET", "a", "1"}, [&](StatusOr<RedisValue> first) {
      if (!first.ok()) return chained.set_value(first.status().ToString());
      // From inside a reply: queued for the loop's next turn, not issued from within the reply's handling.
      redis_->Send({"INCR", "a"}, [&](StatusOr<RedisValue> second) {
        chained.set_value(second.ok() ? std::to_string(second->AsInt()) : second.status().ToString());
      });
    });
  });
  EXPECT_EQ(Within(chained.get_future()), "2");
  // Blocking forms work from other threads (through the wake-up) and are refused on the loop thread.
  auto got = redis_->Command({"GET", "a"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->str, "2");
  Status on_loop;
  host_.Run([&] { on_loop = redis_->Command({"PING"}).status(); });
  EXPECT_EQ(on_loop.code(), StatusCode::kFailedPrecondition);
}

// Commands sent in one turn of the loop: the first (and every few after it, with what is buffered before
// it) reaches Redis while the loop thread is still busy, so Redis works while the host parses its next
// requests; the rest wait for the loop's writable event, written together (AsyncRedis::WriteEarly).
TEST_F(HostedAsyncRedisTest, TheFirstCommandsOfALoopTurnReachRedisWhileTheLoopIsStillBusy) {
  auto warm = redis_->Command({"PING"});  // connected, so this turn's commands are not waiting for a connect
  ASSERT_TRUE(warm.ok()) << warm.status().ToString();
  auto probe = RedisClient::Connect(server_->config());
  ASSERT_TRUE(probe.ok());
  constexpr int kCommands = 10;
  std::atomic<int> answered{0};
  bool first_arrived = false;
  bool last_arrived_early = true;
  host_.Run([&] {
    for (int i = 1; i <= kCommands; ++i) {
      redis_->Send({"SET", "turn:" + std::to_string(i), "1"}, [&](StatusOr<RedisValue> r) {
        if (r.ok()) ++answered;
      });
    }
    // Still inside the loop's turn: nothing runs the loop while this waits.
    auto exists = [&](int i) { return (*probe)->Command({"EXISTS", "turn:" + std::to_string(i)})->integer == 1; };
    first_arrived = testing::WaitUntil([&] { return exists(1); }, 2000);
    bool ninth = testing::WaitUntil([&] { return exists(9); }, 2000);
    last_arrived_early = !ninth || exists(kCommands);
  });
  EXPECT_TRUE(first_arrived) << "the turn's first command waited for the loop";
  EXPECT_FALSE(last_arrived_early) << "every command was written at once (one write per command)";
  EXPECT_TRUE(testing::WaitUntil([&] { return answered.load() == kCommands; }));
}

TEST_F(HostedAsyncRedisTest, CloseAnswersWhatIsPendingAndLaterCommandsAtOnce) {
  std::promise<Status> parked;
  host_.Post([&] { redis_->Send({"BLPOP", "never", "10"}, [&](StatusOr<RedisValue> r) { parked.set_value(r.status()); }, 10000); });
  auto blocked = RedisClient::Connect(server_->config());
  ASSERT_TRUE(blocked.ok());
  ASSERT_TRUE(testing::WaitUntil([&] {
    auto info = (*blocked)->Command({"INFO", "clients"});
    return info.ok() && info->str.find("blocked_clients:1") != std::string::npos;
  })) << "the BLPOP never parked";
  host_.Run([&] { redis_->Close(); });
  Status s = Within(parked.get_future(), 2s);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("stopped"), std::string::npos) << s.ToString();
  EXPECT_EQ(redis_->Command({"PING"}).status().code(), StatusCode::kUnavailable);  // answered, not hung
}

// On the loop thread a command goes to the connection at once: while the client backs off after a refused
// connect, its callback has run before Send returns (queued, it would run on a later turn).
TEST(HostedAsyncRedisAloneTest, OnTheLoopThreadACommandIsDispatchedBeforeSendReturns) {
  std::unique_ptr<AsyncRedis> redis;
  HostLoop host;
  RedisConfig dead;
  dead.host = "127.0.0.1";
  dead.port = testing::FreePort();
  host.Run([&] { redis = AsyncRedis::OnLoop(dead, host.loop()); });
  // The first backoff is 25-50 ms; a slow machine may miss it, so a command that started a new connect
  // instead is waited for and the check repeated (the backoff doubles each time).
  bool answered_inside = false;
  Status backing_off;
  for (int attempt = 0; attempt < 6 && !answered_inside; ++attempt) {
    std::promise<Status> refused;
    host.Run([&] {
      redis->Send({"PING"}, [&](StatusOr<RedisValue> r) {
        refused.set_value(r.status());
        backing_off = r.status();
      });
      answered_inside = backing_off.message().find("backing off") != std::string::npos;
    });
    EXPECT_EQ(Within(refused.get_future()).code(), StatusCode::kUnavailable);
  }
  EXPECT_TRUE(answered_inside) << "the command was queued instead of dispatched: " << backing_off.ToString();
  host.Run([&] { redis->Close(); });
  host.CloseOwnHandle();
  EXPECT_TRUE(host.EndsWithin(5s));
}

// A host name is looked up off the loop thread (hiredis would block it in getaddrinfo); commands sent
// meanwhile wait for the connection and are answered from it. Close() while commands are still queued for
// the loop answers them too.
TEST(HostedAsyncRedisAloneTest, AHostNameIsLookedUpAndQueuedCommandsAreAnsweredOnClose) {
  testing::RedisServer server;
  RedisConfig by_name = server.config();
  by_name.host = "localhost";
  std::unique_ptr<AsyncRedis> redis;
  HostLoop host;
  host.Run([&] { redis = AsyncRedis::OnLoop(by_name, host.loop()); });
  std::promise<std::string> first, second;
  host.Post([&] {
    redis->Send({"ECHO", "one"}, [&](StatusOr<RedisValue> r) { first.set_value(r.ok() ? r->str : r.status().ToString()); });
    redis->Send({"ECHO", "two"}, [&](StatusOr<RedisValue> r) { second.set_value(r.ok() ? r->str : r.status().ToString()); });
  });
  EXPECT_EQ(Within(first.get_future()), "one");
  EXPECT_EQ(Within(second.get_future()), "two");

  std::promise<Status> queued;
  host.Run([&] {
    // Sent from inside a callback, so it waits in the queue for the next turn; Close() comes first.
    redis->Send({"PING"}, [&](StatusOr<RedisValue>) {});
    redis->Send({"ECHO", "x"}, [&](StatusOr<RedisValue>) {
      redis->Send({"PING"}, [&](StatusOr<RedisValue> r) { queued.set_value(r.status()); });
      redis->Close();
    });
  });
  Status s = Within(queued.get_future());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("stopped"), std::string::npos) << s.ToString();
  host.CloseOwnHandle();
  EXPECT_TRUE(host.EndsWithin(5s));
}

}  // namespace
}  // namespace streamfleet
