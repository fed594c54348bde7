// The chunk path (ingest's ChunkWriter -> two compactors -> SQLite) on a real 3+3 Redis Cluster while the
// cluster changes under it: a master SIGKILLed mid-run (its replica promoted) and a slot migrated mid-run
// (ASK / TRYAGAIN while it moves, MOVED after). Verified as in the reliability suite: every generation's row
// holds exactly its chunks, in order, once: nothing lost, nothing applied twice.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

#include "compactor/compactor_service.h"
#include "streamfleet/chunks/chunk_writer.h"
#include "streamfleet/redis/cluster_slots.h"
#include "streamfleet/base/codec.h"
#include "support/compactor_drained.h"
#include "support/map_env.h"
#include "streamfleet/testing/redis_cluster.h"
#include "support/sql_database.h"
#include "support/wait.h"

namespace streamfleet {
namespace {

constexpr int kChunks = 10;

std::string ChunkText(int64_t gen, int seq) {
  return std::string(seq == 0 ? "[\"" : "") + "é" + std::to_string(gen * 100 + seq) +
         std::string(seq == kChunks - 1 ? "\"]" : "");
}

class ChunkPathClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new testing::RedisCluster(); }
  static void TearDownTestSuite() { delete cluster_; }

  void SetUp() override {
    cluster_->FlushAll();
    db_url_ = testing::FreshDatabaseUrl("sqlite", "sf-cluster", &path_);
    env_ = cluster_->env();
    env_.insert({{"DATABASE_URL", db_url_},
                 {"CHUNK_STREAMS", "8"},
                 {"VISIBILITY_TIMEOUT", "2s"},
                 {"GENERATION_IDLE_TIMEOUT", "60s"},
                 {"REDIS_TIMEOUT", "1s"}});
    config_ = LoadConfig(testing::MapEnv(env_), "127.0.0.1:0").value();
    redis_ = RedisClient::Connect(config_.redis).value();
  }
  void TearDown() override {
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }

  // Appends one generation's chunks the way ingest does, retrying what fails (Redis answers kUnavailable
  // while a master is down or a slot moves); a retried chunk is the same seq, so at most a duplicate entry.
  void Produce(ChunkWriter& writer, int64_t gen) {
    GenerationId g{gen % 5 + 1, gen % 2 == 0 ? 900 + gen : 0, gen};
    for (int seq = 0; seq < kChunks; ++seq) {
      Status last;
      testing::WaitUntil([&] {
        std::vector<PendingChunk> one(1);
        one[0].seq = seq;
        one[0].data = ChunkText(gen, seq);
        one[0].final = seq == kChunks - 1;
        auto r = writer.Append(*redis_, g, one, "test");
        last = r.status();
        return r.ok();
      }, 60000);
      ASSERT_TRUE(last.ok()) << "gen " << gen << " seq " << seq << ": " << last.ToString();
    }
  }

  inline static testing::RedisCluster* cluster_ = nullptr;
  std::map<std::string, std::string> env_;
  std::string path_, db_url_;
  Config config_;
  std::unique_ptr<RedisClient> redis_;
};

TEST_F(ChunkPathClusterTest, MasterFailoverAndSlotMigrationMidRunLoseNothingAndApplyNothingTwice) {
  constexpr int kGens = 240;
  // Two compactors, as two processes would run them (own configs, stores, registries, consumer names).
  std::vector<std::unique_ptr<Config>> configs;
  std::vector<std::unique_ptr<SqlStore>> stores;
  std::vector<std::unique_ptr<prometheus::Registry>> registries;
  std::vector<std::unique_ptr<compactor::CompactorService>> fleet;
  RedisServerClock clock;
  for (int i = 0; i < 2; ++i) {
    auto env = env_;
    env["CONSUMER_NAME"] = "cluster-" + std::to_string(i);
    configs.push_back(std::make_unique<Config>(LoadConfig(testing::MapEnv(env), "127.0.0.1:0").value()));
    stores.push_back(SqlStore::Open(db_url_).value());
    ASSERT_TRUE(stores.back()->Migrate().ok());
    registries.push_back(std::make_unique<prometheus::Registry>());
    compactor::LoopOptions o;
    o.block_ms = 50;
    fleet.push_back(std::make_unique<compactor::CompactorService>(*configs.back(), clock, *stores.back(),
                                                                  *registries.back(), o));
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> loops;
  for (auto& c : fleet) loops.emplace_back([&c, &stop] { c->Run(stop); });

  ChunkWriter writer(config_);
  const KeySchema& keys = writer.keys();
  std::atomic<int64_t> gen = 1;
  for (; gen <= kGens / 3; ++gen) Produce(writer, gen);

  // Failover: the master of shard 3's slot dies. Redis replicates asynchronously, so what it acknowledged
  // is only safe once a replica has it: WAIT first (what a producer that needs this guarantee does).
  int victim_slot = KeySlot(keys.ChunkStream(3));
  std::string victim = cluster_->MasterOf(victim_slot);
  auto waited = redis_->CommandOn(victim, {"WAIT", "1", "2000"});
  ASSERT_TRUE(waited.ok() && waited->integer >= 1) << "the replica did not confirm the writes";
  cluster_->KillMasterOf(victim_slot);
  for (; gen <= 2 * kGens / 3; ++gen) Produce(writer, gen);  // retries until the replica is promoted
  cluster_->WaitForFailover();
  EXPECT_NE(cluster_->MasterOf(victim_slot), victim);

  // A slot migration while chunks keep coming: shard 5's slot moves to another master.
  int moving_slot = KeySlot(keys.ChunkStream(5));
  std::string from = cluster_->MasterOf(moving_slot), to;
  for (const auto& m : cluster_->Masters()) {
    if (m != from) to = m;
  }
  std::thread migration([&] {
    cluster_->BeginMigration(moving_slot, to);
    // The slot stays in migration for a while on purpose (chunks keep coming meanwhile), and at least until
    // a few generations were produced while it moved: a loaded machine could otherwise finish the
    // migration before any chunk saw ASK / TRYAGAIN.
    int64_t at_begin = gen.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    testing::WaitUntil([&] { return gen.load() >= std::min<int64_t>(at_begin + 5, kGens + 1); });
    cluster_->FinishMigration(moving_slot, to);
  });
  for (; gen <= kGens; ++gen) Produce(writer, gen);
  migration.join();
  EXPECT_EQ(cluster_->MasterOf(moving_slot), to);

  // Every row written, and every entry read and acknowledged: any re-finalization of a generation whose
  // state was lost with the killed master has happened too.
  EXPECT_TRUE(testing::WaitUntil(
      [&] { return *stores.front()->CountGenerations() >= kGens && testing::CompactorDrained(*redis_, keys); }, 120000))
      << "rows: " << *stores.front()->CountGenerations();
  stop = true;
  for (auto& t : loops) t.join();

  ASSERT_EQ(*stores.front()->CountGenerations(), kGens);
  for (int64_t g = 1; g <= kGens; ++g) {
    std::string expected;
    for (int s = 0; s < kChunks; ++s) expected += ChunkText(g, s);
    auto row = stores.front()->GetGeneration(g);
    ASSERT_TRUE(row.ok() && row->has_value()) << "generation " << g;
    EXPECT_EQ(Base64Decode((*row)->compacted.value_or("")).value_or("<bad>"), expected) << "generation " << g;
    EXPECT_EQ((*row)->chunk_count, kChunks) << "generation " << g;
  }
  auto dead = redis_->Command({"XLEN", keys.ChunkDeadLetterStream()});
  ASSERT_TRUE(dead.ok());
  EXPECT_EQ(dead->integer, 0) << "nothing dead-lettered";
}

}  // namespace
}  // namespace streamfleet
