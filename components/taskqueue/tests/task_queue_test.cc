// The enqueue API (streamfleet/taskqueue/task_queue.h) against a real redis-server.
#include "streamfleet/taskqueue/task_queue.h"

#include <gtest/gtest.h>

#include "streamfleet/redis/redis.h"
#include "streamfleet/testing/redis_server.h"
#include "support/redis_suite.h"

namespace streamfleet {
namespace {

constexpr int64_t kNow = 1'900'000'000'000;

class TaskQueueTest : public testing::RedisSuite<> {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
  }
  std::string Field(const std::string& key, const std::string& f) {
    auto v = redis_->Command({"HGET", key, f});
    return v.ok() ? v->str : "";
  }
  TaskKeys keys_{"streamfleet"};
};

TEST_F(TaskQueueTest, EnqueueTasksWritesStatusAndEnvelopesInOneCall) {
  EnqueueOptions later;
  later.run_at_ms = kNow + 60'000;
  EnqueueOptions low;
  low.queue = "low";
  auto r = EnqueueTasks(*redis_, keys_,
                        {{"noop", "{}", {}}, {"webhook", R"({"url":"x"})", low}, {"noop", "{\"n\":3}", later}}, kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_FALSE((*r)[0].scheduled);
  EXPECT_TRUE((*r)[2].scheduled);
  EXPECT_EQ(redis_->Command({"XLEN", keys_.Queue("default")})->integer, 1);
  EXPECT_EQ(redis_->Command({"XLEN", keys_.Queue("low")})->integer, 1);
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Scheduled()})->integer, 1);
  EXPECT_EQ(Field(keys_.Status((*r)[0].id), "state"), "pending");
  EXPECT_EQ(Field(keys_.Status((*r)[1].id), "queue"), "low");
  EXPECT_EQ(Field(keys_.Status((*r)[2].id), "state"), "scheduled");
  EXPECT_GT(redis_->Command({"TTL", keys_.Status((*r)[0].id)})->integer, 0);
  // The envelope carries what a consumer in any language needs.
  auto entries = ParseEntries(keys_.Queue("default"), *redis_->Command({"XRANGE", keys_.Queue("default"), "-", "+"}));
  ASSERT_EQ(entries.size(), 1u);
  v1::TaskEnvelope e;
  ASSERT_TRUE(e.ParseFromString(*entries[0].Field("e")));
  EXPECT_EQ(e.id(), (*r)[0].id);
  EXPECT_EQ(e.type(), "noop");
  EXPECT_EQ(e.enqueued_at_ms(), kNow);
}

// The status record follows TASK_RESULT_TTL from enqueue on: its TTL is the configured one, and with
// retention off (0) there is none at all (the workers would never update it), only the envelope.
TEST_F(TaskQueueTest, StatusRecordFollowsTheConfiguredTtlAndIsNotWrittenWhenOff) {
  Config hour;
  hour.task_result_ttl_s = 3600;
  Config off;
  off.task_result_ttl_s = 0;
  EXPECT_EQ(EnqueueOptions{}.status_ttl_s, 86400);
  auto kept = EnqueueTask(*redis_, keys_, "noop", "{}", EnqueueOptions::FromConfig(hour), kNow);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  int64_t ttl = redis_->Command({"TTL", keys_.Status(kept->id)})->integer;
  EXPECT_GT(ttl, 3500);
  EXPECT_LE(ttl, 3600);
  EnqueueOptions delayed = EnqueueOptions::FromConfig(off);
  delayed.run_at_ms = kNow + 60'000;
  auto bulk = EnqueueTasks(*redis_, keys_,
                           {{"noop", "{}", EnqueueOptions::FromConfig(off)}, {"noop", "{}", delayed}}, kNow);
  ASSERT_TRUE(bulk.ok()) << bulk.status().ToString();
  auto single = EnqueueTask(*redis_, keys_, "noop", "{}", EnqueueOptions::FromConfig(off), kNow);
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  for (const std::string& id : {(*bulk)[0].id, (*bulk)[1].id, single->id}) {
    EXPECT_EQ(redis_->Command({"EXISTS", keys_.Status(id)})->integer, 0) << id;
  }
  EXPECT_EQ(redis_->Command({"XLEN", keys_.Queue("default")})->integer, 3);  // kept + bulk[0] + single
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Scheduled()})->integer, 1);
}

TEST_F(TaskQueueTest, EnqueueTasksRefusesBadInputWithoutWritingAnything) {
  EnqueueOptions bad;
  bad.queue = "no spaces";
  EXPECT_EQ(EnqueueTasks(*redis_, keys_, {{"noop", "{}", {}}, {"noop", "{}", bad}}, kNow).status().code(),
            StatusCode::kInvalidArgument);
  EnqueueOptions unique;
  unique.unique_key = "k";
  EXPECT_EQ(EnqueueTasks(*redis_, keys_, {{"noop", "{}", unique}}, kNow).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EnqueueTasks(*redis_, keys_, {{"", "{}", {}}}, kNow).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(redis_->Command({"DBSIZE"})->integer, 0);
}

// A unique task is one script (EnqueueTask, standard schema): the key, the add and the status record together.
// A duplicate names the holder; an add that fails (here the queue key is not a stream) leaves the key free and
// writes nothing, so the caller's retry enqueues it instead of being told "duplicate" of a task that does not
// exist.
TEST_F(TaskQueueTest, AUniqueEnqueueTakesTheKeyOnlyWithTheTask) {
  EnqueueOptions o;
  o.unique_key = "report:7";
  o.unique_ttl_s = 600;
  ASSERT_TRUE(redis_->Command({"SET", keys_.Queue("default"), "not a stream"}).ok());
  auto failed = EnqueueTask(*redis_, keys_, "noop", "{}", o, kNow);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(redis_->Command({"EXISTS", keys_.Unique("report:7")})->integer, 0) << "the key was left taken";
  EXPECT_EQ(redis_->Command({"KEYS", "streamfleet:task:*"})->elements.size(), 0u) << "a status record of nothing";
  ASSERT_TRUE(redis_->Command({"DEL", keys_.Queue("default")}).ok());

  auto first = EnqueueTask(*redis_, keys_, "noop", "{}", o, kNow);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(redis_->Command({"GET", keys_.Unique("report:7")})->str, first->id);
  EXPECT_GT(redis_->Command({"TTL", keys_.Unique("report:7")})->integer, 500);
  EXPECT_EQ(Field(keys_.Status(first->id), "state"), "pending");
  auto second = EnqueueTask(*redis_, keys_, "noop", "{}", o, kNow);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->duplicate);
  EXPECT_EQ(second->id, first->id);
  EXPECT_EQ(redis_->Command({"XLEN", keys_.Queue("default")})->integer, 1);

  // A key TTL that is not a positive whole number is refused before anything is sent, and by the script
  // itself before the add (its SET would otherwise fail after the task was in).
  EnqueueOptions no_ttl = o;
  no_ttl.unique_key = "report:9";
  no_ttl.unique_ttl_s = 0;
  EXPECT_EQ(EnqueueTask(*redis_, keys_, "noop", "{}", no_ttl, kNow).status().code(), StatusCode::kInvalidArgument);
  no_ttl.unique_ttl_s = 600;
  EnqueueResult unsent;
  auto call = UniqueEnqueueCall(keys_, "noop", "{}", no_ttl, kNow, unsent);
  ASSERT_TRUE(call.ok());
  for (const char* bad : {"0", "1.5", "x"}) {
    call->args[2] = bad;
    auto r = redis_->Eval(GuardedEnqueueScript(), call->keys, call->args);
    EXPECT_TRUE(!r.ok() || r->is_error()) << bad;
  }
  EXPECT_EQ(redis_->Command({"EXISTS", keys_.Unique("report:9"), keys_.Status(unsent.id)})->integer, 0);
  EXPECT_EQ(redis_->Command({"XLEN", keys_.Queue("default")})->integer, 1);

  o.unique_key = "report:8";
  o.run_at_ms = kNow + 60'000;
  auto later = EnqueueTask(*redis_, keys_, "noop", "{}", o, kNow);
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->scheduled);
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Scheduled()})->integer, 1);
  EXPECT_EQ(Field(keys_.Status(later->id), "state"), "scheduled");
}

// A periodic task's period is Redis' clock's: workers whose clocks are hours apart fire it once per period.
TEST_F(TaskQueueTest, APeriodicTaskFiresOncePerPeriodOfRedisClock) {
  const int64_t hour = 3'600'000;
  EnqueueOptions o;
  int fired = 0;
  for (int64_t skew : {int64_t{0}, 5 * hour, -5 * hour, 100 * hour}) {
    auto r = EnqueuePeriodic(*redis_, keys_, "tick", hour, "noop", o, kNow + skew);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    fired += *r ? 1 : 0;
  }
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(redis_->Command({"XLEN", keys_.Queue("default")})->integer, 1);
  auto time = redis_->Command({"TIME"});
  const int64_t now = std::stoll(time->elements[0].str) * 1000;
  EXPECT_EQ(redis_->Command({"GET", keys_.Periodic("tick")})->str, std::to_string(now / hour))
      << "the mark is the period of Redis' clock";
  // A mark of an earlier period (the one before, as a worker's last firing left it) lets the period fire.
  ASSERT_TRUE(redis_->Command({"SET", keys_.Periodic("tick"), std::to_string(now / hour - 1)}).ok());
  EXPECT_TRUE(*EnqueuePeriodic(*redis_, keys_, "tick", hour, "noop", o, kNow));
  EXPECT_EQ(redis_->Command({"XLEN", keys_.Queue("default")})->integer, 2);
}

TEST_F(TaskQueueTest, EnqueueTaskIsOneRoundTripAndStillReportsRedisDown) {
  auto one = EnqueueTask(*redis_, keys_, "noop", "{}", {}, kNow);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(Field(keys_.Status(one->id), "state"), "pending");
  RedisConfig down = server_->config();
  down.port = testing::FreePort();
  auto c = RedisClient::Lazy(down);
  EXPECT_EQ(EnqueueTask(*c, keys_, "noop", "{}", {}, kNow).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace streamfleet
