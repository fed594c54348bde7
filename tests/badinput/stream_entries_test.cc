// Entries a producer wrote straight into the streams that are not what this build expects: garbage, an
// envelope of a future version, bytes that are not UTF-8. Each is dead-lettered with its reason (or stored
// byte-exact), acknowledged, and the next valid entry is still processed. Undecodable chunk entries and
// unknown task types are covered in compactor_test (PoisonEntriesGoToTheDeadLetterStreamWithTheirReason) and
// worker_test (UnknownTypesAndUndecodableEnvelopesAreDeadLetteredAtOnce).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "badinput/pipeline.h"
#include "streamfleet/base/envelope_version.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "streamfleet/v1/task.pb.h"
#include "streamfleet/testing/redis_server.h"
#include "support/sql_database.h"

namespace streamfleet::testing {
namespace {

class StreamEntriesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new RedisServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    redis_ = RedisClient::Connect(server_->config()).value();
    ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
    db_url_ = FreshDatabaseUrl("sqlite", "sf-badinput", &db_path_);
  }
  void TearDown() override {
    for (auto suffix : {"", "-wal", "-shm"}) std::remove((db_path_ + suffix).c_str());
  }

  inline static RedisServer* server_ = nullptr;
  std::unique_ptr<RedisClient> redis_;
  std::string db_url_, db_path_;
};

TEST_F(StreamEntriesTest, CompactorDeadLettersAFutureEnvelopeVersionAndKeepsGoing) {
  CompactorUnderTest c(server_->port(), db_url_);
  c.Pump(1);  // creates the groups
  const std::string stream = c.keys().ChunkStream(0);
  ASSERT_TRUE(redis_->Command({"XADD", stream, "*", "e", ChunkEnvelopeBytes({1, 0, 5}, 0, "[1]", true, 0, false, kChunkEnvelopeVersion + 1)}).ok());
  ASSERT_TRUE(redis_->Command({"XADD", stream, "*", "e", "garbage that is no protobuf \xff"}).ok());
  ASSERT_TRUE(redis_->Command({"XADD", stream, "*", "e", ChunkEnvelopeBytes({1, 0, 6}, 0, "[2]", true, 0, false, 1)}).ok());
  c.Pump();
  auto dead = ReadStream(*redis_, c.keys().ChunkDeadLetterStream());
  ASSERT_EQ(dead.size(), 2u);
  const std::string future = "ChunkEnvelope version " + std::to_string(kChunkEnvelopeVersion + 1) +
                             " is newer than this build understands (" + std::to_string(kChunkEnvelopeVersion) + ")";
  EXPECT_NE(dead[0].Field("reason")->find(future), std::string::npos)
      << *dead[0].Field("reason");
  EXPECT_EQ(*dead[0].Field("source_stream"), stream);
  EXPECT_FALSE(c.Row(5).has_value()) << "a future envelope is not read with today's meaning";
  ASSERT_TRUE(c.Row(6).has_value()) << "the next valid entry is processed";
  EXPECT_EQ(DecodedText(*c.Row(6)), "[2]");
  EXPECT_EQ(PendingOf(*redis_, stream), 0) << "bad entries are acknowledged, not redelivered forever";
  EXPECT_EQ(c.service().metrics().dead_lettered.Value(), 2);
}

// Producers writing envelopes directly may send any bytes (the field is `bytes`). The compactor keeps them
// byte-exact in `compacted`; the text is not JSON, so llm_response stays null and the fallback records where
// the first invalid byte is. The metadata written is valid JSON even though the parser's message quotes
// the bad bytes.
TEST_F(StreamEntriesTest, CompactorStoresNonUtf8BytesExactly) {
  CompactorUnderTest c(server_->port(), db_url_);
  c.Pump(1);
  const std::string stream = c.keys().ChunkStream(0);
  const std::string part1 = "{\"a\": \"caf\xc3";  // "é" cut in half between two chunks...
  const std::string part2 = "\xff\xfe\"}";        // ...and never completed
  ASSERT_TRUE(redis_->Command({"XADD", stream, "*", "e", ChunkEnvelopeBytes({1, 0, 7}, 0, part1)}).ok());
  ASSERT_TRUE(redis_->Command({"XADD", stream, "*", "e", ChunkEnvelopeBytes({1, 0, 7}, 1, part2, true)}).ok());
  c.Pump();
  auto row = c.Row(7);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(DecodedText(*row), part1 + part2);
  EXPECT_FALSE(row->llm_response.has_value());
  auto md = nlohmann::json::parse(row->metadata, nullptr, false);
  ASSERT_FALSE(md.is_discarded()) << row->metadata;
  EXPECT_EQ(md["json_valid"], false);
  EXPECT_EQ(md["json_fallback"]["invalid_utf8_at"], 10);  // the cut "é"
  EXPECT_TRUE(md["json_fallback"]["reason"].is_string());
  EXPECT_EQ(ReadStream(*redis_, c.keys().ChunkDeadLetterStream()).size(), 0u);
}

TEST_F(StreamEntriesTest, WorkerDeadLettersGarbageAndFutureVersionsThenRunsTheNextTask) {
  Config config = MakeConfig(server_->port(), {{"QUEUES", "default:1"}});
  worker::HandlerRegistry handlers;
  int ran = 0;
  handlers.Register("count", [&](worker::TaskContext&) {
    ++ran;
    return Status::Ok();
  });
  ManualClock clock(1'900'000'000'000);
  prometheus::Registry registry;
  worker::WorkerService w(config, clock, handlers, registry);
  ASSERT_TRUE(w.EnsureGroups(*redis_).ok());
  TaskKeys keys("streamfleet");
  ASSERT_TRUE(redis_->Command({"XADD", keys.Queue("default"), "*", "e", "\xff\x01garbage"}).ok());
  ASSERT_TRUE(redis_->Command({"XADD", keys.Queue("default"), "*", "junk", "no e field"}).ok());
  v1::TaskEnvelope future;
  future.set_id("future-1");
  future.set_type("count");
  future.set_version(7);
  ASSERT_TRUE(redis_->Command({"XADD", keys.Queue("default"), "*", "e", future.SerializeAsString()}).ok());
  ASSERT_TRUE(EnqueueTask(*redis_, keys, "count", "{}", {}, 0).ok());
  for (int i = 0; i < 10; ++i) {
    auto r = w.PollOnce(*redis_, "w1", 10);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (*r == 0) break;
  }
  EXPECT_EQ(ran, 1) << "only the valid task ran, the future one was not guessed at";
  auto dead = ReadStream(*redis_, keys.DeadLetters());
  ASSERT_EQ(dead.size(), 3u);
  EXPECT_EQ(*dead[0].Field("reason"), "undecodable TaskEnvelope");
  EXPECT_EQ(*dead[1].Field("reason"), "undecodable TaskEnvelope");
  EXPECT_NE(dead[2].Field("reason")->find("TaskEnvelope version 7 is newer than this build understands (1)"),
            std::string::npos)
      << *dead[2].Field("reason");
  EXPECT_EQ(PendingOf(*redis_, keys.Queue("default")), 0);
  EXPECT_EQ(w.Processed("unknown", "dead_lettered"), 1);
}

}  // namespace
}  // namespace streamfleet::testing
