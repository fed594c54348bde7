// AsyncRedis (hiredis async on libuv) against a real redis-server: commands from many threads, error
// translation, NOSCRIPT fallback, refused connections, kill + restart, timeouts, AUTH/SELECT, and that
// every callback runs exactly once whatever happens to the connection.
#include "streamfleet/redis/async_redis.h"

#include <gtest/gtest.h>

#include <atomic>
#include <algorithm>
#include <condition_variable>
#include <future>
#include <map>
#include <thread>

#include "streamfleet/redis/redis.h"
#include "streamfleet/testing/redis_server.h"
#include "support/wait.h"

namespace streamfleet {
namespace {

using namespace std::chrono_literals;

// Records how often each callback ran and with what, so "exactly once" can be checked.
class CallLog {
 public:
  AsyncRedis::Callback For(int id) {
    return [this, id](StatusOr<RedisValue> r) {
      std::lock_guard<std::mutex> l(mu_);
      calls_[id].push_back(r.status());
      ++total_;
      cv_.notify_all();
    };
  }
  bool WaitFor(int n, std::chrono::milliseconds limit = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, limit, [&] { return total_ >= n; });
  }
  std::map<int, std::vector<Status>> calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, std::vector<Status>> calls_;
  int total_ = 0;
};

template <typename F>
StatusOr<RedisValue> Eventually(F f) {
  StatusOr<RedisValue> r = Status::Unavailable("never tried");
  testing::WaitUntil([&] {
    r = f();
    return r.ok();
  });
  return r;
}

// How many clients the server has parked in a blocking command (INFO clients), asked on a connection of its
// own; -1 when it cannot tell.
int64_t BlockedClients(const RedisConfig& config) {
  auto c = RedisClient::Connect(config);
  if (!c.ok()) return -1;
  auto info = (*c)->Command({"INFO", "clients"});
  if (!info.ok()) return -1;
  auto at = info->str.find("blocked_clients:");
  return at == std::string::npos ? -1 : std::stoll(info->str.substr(at + 16));
}

class AsyncRedisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new testing::RedisServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    redis_ = std::make_unique<AsyncRedis>(server_->config());
    ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
  }
  static testing::RedisServer* server_;
  std::unique_ptr<AsyncRedis> redis_;
};
testing::RedisServer* AsyncRedisTest::server_ = nullptr;

TEST_F(AsyncRedisTest, CommandsFromManyThreadsShareOneConnection) {
  std::string v("a\0b\xff", 4);
  ASSERT_TRUE(redis_->Command({"SET", "bin", v}).ok());
  EXPECT_EQ(redis_->Command({"GET", "bin"})->str, v);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 500; ++i) ASSERT_TRUE(redis_->Command({"INCR", "n"}).ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(redis_->Command({"GET", "n"})->AsInt(), 4000);
  EXPECT_EQ(redis_->connects(), 1);
  // One connection for all of it (plus the test's own CLIENT LIST).
  auto clients = redis_->Command({"CLIENT", "LIST"});
  ASSERT_TRUE(clients.ok());
  EXPECT_EQ(std::count(clients->str.begin(), clients->str.end(), '\n'), 1) << clients->str;
}

TEST_F(AsyncRedisTest, ErrorRepliesAreTranslatedAndGroupCreationIsIdempotent) {
  ASSERT_TRUE(redis_->Command({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}).ok());
  auto again = redis_->Command({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"});
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  auto nogroup = redis_->Command({"XREADGROUP", "GROUP", "nope", "c", "STREAMS", "s", ">"});
  EXPECT_EQ(nogroup.status().code(), StatusCode::kFailedPrecondition) << nogroup.status().ToString();
  EXPECT_EQ(redis_->Command({"NOSUCHCOMMAND"}).status().code(), StatusCode::kInternal);
}

TEST_F(AsyncRedisTest, EvalFallsBackToEvalOnNoscript) {
  LuaScript script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  ASSERT_TRUE(redis_->Command({"SCRIPT", "FLUSH"}).ok());
  auto first = redis_->Eval(script, {"k"}, {"5"});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->integer, 5);
  // Loaded by the EVAL: the next call is a plain EVALSHA hit, and the script ran once per call.
  EXPECT_EQ(redis_->Eval(script, {"k"}, {"5"})->integer, 10);
  EXPECT_EQ(redis_->Command({"SCRIPT", "EXISTS", script.sha()})->elements.at(0).integer, 1);
}

TEST_F(AsyncRedisTest, RefusedConnectionIsReportedToEveryCaller) {
  RedisConfig c = server_->config();
  c.port = testing::FreePort();
  AsyncRedis down(c);
  CallLog log;
  for (int i = 0; i < 20; ++i) down.Send({"PING"}, log.For(i));
  ASSERT_TRUE(log.WaitFor(20)) << "a refused connect must not swallow callbacks (the stock adapter's bug)";
  for (auto& [id, calls] : log.calls()) {
    ASSERT_EQ(calls.size(), 1u) << "callback " << id;
    EXPECT_EQ(calls[0].code(), StatusCode::kUnavailable) << calls[0].ToString();
  }
  auto r = down.Command({"PING"});
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(down.connected());
}

TEST_F(AsyncRedisTest, ReconnectsAfterKillAndRestartWithEveryCallbackCalledOnce) {
  ASSERT_TRUE(redis_->Command({"SET", "before", "1"}).ok());
  CallLog log;
  // One parked in a finite BLOCK, many more queued behind it on the same connection.
  redis_->Send({"BLPOP", "never", "5"}, log.For(0), 5000);
  for (int i = 1; i <= 50; ++i) redis_->Send({"BLPOP", "never", "5"}, log.For(i), 5000);
  ASSERT_TRUE(testing::WaitUntil([&] { return BlockedClients(server_->config()) >= 1; })) << "the BLPOP never parked";
  server_->Kill();
  ASSERT_TRUE(log.WaitFor(51, 20s));
  for (auto& [id, calls] : log.calls()) {
    ASSERT_EQ(calls.size(), 1u) << "callback " << id;
    EXPECT_EQ(calls[0].code(), StatusCode::kUnavailable) << calls[0].ToString();
  }
  EXPECT_FALSE(redis_->connected());
  auto during = redis_->Command({"INCR", "counter"});
  EXPECT_TRUE(during.status().retryable()) << during.status().ToString();
  server_->Start();
  auto after = Eventually([&] { return redis_->Command({"INCR", "counter"}); });
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->integer, 1) << "the failed INCR must not have run; the successful one exactly once";
  EXPECT_EQ(redis_->connects(), 2);
  EXPECT_TRUE(redis_->connected());
  // Letting time pass is the point: no callback may run (again) after the reconnect, however long we look.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(log.calls().size(), 51u) << "no callback may run twice after the reconnect";
}

TEST_F(AsyncRedisTest, UnansweredCommandTimesOutAndTheConnectionRecovers) {
  RedisConfig c = server_->config();
  c.command_timeout_ms = 300;
  AsyncRedis client(c);
  auto blocked = client.Command({"BLPOP", "never", "5"});  // no extra timeout: Redis takes too long
  EXPECT_EQ(blocked.status().code(), StatusCode::kDeadlineExceeded) << blocked.status().ToString();
  auto next = client.Command({"PING"});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(client.connects(), 2);
  // A finite BLOCK with its extra timeout is fine.
  auto waited = client.Command({"BLPOP", "never", "1"}, 1500);
  ASSERT_TRUE(waited.ok()) << waited.status().ToString();
  EXPECT_TRUE(waited->is_nil());
}

TEST_F(AsyncRedisTest, AuthAndSelectAreSentFirst) {
  testing::RedisServer secured("--requirepass hunter2");
  RedisConfig c = secured.config();
  {
    AsyncRedis anonymous(c);
    EXPECT_EQ(anonymous.Command({"PING"}).status().code(), StatusCode::kUnauthenticated);
  }
  c.password = "wrong";
  {
    AsyncRedis wrong(c);
    EXPECT_EQ(wrong.Command({"PING"}).status().code(), StatusCode::kUnauthenticated);
  }
  c.password = "hunter2";
  c.db = 3;
  AsyncRedis good(c);
  ASSERT_TRUE(good.Command({"SET", "where", "db3"}).ok());
  auto sync = RedisClient::Connect(c);
  ASSERT_TRUE(sync.ok());
  EXPECT_EQ((*sync)->Command({"GET", "where"})->str, "db3");
  c.db = 0;
  auto db0 = RedisClient::Connect(c);
  ASSERT_TRUE(db0.ok());
  EXPECT_TRUE((*db0)->Command({"GET", "where"})->is_nil());
}

// A refused AUTH or SELECT fails the commands behind it: pipelined after it they ran anyway, as the default
// user or in database 0. And a user name without a password authenticates (an ACL user of `nopass`): it
// sent no AUTH and ran as the default user. The blocking client, for the last part, alike.
TEST_F(AsyncRedisTest, ARefusedAuthOrSelectRunsNoCommandAndAUserAloneAuthenticates) {
  testing::RedisServer open_server;  // the default user on, no password, 16 databases
  auto admin = RedisClient::Connect(open_server.config());
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->Command({"ACL", "SETUSER", "writer", "on", ">secret", "~w:*", "+@all"}).ok());
  ASSERT_TRUE((*admin)->Command({"ACL", "SETUSER", "limited", "on", "nopass", "~lim:*", "+@all"}).ok());
  RedisConfig c = open_server.config();
  c.username = "writer";
  c.password = "wrong";
  {
    AsyncRedis wrong(c);
    auto r = wrong.Command({"SET", "w:1", "x"});
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << r.status().ToString();
    EXPECT_NE(r.status().message().find("AUTH"), std::string::npos) << r.status().ToString();
    // A refused handshake is a failed connect: never counted connected, and the backoff is not reset (every
    // attempt reconnected at the initial delay, logging "connected again").
    EXPECT_EQ(wrong.connects(), 0);
    auto again = wrong.Command({"SET", "w:1", "x"});
    EXPECT_FALSE(again.ok());
    EXPECT_EQ(wrong.connects(), 0);
  }
  c.password = "secret";
  c.db = 20;
  {
    AsyncRedis no_such_db(c);
    auto r = no_such_db.Command({"SET", "w:2", "x"});
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("SELECT"), std::string::npos) << r.status().ToString();
  }
  EXPECT_EQ((*admin)->Command({"EXISTS", "w:1", "w:2"})->integer, 0) << "nothing ran in database 0";
  c.db = 0;
  {
    AsyncRedis good(c);
    EXPECT_TRUE(good.Command({"SET", "w:3", "x"}).ok());
  }
  c.username = "limited";
  c.password = "";
  AsyncRedis limited(c);
  EXPECT_TRUE(limited.Command({"SET", "lim:1", "x"}).ok());
  auto outside = limited.Command({"SET", "other", "x"});
  EXPECT_FALSE(outside.ok()) << "ran as the default user";
  auto blocking = RedisClient::Connect(c);
  ASSERT_TRUE(blocking.ok());
  EXPECT_FALSE((*blocking)->Command({"SET", "other", "x"}).ok()) << "ran as the default user";
  EXPECT_EQ((*admin)->Command({"EXISTS", "other"})->integer, 0);
}

// A server at maxclients accepts each connection before refusing it: the client backs off as after a failed
// connect (it reconnected for every command, as fast as they came: ingest's fast path per request), and
// recovers once the server has room.
TEST_F(AsyncRedisTest, RefusedAtMaxClientsItBacksOffInsteadOfReconnectingPerCommand) {
  testing::RedisServer full("--maxclients 1");
  auto holder = RedisClient::Connect(full.config());
  ASSERT_TRUE(holder.ok());
  auto refused = [&] { return testing::ServerStat(**holder, "rejected_connections"); };  // what maxclients turned away
  const int64_t before = refused();
  AsyncRedis client(full.config());
  // For a second: a connection per command would be hundreds; backing off (25-50 ms, doubling), at most 6.
  testing::CallFor(1000, [&] { EXPECT_EQ(client.Command({"PING"}).status().code(), StatusCode::kUnavailable); });
  EXPECT_LE(refused() - before, 8) << "a connection per command to a full server";
  holder->reset();  // room again
  EXPECT_TRUE(testing::WaitUntil([&] { return client.Command({"PING"}).ok(); })) << "the client recovers";
}

TEST_F(AsyncRedisTest, StoppingAnswersPendingCallbacksOnce) {
  CallLog log;
  {
    AsyncRedis client(server_->config());
    client.Send({"BLPOP", "never", "10"}, log.For(1), 10000);
    ASSERT_TRUE(testing::WaitUntil([&] { return BlockedClients(server_->config()) >= 1; })) << "the BLPOP never parked";
  }
  ASSERT_TRUE(log.WaitFor(1, 20s));
  auto calls = log.calls();
  ASSERT_EQ(calls[1].size(), 1u);
  EXPECT_EQ(calls[1][0].code(), StatusCode::kUnavailable);
  EXPECT_NE(calls[1][0].message().find("stopped"), std::string::npos) << calls[1][0].message();
}

TEST_F(AsyncRedisTest, BlockingCallOnTheLoopThreadIsRefusedNotDeadlocked) {
  std::promise<Status> inner;
  redis_->Send({"PING"}, [&](StatusOr<RedisValue>) { inner.set_value(redis_->Command({"PING"}).status()); });
  auto s = inner.get_future().get();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace streamfleet
