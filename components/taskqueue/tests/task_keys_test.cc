// Task queue key names: the standard names users rely on, and in cluster mode one hash tag for every key a
// task-queue script touches (task_queue.cc: move-due, retry, dead-letter, next-task).
#include "streamfleet/taskqueue/task_keys.h"

#include <gtest/gtest.h>

#include <set>

#include "streamfleet/redis/cluster_slots.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "support/map_env.h"

namespace streamfleet {
namespace {

TEST(TaskKeysTest, StandardModeKeepsTheDocumentedNames) {
  TaskKeys k("streamfleet");
  EXPECT_FALSE(k.cluster());
  EXPECT_EQ(k.shards(), 1);
  EXPECT_EQ(k.Queue("default"), "streamfleet:queue:default");
  EXPECT_EQ(k.QueueShards("default"), std::vector<std::string>{"streamfleet:queue:default"});
  EXPECT_EQ(k.ScheduledOf(k.Queue("default")), "streamfleet:scheduled");
  EXPECT_EQ(k.DeadLettersOf(k.Queue("low")), "streamfleet:dlq:tasks");
  EXPECT_EQ(k.AllDeadLetters({"default", "low"}), std::vector<std::string>{"streamfleet:dlq:tasks"});
  EXPECT_EQ(k.AllScheduled({"default", "low"}), std::vector<std::string>{"streamfleet:scheduled"});
  EXPECT_EQ(k.Paused(), "streamfleet:paused");
  EXPECT_EQ(k.QueueOf("streamfleet:queue:low"), "low");
  EXPECT_EQ(k.QueueOf("streamfleet:dlq:tasks"), "");
  EXPECT_EQ(k.ShardFor("any"), 0);
}

TEST(TaskKeysTest, ClusterModeKeepsEveryScriptsKeysInTheShardsHashTag) {
  TaskKeys k("streamfleet", KeySchemaMode::kCluster, 4);
  EXPECT_TRUE(k.cluster());
  EXPECT_EQ(k.Queue("default", 2), "{streamfleet:queue:default:2}");
  std::set<int> slots;
  for (const char* q : {"default", "critical", "a.b-c_9"}) {
    for (int i = 0; i < 4; ++i) {
      const std::string stream = k.Queue(q, i);
      const std::string tag = std::string("streamfleet:queue:") + q + ":" + std::to_string(i);
      // move-due (scheduled + stream), retry (scheduled + stream), dead-letter (dlq + stream),
      // next-task (pause flag + stream).
      for (const std::string& key : {stream, k.ScheduledOf(stream), k.DeadLettersOf(stream), k.PausedFlagOf(stream)}) {
        EXPECT_EQ(HashedPart(key), tag) << key;
        EXPECT_EQ(KeySlot(key), KeySlot(stream)) << key;
      }
      EXPECT_EQ(k.QueueOf(stream), q);
      slots.insert(KeySlot(stream));
    }
  }
  EXPECT_GT(slots.size(), 4u) << "shards hash to different slots, so a queue spreads over masters";
  EXPECT_EQ(k.ScheduledOf(k.Queue("default", 2)), "{streamfleet:queue:default:2}:scheduled");
  EXPECT_EQ(k.DeadLettersOf(k.Queue("default", 2)), "{streamfleet:queue:default:2}:dlq");
  EXPECT_EQ(k.PausedFlagOf(k.Queue("default", 2)), "{streamfleet:queue:default:2}:paused");
  EXPECT_EQ(k.QueueStreams({"default", "low"}).size(), 8u);
  EXPECT_EQ(k.AllDeadLetters({"default", "low"}).size(), 8u);
  EXPECT_EQ(k.QueueOf("{streamfleet:queue:default:2}:dlq"), "");
}

TEST(TaskKeysTest, UniqueKeysAlwaysPickTheSameShardAndOthersSpread) {
  TaskKeys k("streamfleet", KeySchemaMode::kCluster, 4);
  for (const char* u : {"report:1", "report:2", "x"}) {
    int s = k.ShardFor(u);
    EXPECT_GE(s, 0);
    EXPECT_LT(s, 4);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(k.ShardFor(u), s);
  }
  std::set<int> used;
  for (int i = 0; i < 200; ++i) used.insert(k.ShardFor(""));
  EXPECT_EQ(used.size(), 4u);
}

TEST(TaskKeysTest, FromConfigShardsOnlyInClusterMode) {
  auto standard = LoadConfig(testing::MapEnv({}), "127.0.0.1:0");
  ASSERT_TRUE(standard.ok()) << standard.status().ToString();
  EXPECT_EQ(TaskKeys::FromConfig(*standard).shards(), 1);
  EXPECT_EQ(TaskKeys::FromConfig(*standard).Queue("default"), "streamfleet:queue:default");
  auto cluster = LoadConfig(testing::MapEnv({{"REDIS_URL", "redis://127.0.0.1:7000,127.0.0.1:7001"},
                                             {"REDIS_CLUSTER", "true"}}),
                            "127.0.0.1:0");
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  EXPECT_EQ(cluster->task_queue_shards, 4) << "the cluster default";
  EXPECT_EQ(TaskKeys::FromConfig(*cluster).QueueShards("default").size(), 4u);
  auto eight = LoadConfig(testing::MapEnv({{"REDIS_URL", "redis://127.0.0.1:7000"},
                                           {"REDIS_CLUSTER", "true"}, {"TASK_QUEUE_SHARDS", "8"}}),
                          "127.0.0.1:0");
  ASSERT_TRUE(eight.ok()) << eight.status().ToString();
  EXPECT_EQ(TaskKeys::FromConfig(*eight).shards(), 8);
  auto refused = LoadConfig(testing::MapEnv({{"TASK_QUEUE_SHARDS", "4"}}), "127.0.0.1:0");
  EXPECT_FALSE(refused.ok()) << "standard mode has one stream per queue (the XADD contract)";
}

}  // namespace
}  // namespace streamfleet
