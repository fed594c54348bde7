// A real redis-server answering errors instead of results: OOM (maxmemory reached under noeviction),
// READONLY (a replica of a master that is gone) and LOADING (a restart reading a large RDB). Ingest answers
// 503 with Retry-After and writes nothing; the compactor and the worker back off and retry, acknowledge
// nothing they did not apply, and finish the work once Redis answers again.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "badinput/pipeline.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "support/ingest_harness.h"
#include "streamfleet/testing/redis_server.h"
#include "support/sql_database.h"
#include "support/wait.h"

namespace streamfleet::testing {
namespace {

class RedisErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override { db_url_ = FreshDatabaseUrl("sqlite", "sf-redis-errors", &db_path_); }
  void TearDown() override {
    for (auto suffix : {"", "-wal", "-shm"}) std::remove((db_path_ + suffix).c_str());
  }
  // Posts a two-chunk generation; both chunks must be accepted.
  static void PostGeneration(IngestHarness& ingest, int64_t gen) {
    std::string path = "/v1/orgs/1/generations/" + std::to_string(gen) + "/chunks";
    ASSERT_EQ(ingest.Post(path, R"({"seq": 0, "data": "[\"kept\", "})").status, 202);
    ASSERT_EQ(ingest.Post(path, R"({"seq": 1, "data": "\"safe\"]", "final": true})").status, 202);
  }
  // Ingest answers 503 (never 500, never 202) with Redis's own reason and Retry-After.
  static void ExpectRefused(IngestHarness& ingest, const std::string& redis_error) {
    auto r = ingest.Post("/v1/orgs/1/generations/99/chunks", R"({"data": "refused"})");
    EXPECT_EQ(r.status, 503) << r.body;
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_EQ(j.value("error", ""), "redis_unavailable") << r.body;
    EXPECT_NE(j.value("detail", "").find(redis_error), std::string::npos) << r.body;
    EXPECT_NE(r.headers.find("Retry-After:"), std::string::npos) << r.headers;
  }
  static void ExpectCompacted(CompactorUnderTest& c, RedisClient& redis, int64_t gen) {
    EXPECT_TRUE(WaitUntil([&] { return c.Row(gen).has_value(); }, 10000)) << "generation " << gen << " not compacted";
    if (auto row = c.Row(gen)) {
      EXPECT_EQ(DecodedText(*row), "[\"kept\", \"safe\"]");
    }
    EXPECT_EQ(ReadStream(redis, c.keys().ChunkDeadLetterStream()).size(), 0u) << "nothing dead-lettered";
  }

  std::string db_url_, db_path_;
};

TEST_F(RedisErrorsTest, OutOfMemoryIs503ForIngestAndABackoffForTheConsumers) {
  RedisServer server("--maxmemory-policy noeviction");
  auto redis = RedisClient::Connect(server.config()).value();
  IngestHarness ingest(server.port());
  // A compactor that was running before (its groups exist: creating them is a write OOM refuses too).
  CompactorUnderTest c(server.port(), db_url_);
  c.Pump(1);
  PostGeneration(ingest, 1);
  TaskKeys keys("streamfleet");
  Config wc = MakeConfig(server.port(), {{"QUEUES", "default:1"}, {"VISIBILITY_TIMEOUT", "100ms"}});
  worker::HandlerRegistry handlers;
  int calls = 0;
  handlers.Register("flaky", [&](worker::TaskContext&) {
    return ++calls == 1 ? Status::Unavailable("first attempt fails") : Status::Ok();
  });
  ManualClock clock(1'900'000'000'000);
  prometheus::Registry registry;
  worker::WorkerService w(wc, clock, handlers, registry);
  ASSERT_TRUE(w.EnsureGroups(*redis).ok());
  ASSERT_TRUE(EnqueueTask(*redis, keys, "flaky", "{}", {}, 0).ok());

  ASSERT_TRUE(redis->Command({"CONFIG", "SET", "maxmemory", "1"}).ok());
  ExpectRefused(ingest, "OOM");
  c.StartLoop();
  // The task runs; its retry cannot be scheduled (ZADD refused), so it stays pending instead of being lost.
  auto polled = w.PollOnce(*redis, "w1", 10);
  EXPECT_TRUE(polled.ok()) << polled.status().ToString();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(PendingOf(*redis, keys.Queue("default")), 1);
  // The compactor reads the chunks and its writes are refused ...
  EXPECT_TRUE(WaitUntil([&] {
    return c.service().metrics().redis_errors.Value() > 0 && PendingOf(*redis, c.keys().ChunkStream(0)) == 2;
  })) << "the compactor saw no refusal, or did not read the chunks";
  // ... and letting it retry for a while on purpose changes nothing: no row, nothing acknowledged.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_FALSE(c.Row(1).has_value());
  EXPECT_GT(c.service().metrics().redis_errors.Value(), 0) << "the compactor saw the refusals";
  EXPECT_EQ(PendingOf(*redis, c.keys().ChunkStream(0)), 2) << "chunks read but not applied stay unacknowledged";

  ASSERT_TRUE(redis->Command({"CONFIG", "SET", "maxmemory", "0"}).ok());
  ExpectCompacted(c, *redis, 1);
  EXPECT_TRUE(WaitUntil([&] {
    (void)w.HousekeepOnce(*redis, "hk");  // claims the pending task after VISIBILITY_TIMEOUT and runs it again
    return calls == 2;
  }));
  EXPECT_EQ(PendingOf(*redis, keys.Queue("default")), 0);
  EXPECT_EQ(ReadStream(*redis, keys.DeadLetters()).size(), 0u);
  EXPECT_EQ(ingest.Post("/v1/orgs/1/generations/2/chunks", R"({"data": "x"})").status, 202);
}

TEST_F(RedisErrorsTest, ReadOnlyReplicaIs503ForIngestAndABackoffForTheConsumers) {
  RedisServer server("--replica-read-only yes");
  auto redis = RedisClient::Connect(server.config()).value();
  IngestHarness ingest(server.port());
  PostGeneration(ingest, 3);
  TaskKeys keys("streamfleet");
  Config wc = MakeConfig(server.port(), {{"QUEUES", "default:1"}});
  worker::HandlerRegistry handlers;
  int calls = 0;
  handlers.Register("count", [&](worker::TaskContext&) {
    ++calls;
    return Status::Ok();
  });
  ManualClock clock(1'900'000'000'000);
  prometheus::Registry registry;
  worker::WorkerService w(wc, clock, handlers, registry);
  ASSERT_TRUE(w.EnsureGroups(*redis).ok());
  ASSERT_TRUE(EnqueueTask(*redis, keys, "count", "{}", {}, 0).ok());

  // A replica of a master that does not answer: the data stays, every write is refused.
  ASSERT_TRUE(redis->Command({"REPLICAOF", "127.0.0.1", std::to_string(FreePort())}).ok());
  ExpectRefused(ingest, "READONLY");
  auto polled = w.PollOnce(*redis, "w1", 10);
  EXPECT_EQ(polled.status().code(), StatusCode::kUnavailable) << polled.status().ToString();
  EXPECT_EQ(calls, 0);
  CompactorUnderTest c(server.port(), db_url_);
  c.StartLoop();
  EXPECT_TRUE(WaitUntil([&] { return !c.service().Ready().ok(); })) << "not ready while Redis refuses writes";
  EXPECT_FALSE(c.Row(3).has_value());

  // The operator's own connection: `redis` was refused (READONLY) and backs off before connecting again.
  auto admin = RedisClient::Connect(server.config()).value();
  ASSERT_TRUE(admin->Command({"REPLICAOF", "NO", "ONE"}).ok());
  ExpectCompacted(c, *admin, 3);
  EXPECT_TRUE(WaitUntil([&] { return c.service().Ready().ok(); }));
  EXPECT_TRUE(WaitUntil([&] { return w.PollOnce(*redis, "w1", 10).ok() && calls == 1; }));
  EXPECT_EQ(ReadStream(*admin, keys.DeadLetters()).size(), 0u);
  // Ingest's own connection was refused too and backs off before connecting again (a 503 writes nothing).
  EXPECT_TRUE(WaitUntil([&] { return ingest.Post("/v1/orgs/1/generations/4/chunks", R"({"data": "x"})").status == 202; }));
}

// LOADING for real: the server restarts on an RDB it loads slowly (key-load-delay), answering LOADING to
// every command meanwhile.
TEST_F(RedisErrorsTest, LoadingIs503ForIngestAndTheCompactorWaitsItOut) {
  // Long enough that a loaded machine still sees the server loading (~5 s: 4000 keys x 1.25 ms).
  RedisServer server("--key-load-delay 1250 --loading-process-events-interval-bytes 1024");
  auto redis = RedisClient::Connect(server.config()).value();
  {
    IngestHarness before(server.port());
    PostGeneration(before, 5);
  }
  std::vector<std::vector<std::string>> fill;
  for (int i = 0; i < 4000; ++i) fill.push_back({"SET", "filler:" + std::to_string(i), "x"});
  ASSERT_TRUE(redis->Pipeline(fill).ok());
  ASSERT_TRUE(redis->Command({"SAVE"}).ok());
  server.Stop();
  server.StartLoading();  // ~5 s of LOADING
  // Until the server accepts connections and answers LOADING.
  ASSERT_TRUE(WaitUntil([&] {
    auto cl = RedisClient::Connect(server.config());
    if (!cl.ok()) return false;
    auto ping = (*cl)->Command({"PING"});
    return !ping.ok() && ping.status().message().rfind("LOADING", 0) == 0 &&
           ping.status().code() == StatusCode::kUnavailable;
  }));
  IngestHarness ingest(server.port());
  HttpResponse r;
  EXPECT_TRUE(WaitUntil([&] {
    r = ingest.Post("/v1/orgs/1/generations/99/chunks", R"({"data": "refused"})");
    return r.body.find("LOADING") != std::string::npos;
  }, 3000)) << r.body;
  EXPECT_EQ(r.status, 503) << r.body;
  CompactorUnderTest c(server.port(), db_url_);
  c.StartLoop();
  // Give the compactor loop time to try, on purpose; then no row may exist if the server is still loading.
  // The row is read before the server is asked: if it still answers LOADING, it was loading when the row was
  // read. (Should a loaded machine only get here after the loading, there is nothing to assert.)
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  bool row_while_loading = c.Row(5).has_value();
  auto probe = RedisClient::Connect(server.config());
  bool still_loading = false;
  if (probe.ok()) {
    auto ping = (*probe)->Command({"PING"});
    still_loading = !ping.ok() && ping.status().message().rfind("LOADING", 0) == 0;
  }
  if (still_loading) {
    EXPECT_FALSE(row_while_loading) << "nothing to compact while loading";
  }
  ASSERT_TRUE(WaitUntil([&] {
    auto cl = RedisClient::Connect(server.config());
    if (cl.ok()) redis = std::move(*cl);
    return cl.ok() && redis->Command({"PING"}).ok();
  }));
  ExpectCompacted(c, *redis, 5);
  EXPECT_EQ(testing::ChunksInStream(*redis, c.keys().ChunkStream(0)).size(), 2u) << "the refused chunk was not written";
}

}  // namespace
}  // namespace streamfleet::testing
