// A worker's state transitions (streamfleet/taskqueue/task_lifecycle.h) against a real redis-server: each
// moves the delivery in its streams and leaves the status record saying so.
#include "streamfleet/taskqueue/task_lifecycle.h"

#include <gtest/gtest.h>

#include "streamfleet/redis/redis.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/testing/redis_server.h"
#include "support/redis_suite.h"
#include "support/wait.h"

namespace streamfleet {
namespace {

constexpr int64_t kNow = 1'900'000'000'000;

class TaskLifecycleTest : public testing::RedisSuite<> {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
    ASSERT_TRUE(EnsureGroup(*redis_, keys_.Queue("default"), TaskKeys::Group()).ok());
  }
  // Enqueues a task and takes it as consumer "w": its id and its stream entry.
  std::pair<std::string, StreamEntry> Deliver() {
    auto r = EnqueueTask(*redis_, keys_, "noop", "{}", {}, kNow);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    auto read = redis_->Command({"XREADGROUP", "GROUP", TaskKeys::Group(), "w", "COUNT", "1", "STREAMS",
                                 keys_.Queue("default"), ">"});
    EXPECT_TRUE(read.ok()) << read.status().ToString();
    auto entries = ParseStreamReply(*read);
    EXPECT_EQ(entries.size(), 1u);
    return {r->id, entries.empty() ? StreamEntry{} : entries[0]};
  }
  v1::TaskEnvelope Envelope(const StreamEntry& e) {
    v1::TaskEnvelope t;
    EXPECT_TRUE(e.Field("e") != nullptr && t.ParseFromString(*e.Field("e")));
    return t;
  }
  std::string Field(const std::string& id, const std::string& f) {
    auto v = redis_->Command({"HGET", keys_.Status(id), f});
    return v.ok() ? v->str : "";
  }
  int64_t Pending() { return GetStreamStats(*redis_, keys_.Queue("default")).value().groups[0].pending; }

  TaskKeys keys_{"streamfleet"};
  TaskLifecycle lifecycle_{keys_, 3600};
};

// Running, then Succeeded: the record says who ran it, then the result. Record and ack are written at once
// without waiting for their replies: another connection sees them applied while the worker's connection has
// read nothing back.
TEST_F(TaskLifecycleTest, RunningThenSucceededIsAckedAtOnceWithItsRecord) {
  auto [id, entry] = Deliver();
  auto worker = RedisClient::Connect(server_->config()).value();
  lifecycle_.Running(*worker, id, "w", entry.id);
  EXPECT_TRUE(testing::WaitUntil([&] { return Field(id, "state") == "running"; }));
  EXPECT_EQ(Field(id, "worker"), "w");
  EXPECT_EQ(Field(id, "entry_id"), entry.id);
  FinishedTasks finished;
  ASSERT_TRUE(lifecycle_.Succeeded(*worker, finished, entry.stream, entry.id, id, "done", 1).ok());
  EXPECT_TRUE(finished.empty());
  EXPECT_TRUE(testing::WaitUntil([&] { return Pending() == 0; })) << "acked without a further call";
  EXPECT_EQ(Field(id, "state"), "succeeded") << "the record went before its ack";
  EXPECT_EQ(Field(id, "result"), "done");
  EXPECT_EQ(Field(id, "attempts"), "1");
  EXPECT_GT(redis_->Command({"TTL", keys_.Status(id)})->integer, 3500);
  ASSERT_TRUE(lifecycle_.Flush(*worker, finished).ok());
  EXPECT_EQ(worker->DeferredErrors(), 0);
}

// A Succeeded that cannot reach Redis keeps its record and ack owed; the next Succeeded or Flush sends them.
TEST_F(TaskLifecycleTest, UnsentRecordAndAckStayOwed) {
  auto [id, entry] = Deliver();
  FinishedTasks finished;
  RedisConfig down = server_->config();
  down.port = testing::FreePort();
  auto closed = RedisClient::Lazy(down);
  EXPECT_EQ(lifecycle_.Succeeded(*closed, finished, entry.stream, entry.id, id, "done", 1).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(finished.owed.size(), 3u) << "HSET + EXPIRE + XACK";
  EXPECT_EQ(Pending(), 1);
  ASSERT_TRUE(lifecycle_.Flush(*redis_, finished).ok());
  EXPECT_TRUE(finished.empty());
  EXPECT_EQ(Field(id, "state"), "succeeded");
  EXPECT_EQ(Pending(), 0);
}

TEST_F(TaskLifecycleTest, RetrySchedulesTheNextAttemptAcksAndSaysWhen) {
  auto [id, entry] = Deliver();
  v1::TaskEnvelope next = Envelope(entry);
  next.set_attempt(1);
  next.add_errors("attempt 1: UNAVAILABLE: down");
  ASSERT_TRUE(lifecycle_.Retry(*redis_, entry.stream, entry.id, next, kNow + 1000, "UNAVAILABLE: down").ok());
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Scheduled()})->integer, 1);
  EXPECT_EQ(Field(id, "state"), "retry_scheduled");
  EXPECT_EQ(Field(id, "error"), "UNAVAILABLE: down");
  EXPECT_EQ(Field(id, "attempts"), "1");
  EXPECT_EQ(Field(id, "run_at_ms"), std::to_string(kNow + 1000));
}

TEST_F(TaskLifecycleTest, DeadLetterMarksTheRecordDeadOnlyWhenTheEnvelopeWasDecoded) {
  auto [id, entry] = Deliver();
  v1::TaskEnvelope task = Envelope(entry);
  task.set_attempt(3);
  ASSERT_TRUE(lifecycle_.DeadLetter(*redis_, entry.stream, entry.id, *entry.Field("e"), "gave up", 1, &task).ok());
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(redis_->Command({"XLEN", keys_.DeadLettersOf(entry.stream)})->integer, 1);
  EXPECT_EQ(Field(id, "state"), "dead");
  EXPECT_EQ(Field(id, "error"), "gave up");
  EXPECT_EQ(Field(id, "attempts"), "3");
  // Undecodable: no id to trust, so no record is touched.
  auto [other, garbage] = Deliver();
  ASSERT_TRUE(lifecycle_.DeadLetter(*redis_, garbage.stream, garbage.id, "\xff", "undecodable", 1, nullptr).ok());
  EXPECT_EQ(Field(other, "state"), "pending");
  EXPECT_EQ(redis_->Command({"XLEN", keys_.DeadLettersOf(entry.stream)})->integer, 2);
}

// A slow worker's delivery claimed by another (XAUTOCLAIM after VISIBILITY_TIMEOUT) is settled by both. Only the
// first to ack retries or dead-letters it: before, each scheduled its own retry (two chains of attempts from
// then on) or wrote its own dead letter, and the later record overwrote the first.
TEST_F(TaskLifecycleTest, ASecondSettlementOfOneDeliveryChangesNothing) {
  auto [id, entry] = Deliver();
  ASSERT_TRUE(redis_->Command({"XCLAIM", entry.stream, TaskKeys::Group(), "other", "0", entry.id}).ok());
  v1::TaskEnvelope next = Envelope(entry);
  next.set_attempt(1);
  ASSERT_TRUE(lifecycle_.Retry(*redis_, entry.stream, entry.id, next, kNow + 1000, "first").ok());
  ASSERT_TRUE(lifecycle_.Retry(*redis_, entry.stream, entry.id, next, kNow + 5000, "second").ok());
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Scheduled()})->integer, 1);
  EXPECT_EQ(Field(id, "error"), "first");
  EXPECT_EQ(Field(id, "run_at_ms"), std::to_string(kNow + 1000));
  ASSERT_TRUE(lifecycle_.DeadLetter(*redis_, entry.stream, entry.id, *entry.Field("e"), "late", 2, &next).ok());
  EXPECT_EQ(redis_->Command({"XLEN", keys_.DeadLettersOf(entry.stream)})->integer, 0);
  EXPECT_EQ(Field(id, "state"), "retry_scheduled");

  auto [id2, entry2] = Deliver();
  v1::TaskEnvelope task = Envelope(entry2);
  ASSERT_TRUE(lifecycle_.DeadLetter(*redis_, entry2.stream, entry2.id, *entry2.Field("e"), "one", 1, &task).ok());
  ASSERT_TRUE(lifecycle_.DeadLetter(*redis_, entry2.stream, entry2.id, *entry2.Field("e"), "two", 2, &task).ok());
  EXPECT_EQ(redis_->Command({"XLEN", keys_.DeadLettersOf(entry2.stream)})->integer, 1);
  EXPECT_EQ(Field(id2, "error"), "one");
  ASSERT_TRUE(lifecycle_.Postpone(*redis_, entry2.stream, entry2.id, task, kNow + 9000, "max_running").ok());
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Scheduled()})->integer, 1);
  EXPECT_EQ(Field(id2, "state"), "dead");
}

// A slow worker whose delivery another claimed (its lease ran out) while the other still runs it: the slow
// one's failure neither retries, postpones nor dead-letters it -- the claimant's outcome decides. Before, the
// first to settle won: a retry here while the claimant ran it made the task run once more later.
TEST_F(TaskLifecycleTest, ASettlementByAConsumerThatNoLongerOwnsTheDeliveryChangesNothing) {
  auto [id, entry] = Deliver();  // delivered to "w"
  ASSERT_TRUE(redis_->Command({"XCLAIM", entry.stream, TaskKeys::Group(), "claimant", "0", entry.id}).ok());
  v1::TaskEnvelope next = Envelope(entry);
  next.set_attempt(1);
  // Each says it wrote nothing, so the worker counts no retry or dead letter of its own.
  EXPECT_FALSE(lifecycle_.Retry(*redis_, entry.stream, entry.id, next, kNow + 1000, "slow failed", "w").value());
  EXPECT_FALSE(lifecycle_.Postpone(*redis_, entry.stream, entry.id, next, kNow + 1000, "max_running", "w").value());
  EXPECT_FALSE(
      lifecycle_.DeadLetter(*redis_, entry.stream, entry.id, *entry.Field("e"), "slow gave up", 2, &next, "w").value());
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Scheduled()})->integer, 0);
  EXPECT_EQ(redis_->Command({"XLEN", keys_.DeadLettersOf(entry.stream)})->integer, 0);
  EXPECT_EQ(Pending(), 1);  // still the claimant's
  EXPECT_EQ(Field(id, "state"), "pending");

  // The claimant's own failure is a retry as usual.
  EXPECT_TRUE(lifecycle_.Retry(*redis_, entry.stream, entry.id, next, kNow + 1000, "claimant failed", "claimant").value());
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Scheduled()})->integer, 1);
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(Field(id, "error"), "claimant failed");
}

// TASK_RESULT_TTL=0: the transitions happen, and no record is written by any of them.
TEST_F(TaskLifecycleTest, NoRecordWhenRecordsAreOff) {
  TaskLifecycle off(keys_, 0);
  auto [id, entry] = Deliver();
  ASSERT_TRUE(redis_->Command({"DEL", keys_.Status(id)}).ok());
  off.Running(*redis_, id, "w", entry.id);
  FinishedTasks finished;
  ASSERT_TRUE(off.Succeeded(*redis_, finished, entry.stream, entry.id, id, "done", 1).ok());
  ASSERT_TRUE(off.Flush(*redis_, finished).ok());
  EXPECT_EQ(Pending(), 0);
  auto [id2, entry2] = Deliver();
  ASSERT_TRUE(redis_->Command({"DEL", keys_.Status(id2)}).ok());
  v1::TaskEnvelope task = Envelope(entry2);
  ASSERT_TRUE(off.DeadLetter(*redis_, entry2.stream, entry2.id, *entry2.Field("e"), "gave up", 1, &task).ok());
  for (const std::string& t : {id, id2}) EXPECT_EQ(redis_->Command({"EXISTS", keys_.Status(t)})->integer, 0) << t;
}

}  // namespace
}  // namespace streamfleet
