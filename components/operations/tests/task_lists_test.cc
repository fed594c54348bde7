// The operators' task lists (streamfleet/operations/task_lists.h) against a real redis-server: every list is
// paged to its end without duplicates or gaps, filters by queue and type, and reads where the tasks are.
#include "streamfleet/operations/task_lists.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <set>

#include "streamfleet/operations/operator_task.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/taskqueue/task_lifecycle.h"
#include "support/map_env.h"
#include "support/redis_suite.h"

namespace streamfleet {
namespace {

constexpr int64_t kNow = 1'900'000'000'000;

class TaskListsTest : public testing::RedisSuite<> {
 protected:
  void Load(std::map<std::string, std::string> extra = {}) {
    auto env = server_->env();
    env["QUEUES"] = "default:1,low:1";
    for (auto& [k, v] : extra) env[k] = v;
    config_ = LoadConfig(testing::MapEnv(env), ":0").value();
    keys_ = TaskKeys::FromConfig(config_);
    for (const auto& s : keys_.QueueStreams({"default", "low"})) {
      ASSERT_TRUE(EnsureGroup(*redis_, s, TaskKeys::Group()).ok());
    }
  }
  void SetUp() override {
    RedisSuite::SetUp();
    Load();
  }
  std::string Enqueue(const std::string& type, const std::string& queue, int64_t run_at = 0) {
    auto r = EnqueueOperatorTask(*redis_, config_, {type, "{}", queue, "", run_at}, kNow);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : "";
  }
  // Every page of a list, `limit` at a time; fails on a repeated id.
  std::vector<ListedTask> All(TaskListKind kind, int limit, std::string queue = "", std::string type = "",
                              int* pages = nullptr) {
    std::vector<ListedTask> out;
    std::set<std::string> seen;
    TaskListQuery q{kind, queue, type, limit, ""};
    for (int page = 1; page < 100; ++page) {
      auto r = ListTasks(*redis_, config_, q, kNow);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) break;
      EXPECT_LE(r->tasks.size(), static_cast<size_t>(limit));
      for (auto& t : r->tasks) {
        EXPECT_TRUE(seen.insert(t.id).second) << "listed twice: " << t.id;
        out.push_back(t);
      }
      if (pages) *pages = page;
      if (r->next_cursor.empty()) break;
      q.cursor = r->next_cursor;
    }
    return out;
  }

  Config config_;
  TaskKeys keys_{"streamfleet"};
};

TEST_F(TaskListsTest, ScheduledAndRetryingArePagedEarliestFirstAndFiltered) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(Enqueue(i % 2 ? "mail" : "report", i < 5 ? "default" : "low", kNow + 1000 * (i + 1)));
  // A retry: attempt 1, with its error, in the same set.
  v1::TaskEnvelope retry;
  retry.set_id("r1");
  retry.set_type("mail");
  retry.set_queue("default");
  retry.set_attempt(1);
  retry.add_errors("attempt 1: UNAVAILABLE: smtp down");
  ASSERT_TRUE(redis_->Command({"ZADD", keys_.Scheduled(), std::to_string(kNow + 500), "default|" + retry.SerializeAsString()}).ok());

  int pages = 0;
  auto all = All(TaskListKind::kScheduled, 3, "", "", &pages);
  ASSERT_EQ(all.size(), 7u);
  EXPECT_GE(pages, 3);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].id, ids[i]) << "earliest first";
    EXPECT_EQ(all[i].at_ms, kNow + 1000 * static_cast<int64_t>(i + 1));
  }
  EXPECT_EQ(All(TaskListKind::kScheduled, 2, "low").size(), 2u);
  EXPECT_EQ(All(TaskListKind::kScheduled, 2, "", "mail").size(), 3u);

  auto retrying = All(TaskListKind::kRetrying, 10);
  ASSERT_EQ(retrying.size(), 1u);
  EXPECT_EQ(retrying[0].id, "r1");
  EXPECT_EQ(retrying[0].attempt, 1);
  EXPECT_EQ(retrying[0].detail, "attempt 1: UNAVAILABLE: smtp down");
}

// The scheduled set drains from its front as tasks come due. Pages were offsets from the front: the second
// page skipped as many tasks as had come due since the first. Ties of run time are walked in order too.
TEST_F(TaskListsTest, AScheduledPageStartsAfterTheLastListedWhateverCameDueMeanwhile) {
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(Enqueue("report", "default", kNow + 1000 * (i / 2 + 1)));  // in pairs
  TaskListQuery q{TaskListKind::kScheduled, "", "", 3, ""};
  auto first = ListTasks(*redis_, config_, q, kNow);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->tasks.size(), 3u);
  // The first page ends inside a pair of equal run times. Tasks come due in run-time order and leave the set:
  // the first four here (the last listed one and its pair among them).
  ASSERT_TRUE(redis_->Command({"ZREMRANGEBYSCORE", keys_.Scheduled(), "-inf", std::to_string(kNow + 2000)}).ok());
  std::vector<std::string> listed;
  for (const auto& t : first->tasks) listed.push_back(t.id);
  q.cursor = first->next_cursor;
  while (!q.cursor.empty()) {
    auto page = ListTasks(*redis_, config_, q, kNow);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& t : page->tasks) listed.push_back(t.id);
    q.cursor = page->next_cursor;
  }
  // Every task once, none skipped: the first page's, then the four not yet due (the other of the third pair
  // came due before it was listed: it is no longer scheduled; a pair is ordered by its members' bytes).
  std::vector<std::string> want = {ids[4], ids[5], ids[6], ids[7]};
  for (const auto& t : first->tasks) want.push_back(t.id);
  std::vector<std::string> got = listed;
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  // Ties across pages: a page of 1 walks the pairs one member at a time.
  q = {TaskListKind::kScheduled, "", "", 1, ""};
  std::vector<std::string> one_by_one;
  do {
    auto page = ListTasks(*redis_, config_, q, kNow);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& t : page->tasks) one_by_one.push_back(t.id);
    q.cursor = page->next_cursor;
  } while (!q.cursor.empty() && one_by_one.size() < 20);
  std::sort(one_by_one.begin(), one_by_one.end());
  std::vector<std::string> left = {ids[4], ids[5], ids[6], ids[7]};
  std::sort(left.begin(), left.end());
  EXPECT_EQ(one_by_one, left);
  EXPECT_EQ(ListTasks(*redis_, config_, {TaskListKind::kSucceeded, "", "", 10, "0:9223372036854775807"}, kNow)
                .status()
                .code(),
            StatusCode::kInvalidArgument)
      << "an offset near INT64_MAX overflowed";
}

TEST_F(TaskListsTest, RunningListsWhatWorkersHoldWithTheirConsumer) {
  for (int i = 0; i < 5; ++i) Enqueue("report", "default");
  std::string waiting = Enqueue("report", "low");
  ASSERT_TRUE(redis_->Command({"XREADGROUP", "GROUP", "workers", "host-1-0", "COUNT", "5", "STREAMS",
                               keys_.Queue("default"), ">"}).ok());
  auto running = All(TaskListKind::kRunning, 2);
  ASSERT_EQ(running.size(), 5u) << "the task nobody read yet is not running";
  for (const auto& t : running) {
    EXPECT_EQ(t.detail, "host-1-0");
    EXPECT_NE(t.id, waiting);
    EXPECT_FALSE(t.entry_id.empty());
  }
}

TEST_F(TaskListsTest, DeadAndSucceededComeFromTheDeadLettersAndTheRecords) {
  TaskLifecycle lifecycle = TaskLifecycle::FromConfig(config_);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Enqueue("report", "default"));
  auto read = redis_->Command({"XREADGROUP", "GROUP", "workers", "w", "COUNT", "4", "STREAMS", keys_.Queue("default"), ">"});
  auto entries = ParseStreamReply(*read);
  ASSERT_EQ(entries.size(), 4u);
  FinishedTasks finished;
  for (int i = 0; i < 4; ++i) {
    v1::TaskEnvelope t;
    ASSERT_TRUE(t.ParseFromString(*entries[i].Field("e")));
    if (i < 3) {
      ASSERT_TRUE(lifecycle.DeadLetter(*redis_, entries[i].stream, entries[i].id, *entries[i].Field("e"),
                                       "failed after 5 attempts: boom", 5, &t).ok());
    } else {
      ASSERT_TRUE(lifecycle.Succeeded(*redis_, finished, entries[i].stream, entries[i].id, t.id(), "42", 1).ok());
    }
  }
  ASSERT_TRUE(lifecycle.Flush(*redis_, finished).ok());
  auto dead = All(TaskListKind::kDead, 2);
  ASSERT_EQ(dead.size(), 3u);
  EXPECT_EQ(dead[0].id, ids[0]);
  EXPECT_EQ(dead[0].detail, "failed after 5 attempts: boom");
  EXPECT_GT(dead[0].at_ms, 0);
  auto ok = All(TaskListKind::kSucceeded, 1);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].id, ids[3]);
  EXPECT_EQ(ok[0].detail, "42");
  EXPECT_TRUE(All(TaskListKind::kSucceeded, 5, "", "other").empty());
}

TEST_F(TaskListsTest, ClusterSchemaPagesThroughEveryShard) {
  Load({{"STREAMFLEET_KEY_SCHEMA", "cluster"}, {"TASK_QUEUE_SHARDS", "4"}});
  for (int i = 0; i < 9; ++i) Enqueue("report", "default", kNow + 1000 + i);
  EXPECT_EQ(All(TaskListKind::kScheduled, 2).size(), 9u);
  EXPECT_EQ(All(TaskListKind::kScheduled, 4, "low").size(), 0u);
}

TEST_F(TaskListsTest, BadQueriesAreRefused) {
  EXPECT_EQ(ListTasks(*redis_, config_, {TaskListKind::kDead, "", "", 0, ""}, kNow).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ListTasks(*redis_, config_, {TaskListKind::kDead, "", "", 10, "garbage"}, kNow).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ListTasks(*redis_, config_, {TaskListKind::kScheduled, "", "", 10, "0:x"}, kNow).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ListTasks(*redis_, config_, {TaskListKind::kDead, "Bad Queue", "", 10, ""}, kNow).status().code(),
            StatusCode::kInvalidArgument);
  TaskListKind k;
  EXPECT_TRUE(ParseTaskListKind("retrying", k));
  EXPECT_EQ(k, TaskListKind::kRetrying);
  EXPECT_FALSE(ParseTaskListKind("busy", k));
}

}  // namespace
}  // namespace streamfleet
