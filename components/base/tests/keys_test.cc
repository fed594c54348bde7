#include "streamfleet/base/keys.h"

#include <gtest/gtest.h>

#include "streamfleet/redis/cluster_slots.h"
#include "streamfleet/v1/chunk.pb.h"
#include "streamfleet/v1/event.pb.h"
#include "streamfleet/v1/task.pb.h"

namespace streamfleet {
namespace {

TEST(KeySchemaTest, SeedKeyNamesInStandardMode) {
  KeySchema k("app:scenario_planning", "streamfleet", KeySchemaMode::kStandard, 4);
  EXPECT_EQ(k.BufferKey({12, 345, 59}), "app:scenario_planning:org:12:scenario:345:generation:59:chunks");
  EXPECT_EQ(k.MetaKey({12, 345, 59}), "app:scenario_planning:org:12:scenario:345:generation:59:chunks:meta");
  EXPECT_EQ(k.BufferKey({12, 0, 59}), "app:scenario_planning:org:12:generation:59:chunks");
  EXPECT_EQ(k.MetaKey({12, 0, 59}), "app:scenario_planning:org:12:generation:59:chunks:meta");
  EXPECT_EQ(k.ControlKey({12, 345, 59}), "app:scenario_planning:org:12:generation:59:ctl");
}

TEST(KeySchemaTest, PrefixIsConfigurable) {
  KeySchema k("tenant-a", "sf", KeySchemaMode::kStandard, 1);
  EXPECT_EQ(k.BufferKey({1, 0, 2}), "tenant-a:org:1:generation:2:chunks");
  EXPECT_EQ(k.ChunkStream(0), "sf:chunks:0");
}

TEST(KeySchemaTest, HashedPartIsTheFirstNonEmptyTagElseTheKey) {
  EXPECT_EQ(HashedPart("app:{streamfleet:3}:org:1"), "streamfleet:3");
  EXPECT_EQ(HashedPart("{a}{b}"), "a");
  EXPECT_EQ(HashedPart("x{}{y}"), "x{}{y}");  // the first '{' has an empty tag: the whole key
  EXPECT_EQ(HashedPart("open{only"), "open{only");
  EXPECT_EQ(HashedPart("plain"), "plain");
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
}

TEST(KeySchemaTest, ClusterModeKeepsEveryScriptsKeysInOneSlot) {
  KeySchema k("app:scenario_planning", "streamfleet", KeySchemaMode::kCluster, 16);
  for (GenerationId g : {GenerationId{12, 345, 59}, GenerationId{12, 0, 59}, GenerationId{7, 1, 1000}}) {
    int shard = k.ShardOf(g);
    std::string tag = "streamfleet:" + std::to_string(shard);
    // Everything the ingest append, apply, mark-compacted, reset and sweep scripts touch for g.
    for (const auto& key : {k.BufferKey(g), k.MetaKey(g), k.SeenKey(g), k.ControlKey(g), k.DeadlinesKeyOf(g),
                            k.FinalizeStreamOf(g), k.ChunkStream(shard)}) {
      EXPECT_EQ(HashedPart(key), tag) << key;
    }
  }
  EXPECT_EQ(k.BufferKey({12, 345, 59}),
            "app:scenario_planning:{streamfleet:" + std::to_string(k.ShardOf({12, 345, 59})) +
                "}:org:12:scenario:345:generation:59:chunks");
  EXPECT_EQ(k.control_shards(), 16);
  EXPECT_TRUE(k.IsFinalizeStream(k.FinalizeStream(15)));
  EXPECT_FALSE(k.IsFinalizeStream(k.ChunkStream(15)));
}

TEST(KeySchemaTest, StandardModeHasOneDeadlineSetAndFinalizeStream) {
  KeySchema k("app:scenario_planning", "streamfleet", KeySchemaMode::kStandard, 4);
  EXPECT_EQ(k.control_shards(), 1);
  EXPECT_EQ(k.DeadlinesKeyOf({1, 0, 2}), "streamfleet:deadlines");
  EXPECT_EQ(k.FinalizeStreamOf({1, 0, 3}), "streamfleet:finalize");
  EXPECT_EQ(k.ChunkStream(3), "streamfleet:chunks:3");
}

TEST(KeySchemaTest, BufferScanPatternFindsBothFormsInBothModes) {
  for (auto mode : {KeySchemaMode::kStandard, KeySchemaMode::kCluster}) {
    KeySchema k("app:x", "sf", mode, 8);
    std::string p = k.BufferScanPattern(12, 59);
    // The pattern is a Redis glob; check the literal parts rather than reimplementing glob matching.
    std::string head = mode == KeySchemaMode::kCluster
                           ? "app:x:\\{sf:" + std::to_string(k.ShardOf({12, 0, 59})) + "\\}:org:12:*generation:59:chunks*"
                           : "app:x:org:12:*generation:59:chunks*";
    EXPECT_EQ(p, head);
  }
}

TEST(KeySchemaTest, GenerationAlwaysMapsToTheSameShard) {
  KeySchema k("p", "s", KeySchemaMode::kStandard, 8);
  std::set<int> used;
  for (int64_t g = 1; g < 200; ++g) {
    int a = k.ShardOf({1, 0, g});
    EXPECT_EQ(a, k.ShardOf({1, 0, g}));
    EXPECT_EQ(a, k.ShardOf({1, 7, g})) << "scenario must not change the shard";
    used.insert(a);
  }
  EXPECT_EQ(used.size(), 8u);
}

TEST(KeySchemaTest, MemberRoundTripsAndRejectsJunk) {
  GenerationId g;
  ASSERT_TRUE(KeySchema::ParseMember(KeySchema::Member({12, 0, 59}), &g));
  EXPECT_EQ(g, (GenerationId{12, 0, 59}));
  EXPECT_FALSE(KeySchema::ParseMember("12:0", &g));
  EXPECT_FALSE(KeySchema::ParseMember("12:x:59", &g));
  EXPECT_FALSE(KeySchema::ParseMember("12:0:59:1", &g));
}

TEST(EnvelopeTest, ChunkRoundTripsBinaryData) {
  v1::ChunkEnvelope e;
  e.set_kind(v1::ChunkEnvelope::CHUNK);
  e.set_organization_id(12);
  e.set_scenario_id(345);
  e.set_generation_id(59);
  e.set_seq(7);
  e.set_data(std::string("h\0\xff\xc3\xa9", 5));
  e.set_final(true);
  e.set_total_chunks(8);
  v1::ChunkEnvelope back;
  ASSERT_TRUE(back.ParseFromString(e.SerializeAsString()));
  EXPECT_EQ(back.data(), std::string("h\0\xff\xc3\xa9", 5));
  EXPECT_EQ(back.seq(), 7);
  EXPECT_TRUE(back.final());
  EXPECT_EQ(back.total_chunks(), 8);
}

TEST(EnvelopeTest, TaskAndEventRoundTrip) {
  v1::TaskEnvelope t;
  t.set_id("t1");
  t.set_type("webhook");
  t.set_payload(R"({"url":"http://x"})");
  t.set_attempt(2);
  t.add_errors("boom");
  v1::TaskEnvelope tb;
  ASSERT_TRUE(tb.ParseFromString(t.SerializeAsString()));
  EXPECT_EQ(tb.type(), "webhook");
  EXPECT_EQ(tb.errors(0), "boom");
  v1::Event ev;
  ev.mutable_generation_compacted()->set_generation_id(59);
  v1::Event eb;
  ASSERT_TRUE(eb.ParseFromString(ev.SerializeAsString()));
  EXPECT_EQ(eb.generation_compacted().generation_id(), 59);
}

}  // namespace
}  // namespace streamfleet
