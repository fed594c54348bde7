// Following and cancelling tasks (streamfleet/taskqueue/task_control.h) against a real redis-server: a
// cancelled task is skipped by the worker's read in every path (the next-task script, a blocking read, the
// cluster schema's shard scripts), and only a task that has not started can be cancelled.
#include "streamfleet/taskqueue/task_control.h"

#include <gtest/gtest.h>

#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/taskqueue/task_lifecycle.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "support/redis_suite.h"

namespace streamfleet {
namespace {

constexpr int64_t kNow = 1'900'000'000'000;
constexpr int64_t kTtl = 3600;

class TaskControlTest : public testing::RedisSuite<> {
 protected:
  void UseKeys(TaskKeys keys) {
    keys_ = std::move(keys);
    for (const auto& s : keys_.QueueShards("default")) {
      ASSERT_TRUE(EnsureGroup(*redis_, s, TaskKeys::Group()).ok());
    }
  }
  void SetUp() override {
    RedisSuite::SetUp();
    UseKeys(TaskKeys("streamfleet"));
  }
  std::string Enqueue(int64_t run_at_ms = 0) {
    EnqueueOptions o;
    o.run_at_ms = run_at_ms;
    o.status_ttl_s = kTtl;
    auto r = EnqueueTask(*redis_, keys_, "noop", "{}", o, kNow);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : "";
  }
  CancelResult Cancel(const std::string& id, int64_t ttl = kTtl) {
    auto r = CancelTask(*redis_, keys_, id, ttl, kNow + 5);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CancelResult{};
  }
  std::string State(const std::string& id) {
    auto rec = ReadTaskRecord(*redis_, keys_, id);
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    return rec.ok() && *rec ? (*rec)->state() : "";
  }
  NextTask Read(int count = 10) {
    auto r = ReadNextTasks(*redis_, keys_, TaskKeys::Group(), "w", {"default"}, count);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : NextTask{};
  }
  static std::string TaskId(const StreamEntry& e) {
    v1::TaskEnvelope t;
    return e.Field("e") != nullptr && t.ParseFromString(*e.Field("e")) ? t.id() : "";
  }
  int64_t Pending() {
    int64_t n = 0;
    for (const auto& s : keys_.QueueShards("default")) n += GetStreamStats(*redis_, s).value().groups[0].pending;
    return n;
  }

  TaskKeys keys_{"streamfleet"};
};

TEST_F(TaskControlTest, ACancelledTaskIsSkippedAndAckedByTheNextReadWhileTheOthersRun) {
  std::string a = Enqueue(), b = Enqueue(), c = Enqueue();
  CancelResult r = Cancel(b);
  EXPECT_EQ(r.outcome, CancelOutcome::kCancelled);
  EXPECT_EQ(r.state, "pending");
  auto rec = ReadTaskRecord(*redis_, keys_, b).value();
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->state(), "cancelled");
  ASSERT_NE(rec->Field("cancelled_at_ms"), nullptr);
  EXPECT_EQ(*rec->Field("cancelled_at_ms"), std::to_string(kNow + 5));
  EXPECT_GT(redis_->Command({"TTL", keys_.Status(b)}).value().AsInt(), 0);

  NextTask next = Read();
  ASSERT_EQ(next.entries.size(), 2u);
  EXPECT_EQ(TaskId(next.entries[0]), a);
  EXPECT_EQ(TaskId(next.entries[1]), c);
  EXPECT_EQ(next.cancelled, std::vector<std::string>{b});
  EXPECT_EQ(Pending(), 2) << "the cancelled task's entry is acked, the two others wait for their workers";
  EXPECT_EQ(redis_->Command({"EXISTS", keys_.Cancelled()}).value().AsInt(), 0) << "its marker is gone";
  EXPECT_EQ(State(b), "cancelled");
}

TEST_F(TaskControlTest, ReadingOnlyCancelledTasksReturnsNoneAndTheQueueStaysOpen) {
  std::string a = Enqueue();
  Cancel(a);
  NextTask next = Read();
  EXPECT_TRUE(next.entries.empty());
  EXPECT_EQ(next.open_queues, std::vector<std::string>{"default"});
  EXPECT_EQ(next.cancelled, std::vector<std::string>{a});
  EXPECT_EQ(Pending(), 0);
}

TEST_F(TaskControlTest, AScheduledTaskCancelledBeforeItIsDueNeverRuns) {
  std::string a = Enqueue(kNow + 60'000);
  EXPECT_EQ(State(a), "scheduled");
  EXPECT_EQ(Cancel(a).outcome, CancelOutcome::kCancelled);
  ASSERT_EQ(MoveDueTasks(*redis_, keys_, kNow + 61'000, 100).value(), 1);
  NextTask next = Read();
  EXPECT_TRUE(next.entries.empty());
  EXPECT_EQ(next.cancelled, std::vector<std::string>{a});
}

TEST_F(TaskControlTest, ABlockingReadsEntriesGoThroughTheSameCheck) {
  std::string a = Enqueue(), b = Enqueue();
  Cancel(a);
  auto read = redis_->Command({"XREADGROUP", "GROUP", TaskKeys::Group(), "w", "COUNT", "10", "BLOCK", "100",
                               "STREAMS", keys_.Queue("default"), ">"});
  ASSERT_TRUE(read.ok());
  auto entries = ParseStreamReply(*read);
  ASSERT_EQ(entries.size(), 2u);
  auto skipped = DropCancelled(*redis_, keys_, entries);
  ASSERT_TRUE(skipped.ok()) << skipped.status().ToString();
  EXPECT_EQ(*skipped, std::vector<std::string>{a});
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(TaskId(entries[0]), b);
  EXPECT_EQ(Pending(), 1);
}

// Two entries of one task id in a read (a task enqueued twice with one id): the cancel marker is taken once and
// the first entry acked; only that one is dropped. Both were dropped, and the second, never acked and never
// run, waited unleased in the pending list.
TEST_F(TaskControlTest, OfTwoEntriesOfOneCancelledIdOnlyTheAckedOneIsDropped) {
  std::string a = Enqueue();
  auto first = redis_->Command({"XRANGE", keys_.Queue("default"), "-", "+"});
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->elements.size(), 1u);
  std::vector<std::string> copy = {"XADD", keys_.Queue("default"), "*"};
  for (const auto& f : first->elements[0].elements[1].elements) copy.push_back(f.str);
  ASSERT_TRUE(redis_->Command(copy).ok());
  Cancel(a);
  auto read = redis_->Command({"XREADGROUP", "GROUP", TaskKeys::Group(), "w", "COUNT", "10", "STREAMS",
                               keys_.Queue("default"), ">"});
  ASSERT_TRUE(read.ok());
  auto entries = ParseStreamReply(*read);
  ASSERT_EQ(entries.size(), 2u);
  const std::string second_id = entries[1].id;
  auto skipped = DropCancelled(*redis_, keys_, entries);
  ASSERT_TRUE(skipped.ok()) << skipped.status().ToString();
  EXPECT_EQ(*skipped, std::vector<std::string>{a});
  ASSERT_EQ(entries.size(), 1u) << "the unacked copy was dropped too";
  EXPECT_EQ(entries[0].id, second_id);
  EXPECT_EQ(Pending(), 1);
}

TEST_F(TaskControlTest, OnlyAWaitingTaskCanBeCancelled) {
  EXPECT_EQ(Cancel("no-such-task").outcome, CancelOutcome::kNotFound);

  std::string a = Enqueue();
  EXPECT_EQ(Cancel(a).outcome, CancelOutcome::kCancelled);
  CancelResult again = Cancel(a);
  EXPECT_EQ(again.outcome, CancelOutcome::kAlreadyCancelled);
  EXPECT_EQ(again.state, "cancelled");

  std::string b = Enqueue();
  NextTask next = Read();
  ASSERT_EQ(next.entries.size(), 1u);
  TaskLifecycle lifecycle(keys_, kTtl);
  lifecycle.Running(*redis_, b, "w", next.entries[0].id);
  ASSERT_TRUE(redis_->AwaitSent().ok());
  CancelResult running = Cancel(b);
  EXPECT_EQ(running.outcome, CancelOutcome::kTooLate);
  EXPECT_EQ(running.state, "running");
  EXPECT_EQ(State(b), "running") << "a refused cancel changes nothing";
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Cancelled()}).value().AsInt(), 0);

  FinishedTasks finished;
  ASSERT_TRUE(lifecycle.Succeeded(*redis_, finished, next.entries[0].stream, next.entries[0].id, b, "ok", 1).ok());
  ASSERT_TRUE(lifecycle.Flush(*redis_, finished).ok());
  EXPECT_EQ(Cancel(b).state, "succeeded");
  auto rec = ReadTaskRecord(*redis_, keys_, b).value();
  for (const char* f : {"enqueued_at_ms", "started_at_ms", "finished_at_ms"}) {
    EXPECT_NE(rec->Field(f), nullptr) << f << " is a timestamp GET /v1/tasks/{id} answers";
  }
}

// A task read ahead before its cancel runs once; when that attempt fails its retry is skipped for the marker
// the run left, and the record said "retry_scheduled" until it expired. The worker now records the skip.
TEST_F(TaskControlTest, ARetrySkippedForItsCancelRecordsTheCancel) {
  std::string a = Enqueue();
  NextTask first = Read();
  ASSERT_EQ(first.entries.size(), 1u);  // read ahead: it runs whatever happens next
  EXPECT_EQ(Cancel(a).outcome, CancelOutcome::kCancelled);
  TaskLifecycle lifecycle(keys_, kTtl);
  lifecycle.Running(*redis_, a, "w", first.entries[0].id);
  ASSERT_TRUE(redis_->AwaitSent().ok());
  // Its attempt failed: the retry script's record (the retry's entry follows below).
  ASSERT_TRUE(redis_->Command({"HSET", keys_.Status(a), "state", "retry_scheduled", "attempts", "1"}).ok());
  ASSERT_TRUE(redis_->Command({"XACK", first.entries[0].stream, TaskKeys::Group(), first.entries[0].id}).ok());
  EnqueueOptions retry;
  retry.id = a;
  retry.status_ttl_s = 0;  // the retry's entry, as the retry script writes it: the record is the worker's
  ASSERT_TRUE(EnqueueTask(*redis_, keys_, "noop", "{}", retry, kNow).ok());
  NextTask next = Read();
  EXPECT_TRUE(next.entries.empty());
  ASSERT_EQ(next.cancelled, std::vector<std::string>{a});
  EXPECT_EQ(State(a), "retry_scheduled");
  auto recorded = RecordSkippedTaskCancelled(*redis_, keys_, a, kTtl, kNow + 9);
  ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
  EXPECT_TRUE(*recorded);
  EXPECT_EQ(State(a), "cancelled");
  // A record that says the task ran to its end is left as it is.
  std::string b = Enqueue();
  ASSERT_TRUE(redis_->Command({"HSET", keys_.Status(b), "state", "succeeded"}).ok());
  EXPECT_FALSE(RecordSkippedTaskCancelled(*redis_, keys_, b, kTtl, kNow).value());
  EXPECT_EQ(State(b), "succeeded");
  EXPECT_FALSE(RecordSkippedTaskCancelled(*redis_, keys_, "no-such", kTtl, kNow).value());
}

TEST_F(TaskControlTest, WithoutStatusRecordsNothingCanBeFoundOrCancelled) {
  std::string a = Enqueue();
  EXPECT_EQ(Cancel(a, 0).outcome, CancelOutcome::kNotFound);
  EXPECT_EQ(Read().entries.size(), 1u);
}

TEST_F(TaskControlTest, TheIdIsFoundWhereverTheEncoderPutItsField) {
  // Protobuf allows fields in any order: an envelope whose id comes last (field 1 after field 9).
  v1::TaskEnvelope e;
  e.set_type("noop");
  e.set_payload("{}");
  e.set_queue("default");
  e.set_enqueued_at_ms(kNow);
  std::string raw = e.SerializeAsString() + std::string("\x0a\x04late", 6);
  ASSERT_TRUE(redis_->Command({"HSET", keys_.Status("late"), "state", "pending"}).ok());
  ASSERT_TRUE(redis_->Command({"XADD", keys_.Queue("default"), "*", "e", raw}).ok());
  EXPECT_EQ(Cancel("late").outcome, CancelOutcome::kCancelled);
  NextTask next = Read();
  EXPECT_TRUE(next.entries.empty());
  EXPECT_EQ(next.cancelled, std::vector<std::string>{"late"});
}

TEST_F(TaskControlTest, ClusterSchemaMarksEveryShardOfTheQueue) {
  UseKeys(TaskKeys("streamfleet", KeySchemaMode::kCluster, 4));
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(Enqueue());
  EXPECT_EQ(Cancel(ids[3]).outcome, CancelOutcome::kCancelled);
  EXPECT_EQ(Cancel(ids[5]).outcome, CancelOutcome::kCancelled);
  std::vector<std::string> ran, cancelled;
  for (int round = 0; round < 10 && ran.size() + cancelled.size() < ids.size(); ++round) {
    NextTask next = Read(8);
    for (const auto& e : next.entries) ran.push_back(TaskId(e));
    cancelled.insert(cancelled.end(), next.cancelled.begin(), next.cancelled.end());
  }
  EXPECT_EQ(ran.size(), 6u);
  std::sort(cancelled.begin(), cancelled.end());
  std::vector<std::string> want = {ids[3], ids[5]};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(cancelled, want);
  EXPECT_EQ(Pending(), 6);
}

// One shard's error in a read across shards threw away what the other shards had delivered to the consumer
// in the same round trip: those tasks sat pending until the visibility timeout. Here one shard's cancel
// markers key has the wrong type, so its script fails after its read.
TEST_F(TaskControlTest, ClusterSchemaReturnsTheTasksOfTheShardsThatAnswered) {
  UseKeys(TaskKeys("streamfleet", KeySchemaMode::kCluster, 4));
  for (int i = 0; i < 40; ++i) Enqueue();
  const std::string broken = keys_.QueueShards("default")[1];
  const int64_t on_broken = redis_->Command({"XLEN", broken})->integer;
  ASSERT_GT(on_broken, 0);
  ASSERT_LT(on_broken, 40);
  ASSERT_TRUE(redis_->Command({"SET", keys_.CancelledOf(broken), "not a zset"}).ok());
  auto r = ReadNextTasks(*redis_, keys_, TaskKeys::Group(), "w", {"default"}, 8);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->entries.size(), 6u) << "two from each of the three shards that answered";
  for (const auto& e : r->entries) EXPECT_NE(e.stream, broken);
  EXPECT_FALSE(r->shard_error.ok()) << "the failing shard is reported";
}

}  // namespace
}  // namespace streamfleet
