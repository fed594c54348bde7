// The finalizer against a real Redis and a gMock in place of the database: which dependency an error came
// from (the compactor counts and reports outages by it), and that a refused write leaves the buffer as it
// was, so the finalization can run again.
#include "streamfleet/chunks/finalizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "buffer_on_redis.h"

namespace streamfleet {
namespace {

using ::testing::_;
using ::testing::Return;

class MockRepository : public GenerationRepository {
 public:
  MOCK_METHOD(StatusOr<std::vector<UpsertResult>>, UpsertGenerations, (const std::vector<GenerationWrite>&),
              (override));
  MOCK_METHOD(StatusOr<std::optional<GenerationRow>>, GetGeneration, (int64_t), (override));
  MOCK_METHOD(StatusOr<std::vector<ChunkRow>>, GetChunks, (int64_t), (override));
};

class FinalizerTest : public BufferOnRedisTest {
 protected:
  // A complete two-chunk generation in its buffer, as the compactor's apply step leaves it.
  GenerationId Buffered(int64_t gen) {
    GenerationId g{7, 0, gen};
    auto applied = buffer_->Apply(*redis_, {{g, false, 0, "{\"a\":", false, 0, 0}, {g, false, 1, "1}", true, 0, 0}});
    EXPECT_TRUE(applied.ok()) << applied.status().ToString();
    return g;
  }
  std::string State(const GenerationId& g) {
    auto s = redis_->Command({"HGET", buffer_->keys().ControlKey(g), "state"});
    return s.ok() ? s->str : "?";
  }

  MockRepository db_;
};

TEST_F(FinalizerTest, ARefusedWriteIsTheDatabasesErrorAndLeavesTheBufferToRetry) {
  GenerationId g = Buffered(501);
  EXPECT_CALL(db_, UpsertGenerations(_)).WillOnce(Return(Status::Unavailable("connection to server lost")));
  Finalizer fin(config_, *buffer_, db_, "test");
  FinalizeDependency failed = FinalizeDependency::kRedis;
  auto out = fin.FinalizeBatch(*redis_, {{g, "complete", "1-0"}}, &failed);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(failed, FinalizeDependency::kDatabase);
  EXPECT_NE(State(g), "compacted");  // nothing marked: the retry finds the same buffer

  // The database is back: the same finalization writes the row and marks the buffer.
  EXPECT_CALL(db_, UpsertGenerations(_)).WillOnce([](const std::vector<GenerationWrite>& w) {
    EXPECT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].organization_id, 7);
    EXPECT_EQ(w[0].chunk_count, 2);
    return StatusOr<std::vector<UpsertResult>>(std::vector<UpsertResult>{UpsertResult::kWritten});
  });
  auto again = fin.FinalizeBatch(*redis_, {{g, "complete", "1-0"}}, &failed);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*again)[0].marked_compacted);
  EXPECT_TRUE((*again)[0].json_valid);
  EXPECT_EQ(State(g), "compacted");
}

TEST_F(FinalizerTest, AnOwnerCheckThatCannotReadTheRowIsTheDatabasesError) {
  GenerationId g = Buffered(502);
  // Another organization holds the id's owner record: the row decides, and the row cannot be read.
  ASSERT_TRUE(redis_->Command({"SET", buffer_->keys().OwnerKey(g.gen), "8"}).ok());
  EXPECT_CALL(db_, GetGeneration(502)).WillOnce(Return(Status::Unavailable("database is locked")));
  EXPECT_CALL(db_, UpsertGenerations(_)).Times(0);
  Finalizer fin(config_, *buffer_, db_, "test");
  FinalizeDependency failed = FinalizeDependency::kRedis;
  auto out = fin.FinalizeBatch(*redis_, {{g, "complete", "1-0"}}, &failed);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(failed, FinalizeDependency::kDatabase);
}

TEST_F(FinalizerTest, RedisGoneIsRedissErrorAndTheDatabaseIsNotTouched) {
  GenerationId g{7, 0, 503};
  EXPECT_CALL(db_, UpsertGenerations(_)).Times(0);
  EXPECT_CALL(db_, GetGeneration(_)).Times(0);
  RedisConfig nowhere = config_.redis;
  nowhere.port = testing::FreePort();
  nowhere.connect_timeout_ms = nowhere.command_timeout_ms = 200;
  auto down = RedisClient::Lazy(nowhere);
  Finalizer fin(config_, *buffer_, db_, "test");
  FinalizeDependency failed = FinalizeDependency::kDatabase;
  auto out = fin.FinalizeBatch(*down, {{g, "complete", "1-0"}}, &failed);
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(out.status().retryable()) << out.status().ToString();
  EXPECT_EQ(failed, FinalizeDependency::kRedis);
}

// The compacted event trims the events stream to EVENTS_MAXLEN, as the started and failed events do
// (fleet_events_test): a compactor left at the default would cut a window the operator raised, and one at a
// lower value keeps what the operator asked for.
TEST_F(FinalizerTest, TheCompactedEventKeepsTheEventsStreamToEventsMaxlen) {
  config_.events_maxlen = 1000;
  buffer_ = std::make_unique<ChunkBuffer>(config_, clock_);
  const std::string events = buffer_->keys().EventsStream();
  std::vector<std::vector<std::string>> fill;
  for (int i = 0; i < 3000; ++i) fill.push_back({"XADD", events, "*", "type", "filler", "e", ""});
  ASSERT_TRUE(redis_->Pipeline(fill).ok());
  GenerationId g = Buffered(504);
  EXPECT_CALL(db_, UpsertGenerations(_)).WillOnce([](const std::vector<GenerationWrite>&) {
    return StatusOr<std::vector<UpsertResult>>(std::vector<UpsertResult>{UpsertResult::kWritten});
  });
  Finalizer fin(config_, *buffer_, db_, "test");
  auto out = fin.FinalizeBatch(*redis_, {{g, "complete", "1-0"}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const int64_t len = redis_->Command({"XLEN", events})->integer;
  EXPECT_GE(len, 1000);
  EXPECT_LE(len, 1100);
  auto last = redis_->Command({"XREVRANGE", events, "+", "-", "COUNT", "1"});
  ASSERT_TRUE(last.ok());
  auto entries = ParseEntries(events, *last);
  ASSERT_EQ(entries.size(), 1u);
  ASSERT_NE(entries[0].Field("type"), nullptr);
  EXPECT_EQ(*entries[0].Field("type"), "generation.compacted");
}

}  // namespace
}  // namespace streamfleet
