// The compactor against a real redis-server and real SQL (SQLite and PostgreSQL).
#include "compactor/compactor_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <thread>

#include "compactor/compactor_loops.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/base/compression.h"
#include "streamfleet/base/envelope_version.h"
#include "streamfleet/chunks/buffer_element.h"
#include "streamfleet/chunks/chunk_entry.h"
#include "streamfleet/chunks/chunk_writer.h"
#include "streamfleet/chunks/fleet_events.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/v1/chunk.pb.h"
#include "streamfleet/v1/event.pb.h"
#include "streamfleet/testing/chunk_envelope.h"
#include "support/map_env.h"
#include "streamfleet/testing/redis_server.h"
#include "support/redis_suite.h"
#include "support/compactor_drained.h"
#include "support/sql_database.h"
#include "support/tcp_proxy.h"
#include "support/wait.h"

namespace streamfleet::compactor {
namespace {

constexpr int64_t kStart = 1'800'000'000'000;

// A single redis-server, or the 3+3 cluster with STREAMFLEET_TEST_REDIS=cluster (compactor_cluster_test).
class CompactorTest : public testing::RedisSuite<::testing::TestWithParam<std::string>> {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
    db_url_ = testing::FreshDatabaseUrl(GetParam(), "sf-compactor", &path_);
    if (db_url_.empty()) GTEST_FAIL() << "STREAMFLEET_TEST_PG_URL is not set (scripts/test.sh sets it)";
    env_ = server_->env();
    env_.insert({{"DATABASE_URL", db_url_},
                 {"CONSUMER_NAME", "c1"},
                 {"GENERATION_IDLE_TIMEOUT", "30s"},
                 {"VISIBILITY_TIMEOUT", "100ms"},
                 // In cluster mode more shards than masters, so every master serves some.
                 {"CHUNK_STREAMS", server_->cluster() ? "8" : "2"}});
  }
  void TearDown() override {
    services_.clear();
    stores_.clear();
    if (!path_.empty()) {
      for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
    }
  }

  Config MakeConfig(std::map<std::string, std::string> extra = {}) {
    auto env = env_;
    for (auto& [k, v] : extra) env[k] = v;
    auto c = LoadConfig(testing::MapEnv(env), "127.0.0.1:0");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return *c;
  }

  CompactorService& AddService(std::map<std::string, std::string> extra = {}, Clock* clock = nullptr,
                               LoopOptions o = Fast()) {
    configs_.push_back(std::make_unique<Config>(MakeConfig(extra)));
    auto st = SqlStore::Open(db_url_);
    EXPECT_TRUE(st.ok());
    EXPECT_TRUE((*st)->Migrate().ok());
    stores_.push_back(std::move(*st));
    registries_.push_back(std::make_unique<prometheus::Registry>());
    services_.push_back(std::make_unique<CompactorService>(*configs_.back(), clock ? *clock : clock_,
                                                           *stores_.back(), *registries_.back(), o));
    return *services_.back();
  }
  static LoopOptions Fast() {
    LoopOptions o;
    o.block_ms = 10;
    return o;
  }
  // One cycle that handles something (the first cycle after a start only looks at its own pending entries).
  void RunUntilHandled(CompactorService& s) {
    for (int i = 0; i < 20; ++i) {
      auto r = s.RunOnce(stop_);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (*r > 0) return;
    }
    FAIL() << "nothing to handle";
  }
  int64_t Len(const std::string& key) { return redis_->Command({"XLEN", key})->integer; }

  std::string Envelope(GenerationId g, int64_t seq, const std::string& data, bool final = false, int64_t total = 0,
                       bool finish = false) {
    return testing::ChunkEnvelopeBytes(g, seq, data, final, total, finish);
  }
  void Send(GenerationId g, int64_t seq, const std::string& data, bool final = false, int64_t total = 0) {
    KeySchema k = KeySchema::FromConfig(MakeConfig());
    ASSERT_TRUE(redis_->Command({"XADD", k.ChunkStream(k.ShardOf(g)), "*", "e", Envelope(g, seq, data, final, total)}).ok());
  }
  void Finish(GenerationId g, int64_t total) {
    KeySchema k = KeySchema::FromConfig(MakeConfig());
    ASSERT_TRUE(redis_->Command({"XADD", k.ChunkStream(k.ShardOf(g)), "*", "e", Envelope(g, 0, "", false, total, true)}).ok());
  }
  // Runs the service until a cycle handles nothing.
  void Pump(CompactorService& s, int max_cycles = 50) {
    for (int i = 0; i < max_cycles; ++i) {
      auto r = s.RunOnce(stop_);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (*r == 0 && i > 0) return;
    }
  }
  std::optional<GenerationRow> Row(int64_t gen) {
    auto r = stores_.front()->GetGeneration(gen);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }
  // The row of generation `gen` once it is there (nullopt if it is not within the usual wait).
  std::optional<GenerationRow> WaitForRow(int64_t gen) {
    std::optional<GenerationRow> row;
    testing::WaitUntil([&] {
      auto r = stores_.front()->GetGeneration(gen);
      if (r.ok()) row = *r;
      return row.has_value();
    });
    return row;
  }
  // Routes the database connections of the services added from now on through a proxy the test can cut
  // (PostgreSQL only: db_url_ names its port).
  std::unique_ptr<testing::TcpProxy> ProxyDatabase() {
    auto colon = db_url_.rfind(':');
    auto slash = db_url_.find('/', colon);
    auto proxy = std::make_unique<testing::TcpProxy>(std::stoi(db_url_.substr(colon + 1, slash - colon - 1)));
    db_url_ = db_url_.substr(0, colon + 1) + std::to_string(proxy->port()) + db_url_.substr(slash);
    return proxy;
  }
  // Generation `gen` of organization 1 sent as two chunks and finalized: its row must exist and hold the text
  // only (no llm_response, json_valid false, the text as sent). Its metadata.
  nlohmann::json TextOnlyRowMetadata(CompactorService& svc, int64_t gen, const std::string& first,
                                     const std::string& last) {
    GenerationId g{1, 0, gen};
    Send(g, 0, first);
    Send(g, 1, last, true);
    Pump(svc);
    auto row = Row(gen);
    EXPECT_TRUE(row.has_value()) << "no row: the finalization was refused";
    if (!row) return nlohmann::json::object();
    EXPECT_FALSE(row->llm_response.has_value());
    EXPECT_EQ(Decoded(*row), first + last);
    auto md = Meta(*row);
    EXPECT_EQ(md["json_valid"], false);
    return md;
  }
  std::string Decoded(const GenerationRow& row) { return Base64Decode(row.compacted.value_or("")).value_or("<bad>"); }
  nlohmann::json Meta(const GenerationRow& row) { return nlohmann::json::parse(row.metadata); }
  double CounterValue(prometheus::Counter& c) { return c.Value(); }
  int64_t Pending(const std::string& stream) {
    auto st = GetStreamStats(*redis_, stream);
    EXPECT_TRUE(st.ok());
    int64_t n = 0;
    for (const auto& g : st->groups) n += g.pending;
    return n;
  }

  std::string path_, db_url_;
  std::map<std::string, std::string> env_;
  ManualClock clock_{kStart};
  RedisServerClock server_clock_;  // for tests where ingest time (stream ids) and deadlines must agree
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Config>> configs_;
  std::vector<std::unique_ptr<SqlStore>> stores_;
  std::vector<std::unique_ptr<prometheus::Registry>> registries_;
  std::vector<std::unique_ptr<CompactorService>> services_;
};

TEST_P(CompactorTest, InOrderGenerationBecomesOneRow) {
  auto& svc = AddService();
  GenerationId g{12, 345, 59};
  const std::vector<std::string> parts = {"{\"title\": ", "\"Plan é\", ", "\"steps\": [1, 2", ", 3]}"};
  for (size_t i = 0; i < parts.size(); ++i) Send(g, static_cast<int64_t>(i), parts[i], i + 1 == parts.size());
  Pump(svc);
  auto row = Row(59);
  ASSERT_TRUE(row.has_value());
  std::string all = parts[0] + parts[1] + parts[2] + parts[3];
  EXPECT_EQ(Decoded(*row), all);
  EXPECT_EQ(nlohmann::json::parse(*row->llm_response), nlohmann::json::parse(all));
  EXPECT_EQ(row->chunk_count, 4);
  EXPECT_EQ(row->organization_id, 12);
  EXPECT_EQ(row->scenario_id, 345);
  EXPECT_EQ(row->compacted_by, "c1");
  auto md = Meta(*row);
  EXPECT_EQ(md["progress"]["received_chunks"], 4);
  EXPECT_EQ(md["progress"]["total_chunks"], 4);
  EXPECT_EQ(md["progress"]["percent"], 100);
  EXPECT_EQ(md["finalize_trigger"], "complete");
  EXPECT_EQ(md["received_bytes"], all.size());
  EXPECT_FALSE(md.contains("compacted"));
  // The buffer keys users inspect, with the TTL set at creation.
  const KeySchema& k = svc.buffer().keys();
  EXPECT_EQ(redis_->Command({"LLEN", k.BufferKey(g)})->integer, 4);
  auto ttl = redis_->Command({"TTL", k.BufferKey(g)})->integer;
  EXPECT_GT(ttl, 86000);
  auto meta = redis_->Command({"HGETALL", k.MetaKey(g)});
  std::map<std::string, std::string> m;
  for (auto& [f, v] : ParsePairs(*meta)) m[f] = v.str;
  EXPECT_EQ(m["received_chunks"], "4");
  EXPECT_EQ(m["total_chunks"], "4");
  EXPECT_EQ(m["received_bytes"], std::to_string(all.size()));
  EXPECT_EQ(m["first_chunk_at"], std::to_string(kStart));
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(g), "state"})->str, "compacted");
  // A generation.compacted event for the queue-worker.
  auto events = redis_->Command({"XRANGE", k.EventsStream(), "-", "+"});
  ASSERT_EQ(events->elements.size(), 1u);
  v1::Event ev;
  ASSERT_TRUE(ev.ParseFromString(*ParseEntries(k.EventsStream(), *events)[0].Field("e")));
  EXPECT_EQ(ev.generation_compacted().generation_id(), 59);
  EXPECT_EQ(ev.generation_compacted().chunk_count(), 4);
  // Everything acknowledged.
  for (int i = 0; i < k.chunk_streams(); ++i) {
    auto st = GetStreamStats(*redis_, k.ChunkStream(i));
    for (auto& gs : st->groups) EXPECT_EQ(gs.pending, 0);
  }
}

// The buffer gauges (and their LLEN alert) count every generation still receiving and nothing else. They
// SCANned the keyspace, at most 100 batches of 100 per scrape: beside other keys (a Redis shared with the
// cache) and many buffers they saw a fraction of them, and a finalized generation's buffer, kept until its
// TTL, was counted (a long generation kept the alert firing for a day after it was compacted).
TEST_P(CompactorTest, BufferGaugesCountEveryLiveBufferAndNoFinalizedOne) {
  auto& svc = AddService({{"GENERATION_LLEN_ALERT_THRESHOLD", "10"}});
  const KeySchema& k = svc.buffer().keys();
  std::vector<std::vector<std::string>> adds;
  for (int64_t gen = 1; gen <= 5; ++gen) {
    for (int64_t seq = 0; seq < 12; ++seq) adds.push_back({"XADD", k.ChunkStream(k.ShardOf({3, 0, gen})), "*", "e", Envelope({3, 0, gen}, seq, "x")});
  }
  for (int64_t gen = 100; gen < 2095; ++gen) {
    adds.push_back({"XADD", k.ChunkStream(k.ShardOf({3, 0, gen})), "*", "e", Envelope({3, 0, gen}, 0, "y")});
  }
  for (int64_t seq = 0; seq < 20; ++seq) Send({3, 0, 7}, seq, "z", seq == 19);  // finalized
  ASSERT_TRUE(redis_->Pipeline(adds).ok());
  Pump(svc, 200);
  ASSERT_TRUE(Row(7).has_value());
  for (int batch = 0; batch < 20; ++batch) {
    std::vector<std::vector<std::string>> sets;
    for (int i = 0; i < 1000; ++i) sets.push_back({"SET", "other:" + std::to_string(batch * 1000 + i), "v"});
    ASSERT_TRUE(redis_->Pipeline(sets).ok());
  }
  svc.SampleGauges();
  EXPECT_EQ(svc.metrics().buffers_live.Value(), 2000);
  EXPECT_EQ(svc.metrics().buffer_chunks.Value(), 5 * 12 + 1995);
  EXPECT_EQ(svc.metrics().buffer_llen_max.Value(), 12);
  EXPECT_EQ(svc.metrics().buffers_over_threshold.Value(), 5);
}

// A buffer that expired after compaction and was re-created by late chunks holds the late chunks only. With
// as many of them as the row has chunks, its finalization replaced the row's text with theirs; the row is
// now kept, since the write lacks the row's seqs (metadata.seq_runs).
TEST_P(CompactorTest, ABufferRecreatedByLateChunksDoesNotReplaceTheRowsText) {
  auto& svc = AddService({{"GENERATION_DELETE_AFTER_COMPACT", "true"}});
  GenerationId g{1, 0, 71};
  for (int s = 0; s < 3; ++s) Send(g, s, "<" + std::to_string(s) + ">", s == 2);
  Pump(svc);
  auto row = Row(71);
  ASSERT_TRUE(row.has_value());
  ASSERT_EQ(Decoded(*row), "<0><1><2>");
  EXPECT_EQ(Meta(*row)["seq_runs"], nlohmann::json::parse("[[0,2]]"));
  const KeySchema& k = svc.buffer().keys();
  for (const std::string& key : {k.BufferKey(g), k.MetaKey(g), k.SeenKey(g), k.ControlKey(g), k.IngestKey(g)}) {
    ASSERT_TRUE(redis_->Command({"DEL", key}).ok());  // as if they had expired
  }
  for (int s = 3; s < 6; ++s) Send(g, s, "<" + std::to_string(s) + ">");
  Finish(g, 6);
  Pump(svc);
  // Seqs 0-2 are not in the re-created buffer: its finalization is the idle timeout's.
  clock_.Advance(31'000);
  ASSERT_TRUE(svc.SweepNow().ok());
  Pump(svc);
  row = Row(71);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "<0><1><2>") << "the late chunks alone replaced the row";
  EXPECT_EQ(row->chunk_count, 3);
  // Counted as a kept row, not as a redelivered finalization (it was not one) nor as a finalization.
  EXPECT_EQ(CounterValue(svc.metrics().finalize_kept_rows), 1);
  EXPECT_EQ(CounterValue(svc.metrics().finalized_idle), 0);
  // The kept row lacks the late chunks: their buffer is not let go after GENERATION_DELETE_GRACE (300 s).
  EXPECT_GT(redis_->Command({"TTL", k.BufferKey(g)})->integer, 300);
  EXPECT_EQ(CounterValue(svc.metrics().finalize_replays), 0);
  EXPECT_EQ(CounterValue(svc.metrics().finalized_complete), 1);
  EXPECT_EQ(Pending(k.FinalizeStreamOf(g)), 0) << "the late finalization is settled, not retried";
}

TEST_P(CompactorTest, OutOfOrderAndDuplicatesAreAssembledBySeq) {
  auto& svc = AddService();
  GenerationId g{1, 0, 7};
  std::vector<int> order = {3, 0, 4, 1, 1, 3, 2, 0, 4};
  for (int s : order) Send(g, s, "<" + std::to_string(s) + ">", s == 4);
  Pump(svc);
  auto row = Row(7);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "<0><1><2><3><4>");
  EXPECT_EQ(row->chunk_count, 5);
  EXPECT_FALSE(row->llm_response.has_value());
  EXPECT_EQ(CounterValue(svc.metrics().chunks_applied), 5);
  EXPECT_EQ(CounterValue(svc.metrics().chunks_duplicate), 4);
  EXPECT_EQ(CounterValue(svc.metrics().finalized_complete), 1) << "finalized once per completion";
  EXPECT_EQ(redis_->Command({"HGET", svc.buffer().keys().MetaKey(g), "received_chunks"})->str, "5");
}

TEST_P(CompactorTest, FinalBeforeTheLastChunksWaitsForThem) {
  auto& svc = AddService();
  GenerationId g{1, 0, 8};
  Send(g, 0, "a");
  Send(g, 3, "d", /*final=*/true);
  Pump(svc);
  EXPECT_FALSE(Row(8).has_value()) << "seqs 1 and 2 are missing";
  Send(g, 2, "c");
  Send(g, 1, "b");
  Pump(svc);
  auto row = Row(8);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "abcd");
}

TEST_P(CompactorTest, FinishWithTotalFinalizesWhenAllArrived) {
  auto& svc = AddService();
  GenerationId g{1, 0, 9};
  Send(g, 1, "y");
  Finish(g, 3);
  Send(g, 0, "x");
  Pump(svc);
  EXPECT_FALSE(Row(9).has_value());
  Send(g, 2, "z");
  Pump(svc);
  ASSERT_TRUE(Row(9).has_value());
  EXPECT_EQ(Decoded(*Row(9)), "xyz");
}

TEST_P(CompactorTest, IdleTimeoutFinalizesWhatIsThereAndRecordsMissingSeqs) {
  auto& svc = AddService();
  GenerationId g{1, 0, 10};
  Send(g, 0, "[1,");
  Send(g, 2, "3]");
  Finish(g, 4);
  Pump(svc);
  EXPECT_FALSE(Row(10).has_value());
  clock_.Advance(29'000);
  ASSERT_TRUE(svc.SweepNow().ok());
  Pump(svc);
  EXPECT_FALSE(Row(10).has_value()) << "not idle long enough";
  clock_.Advance(2'000);
  ASSERT_TRUE(svc.SweepNow().ok());
  Pump(svc);
  auto row = Row(10);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "[1,3]");
  auto md = Meta(*row);
  EXPECT_EQ(md["finalize_trigger"], "idle_timeout");
  EXPECT_EQ(md["missing_seqs"], nlohmann::json::array({1, 3}));
  EXPECT_EQ(md["progress"]["percent"], 50);
  EXPECT_EQ(CounterValue(svc.metrics().finalized_idle), 1);
  // Sweeping again fires nothing: each deadline turns into exactly one finalization.
  clock_.Advance(60'000);
  ASSERT_TRUE(svc.SweepNow().ok());
  Pump(svc);
  EXPECT_EQ(CounterValue(svc.metrics().finalized_idle), 1);
}

TEST_P(CompactorTest, IdleDeadlineFiresOnAnotherCompactorWhenTheFirstIsGone) {
  GenerationId g{1, 0, 11};
  {
    auto& first = AddService({{"CONSUMER_NAME", "first"}});
    Send(g, 0, "\"only chunk\"");
    Pump(first);
  }
  // "first" is never run again. The deadline lives in Redis, so "second" fires it.
  auto& second = AddService({{"CONSUMER_NAME", "second"}});
  clock_.Advance(31'000);
  ASSERT_TRUE(second.SweepNow().ok());
  Pump(second);
  auto row = Row(11);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->compacted_by, "second");
  EXPECT_EQ(nlohmann::json::parse(*row->llm_response), "only chunk");
}

// Regression (fault suite, pg_outage long): with the compactors behind, a generation whose next chunks
// were still queued looked idle (its deadline counted from when a chunk was applied) and was finalized
// again and again while the backlog drained, each time rewriting its row. Idle is measured in ingest
// time, and a deadline waits until the compactors have read past it (components/chunks/include/streamfleet/chunks/consumed_watermark.h).
TEST_P(CompactorTest, IdleDeadlineDoesNotFireWhileTheGenerationsNextChunkIsStillQueued) {
  LoopOptions one = Fast();
  one.read_count = 1;  // a compactor behind: it reads the backlog one entry at a time
  auto& svc = AddService({{"GENERATION_IDLE_TIMEOUT", "1s"}}, &server_clock_, one);
  GenerationId g{1, 0, 30};
  Send(g, 0, "[1,");
  Send(g, 1, "2]");  // ingested right after the first: the generation was never idle
  RunUntilHandled(svc);  // applies seq 0 only
  // Letting time pass is the point: longer than the idle timeout, so only "seq 1 is still queued" keeps the
  // deadline from firing. A loaded machine only makes the pause longer, which the assertions allow.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(svc.SweepNow().ok());
  EXPECT_EQ(Len(svc.buffer().keys().FinalizeStreamOf(g)), 0) << "seq 1 is still queued: not idle";
  Pump(svc);  // seq 1; its deadline is 1 s after its ingest time, already past: fires now
  ASSERT_TRUE(svc.SweepNow().ok());
  Pump(svc);
  auto row = Row(30);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "[1,2]");
  EXPECT_EQ(Len(svc.buffer().keys().FinalizeStreamOf(g)), 1) << "one idle finalization, with both chunks";
  EXPECT_EQ(CounterValue(svc.metrics().finalized_idle), 1);
}

// The other side: a real pause in what ingest received is an idle timeout even when the compactor only
// reads both chunks later, after the pause is over.
TEST_P(CompactorTest, IdleDeadlineCountsFromIngestTimeNotFromWhenTheCompactorReadTheChunk) {
  LoopOptions one = Fast();
  one.read_count = 1;
  auto& svc = AddService({{"GENERATION_IDLE_TIMEOUT", "1s"}}, &server_clock_, one);
  GenerationId g{1, 0, 31};
  Send(g, 0, "\"a");
  // The point of the test: ingest gets nothing for > 1 s (a minimum; a loaded machine only pauses longer).
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Send(g, 1, "b\"");
  RunUntilHandled(svc);  // seq 0, read now: its deadline passed and the compactor has read past it
  ASSERT_TRUE(svc.SweepNow().ok());
  EXPECT_EQ(Len(svc.buffer().keys().FinalizeStreamOf(g)), 1);
  Pump(svc);
  ASSERT_TRUE(Row(31).has_value());
  EXPECT_EQ(Meta(*Row(31))["finalize_trigger"], "idle_timeout");
}

// A producer that writes the chunk stream itself (the stream contract; no ingest, so no control hash): the
// buffer script created the control hash without a TTL, and so did MarkCompacted for one that had expired;
// each generation left a hash in Redis for ever.
TEST_P(CompactorTest, AControlHashCreatedByTheCompactorExpiresWithItsGeneration) {
  auto& svc = AddService();
  const KeySchema& k = svc.buffer().keys();
  GenerationId g{1, 0, 14};
  Send(g, 0, "{\"a\": ");
  Pump(svc);
  ASSERT_EQ(redis_->Command({"HGET", k.ControlKey(g), "state"})->str, "receiving");
  EXPECT_GT(redis_->Command({"TTL", k.ControlKey(g)})->integer, 0) << "receiving";
  Send(g, 1, "1}", true);
  Pump(svc);
  ASSERT_TRUE(Row(14).has_value());
  ASSERT_EQ(redis_->Command({"HGET", k.ControlKey(g), "state"})->str, "compacted");
  EXPECT_GT(redis_->Command({"TTL", k.ControlKey(g)})->integer, 0) << "compacted";

  // MarkCompacted after the control hash is gone (expired before the row was written): it writes the
  // hash again, with a TTL.
  GenerationId h{1, 0, 15};
  ASSERT_TRUE(redis_->Command({"DEL", k.ControlKey(h)}).ok());
  auto mark = svc.buffer().MarkCompactedCommand(*redis_, h, 0, "1-0", 0);
  ASSERT_TRUE(redis_->Command(mark).ok());
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(h), "last_finalize_id"})->str, "1-0");
  EXPECT_GT(redis_->Command({"TTL", k.ControlKey(h)})->integer, 0);
}

TEST_P(CompactorTest, InvalidJsonIsStoredWithARecordedFallback) {
  auto& svc = AddService();
  auto md = TextOnlyRowMetadata(svc, 12, "{\"a\": 1,", " oops");
  EXPECT_TRUE(md["json_fallback"]["reason"].is_string());
  EXPECT_EQ(CounterValue(svc.metrics().json_fallbacks), 1);
}

// Valid JSON holding U+0000: PostgreSQL's jsonb refuses it, and the finalization was retried until it was
// dead-lettered, the generation without a row. Text with the fallback recorded, the same on both backends.
TEST_P(CompactorTest, JsonHoldingUPlus0000IsStoredAsTextOnEveryBackend) {
  auto& svc = AddService();
  auto md = TextOnlyRowMetadata(svc, 13, "{\"a\": \"servers busy, no connection", "\\u0000\"}");
  EXPECT_NE(md["json_fallback"]["reason"].get<std::string>().find("U+0000"), std::string::npos);
}

// Regression (fault suite): prose whose JSON parse stops inside a multi-byte character ("tr" + "é": the
// lexer expected "true") used to throw in the metadata dump and take the compactor down on every delivery.
TEST_P(CompactorTest, ProseWhoseParseStopsInsideAUtf8CharacterIsStored) {
  auto& svc = AddService();
  GenerationId g{1, 0, 112};
  Send(g, 0, "tr\xC3\xA9s ");
  Send(g, 1, "bien \xF0\x9F\x98\x80", true);
  Pump(svc);
  auto row = Row(112);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "tr\xC3\xA9s bien \xF0\x9F\x98\x80");
  auto md = Meta(*row);
  EXPECT_EQ(md["json_valid"], false);
  EXPECT_TRUE(md["json_fallback"]["reason"].is_string());
}

TEST_P(CompactorTest, LateStragglerReopensAndRefinalizesWithCompleteContent) {
  auto& svc = AddService();
  GenerationId g{1, 0, 13};
  Send(g, 0, "a");
  Send(g, 2, "c");
  Finish(g, 3);
  Pump(svc);
  clock_.Advance(31'000);
  ASSERT_TRUE(svc.SweepNow().ok());
  Pump(svc);
  ASSERT_EQ(Decoded(*Row(13)), "ac");
  EXPECT_EQ(redis_->Command({"HGET", svc.buffer().keys().ControlKey(g), "state"})->str, "compacted");
  Send(g, 1, "b");  // the straggler completes the generation
  Pump(svc);
  auto row = Row(13);
  EXPECT_EQ(Decoded(*row), "abc");
  EXPECT_EQ(row->chunk_count, 3);
  EXPECT_EQ(Meta(*row)["missing_seqs"], nlohmann::json::array());
  EXPECT_EQ(Meta(*row)["finalize_trigger"], "complete");
}

// What a compactor that dies mid-work leaves behind: entries read, effects applied, no XACK.
std::vector<ChunkItem> ReadAsDeadConsumer(RedisClient& redis, const KeySchema& k, std::vector<StreamEntry>* out) {
  // One read per stream: in cluster mode each stream has its own slot.
  out->clear();
  for (int i = 0; i < k.chunk_streams(); ++i) {
    auto read = redis.Command(
        {"XREADGROUP", "GROUP", "compactor", "dead", "COUNT", "100", "STREAMS", k.ChunkStream(i), ">"});
    EXPECT_TRUE(read.ok()) << read.status().ToString();
    if (!read.ok()) return {};
    auto part = ParseStreamReply(*read);
    out->insert(out->end(), part.begin(), part.end());
  }
  std::vector<ChunkItem> items;
  for (auto& e : *out) {
    std::string why;
    EXPECT_TRUE(DecodeChunkEntry(e, &items, &why)) << why;
  }
  return items;
}

TEST_P(CompactorTest, LateChunkAfterTheBufferWasDeletedNeverShrinksTheRow) {
  auto& svc = AddService({{"GENERATION_DELETE_AFTER_COMPACT", "true"}, {"GENERATION_DELETE_GRACE", "1s"}});
  GenerationId g{1, 0, 23};
  for (int s = 0; s < 3; ++s) Send(g, s, std::string(1, static_cast<char>('a' + s)), s == 2);
  Pump(svc);
  ASSERT_EQ(Decoded(*Row(23)), "abc");
  EXPECT_GT(redis_->Command({"PTTL", svc.buffer().keys().BufferKey(g)})->integer, 0) << "grace TTL set";
  // The buffer expires (Redis time): wait for it rather than for a time that is enough on a quiet machine.
  ASSERT_TRUE(testing::WaitUntil([&] { return redis_->Command({"EXISTS", svc.buffer().keys().BufferKey(g)})->integer == 0; }))
      << "the grace TTL never expired the buffer";
  Send(g, 5, "late");
  Pump(svc);
  clock_.Advance(31'000);
  ASSERT_TRUE(svc.SweepNow().ok());
  Pump(svc);
  EXPECT_EQ(Decoded(*Row(23)), "abc") << "a re-created buffer with less content must not replace the row";
  EXPECT_EQ(Row(23)->chunk_count, 3);
}

TEST_P(CompactorTest, CrashBetweenApplyAndAckChangesNothingOnRedelivery) {
  Config cfg = MakeConfig();
  KeySchema k = KeySchema::FromConfig(cfg);
  for (int i = 0; i < k.chunk_streams(); ++i) ASSERT_TRUE(EnsureGroup(*redis_, k.ChunkStream(i), "compactor").ok());
  GenerationId h{1, 0, 15};
  for (int s = 0; s < 3; ++s) Send(h, s, std::string(1, static_cast<char>('x' + s)), s == 2);
  std::vector<StreamEntry> entries;
  auto items = ReadAsDeadConsumer(*redis_, k, &entries);
  ASSERT_EQ(items.size(), 3u);
  ChunkBuffer dead_buffer(cfg, clock_);
  ASSERT_TRUE(dead_buffer.Apply(*redis_, items).ok());  // applied ... and the process dies here.

  auto& svc = AddService();
  Pump(svc);  // the finalization the dead consumer queued
  // Exceeding the visibility timeout (100ms) on purpose: the dead consumer's entries become claimable. The
  // sleep is a minimum, so a loaded machine only makes them idler.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_TRUE(svc.ClaimNow(stop_).ok());
  Pump(svc);
  EXPECT_EQ(Decoded(*Row(15)), "xyz");
  EXPECT_EQ(redis_->Command({"LLEN", k.BufferKey(h)})->integer, 3) << "redelivery appended nothing";
  EXPECT_EQ(CounterValue(svc.metrics().claimed), 3);
  EXPECT_EQ(CounterValue(svc.metrics().chunks_duplicate), 3);
  EXPECT_EQ(CounterValue(svc.metrics().chunks_applied), 0);
  EXPECT_EQ(CounterValue(svc.metrics().finalized_complete), 1);
  for (int i = 0; i < k.chunk_streams(); ++i) {
    EXPECT_EQ(Pending(k.ChunkStream(i)), 0);
  }
}

TEST_P(CompactorTest, CrashDuringFinalizationIsReplayedIdempotently) {
  auto& svc = AddService();
  Config cfg = MakeConfig();
  KeySchema k = KeySchema::FromConfig(cfg);
  ASSERT_TRUE(svc.RunOnce(stop_).ok());  // creates the groups
  GenerationId g{1, 0, 16};
  Send(g, 0, "[\"x\"]", true);
  std::vector<StreamEntry> entries;
  auto items = ReadAsDeadConsumer(*redis_, k, &entries);
  ChunkBuffer dead_buffer(cfg, clock_);
  ASSERT_TRUE(dead_buffer.Apply(*redis_, items).ok());
  ASSERT_TRUE(redis_->Command({"XACK", entries[0].stream, "compactor", entries[0].id}).ok());
  // The dead consumer takes the finalize entry, commits the row, and dies before XACK.
  auto fin = redis_->Command({"XREADGROUP", "GROUP", "compactor", "dead", "STREAMS", k.FinalizeStreamOf(g), ">"});
  auto fe = ParseStreamReply(*fin);
  ASSERT_EQ(fe.size(), 1u);
  GenerationId parsed;
  ASSERT_TRUE(KeySchema::ParseMember(*fe[0].Field("m"), &parsed));
  Finalizer dead_finalizer(cfg, dead_buffer, *stores_.front(), "dead");
  auto done = dead_finalizer.Finalize(*redis_, {parsed, "complete", fe[0].id});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  auto before = Row(16);
  ASSERT_TRUE(before.has_value());

  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past VISIBILITY_TIMEOUT=100ms, on purpose
  ASSERT_TRUE(svc.ClaimNow(stop_).ok());
  auto after = Row(16);
  EXPECT_EQ(CounterValue(svc.metrics().finalize_replays), 1);
  EXPECT_EQ(after->compacted_by, "dead") << "the replay changed nothing";
  EXPECT_EQ(after->metadata, before->metadata);
  EXPECT_EQ(*stores_.front()->CountGenerations(), 1);
  EXPECT_EQ(Pending(k.FinalizeStreamOf(g)), 0);
}

TEST_P(CompactorTest, PoisonEntriesGoToTheDeadLetterStreamWithTheirReason) {
  auto& svc = AddService({{"GENERATION_MAX_CHUNKS", "100"}});
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  KeySchema k = svc.buffer().keys();
  ASSERT_TRUE(redis_->Command({"XADD", k.ChunkStream(0), "*", "e", "\xff\xffnot a protobuf"}).ok());
  ASSERT_TRUE(redis_->Command({"XADD", k.ChunkStream(0), "*", "other", "field"}).ok());
  Send({1, 0, 17}, 1000000000, "huge seq");  // must not allocate a gigabit bitmap
  Send({1, 0, 18}, 0, "fine", true);
  Pump(svc);
  auto dlq = redis_->Command({"XRANGE", k.ChunkDeadLetterStream(), "-", "+"});
  auto dead = ParseEntries(k.ChunkDeadLetterStream(), *dlq);
  ASSERT_EQ(dead.size(), 3u);
  EXPECT_NE(dead[2].Field("reason")->find("outside [0, 100)"), std::string::npos) << *dead[2].Field("reason");
  EXPECT_EQ(redis_->Command({"EXISTS", k.SeenKey({1, 0, 17})})->integer, 0);
  EXPECT_TRUE(Row(18).has_value()) << "one bad entry does not block the others";
  EXPECT_EQ(CounterValue(svc.metrics().dead_lettered), 3);
  for (int i = 0; i < k.chunk_streams(); ++i) {
    EXPECT_EQ(Pending(k.ChunkStream(i)), 0);
  }
}

TEST_P(CompactorTest, EntriesDeliveredTooOftenAreDeadLettered) {
  auto& svc = AddService({{"MAX_DELIVERIES", "2"}});
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  KeySchema k = svc.buffer().keys();
  Send({1, 0, 19}, 0, "x");
  // Three consumers take it and die in turn.
  // (ClaimIdle with min_idle 0 takes the entry whatever its idle time: no need to wait between them.)
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ClaimIdle(*redis_, k.ChunkStream(k.ShardOf({1, 0, 19})), "compactor", "dying", 0, 10).ok() || i == 0);
    if (i == 0) {
      std::vector<StreamEntry> e;
      ReadAsDeadConsumer(*redis_, k, &e);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past VISIBILITY_TIMEOUT=100ms, on purpose
  ASSERT_TRUE(svc.ClaimNow(stop_).ok());
  auto dlq = ParseEntries(k.ChunkDeadLetterStream(), *redis_->Command({"XRANGE", k.ChunkDeadLetterStream(), "-", "+"}));
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_NE(dlq[0].Field("reason")->find("MAX_DELIVERIES"), std::string::npos);
}

TEST_P(CompactorTest, StorageBothKeepsChunksInTheDatabase) {
  auto& svc = AddService({{"GENERATION_CHUNK_STORAGE", "both"}});
  GenerationId g{3, 0, 20};
  Send(g, 1, "b");
  Send(g, 0, "a");
  Send(g, 1, "b");
  Send(g, 2, "c", true);
  Pump(svc);
  auto rows = stores_.front()->GetChunks(20);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[2].data, "c");
  EXPECT_EQ(Decoded(*Row(20)), "abc");
}

// A batch's chunk rows are written a group of about chunk_rows_bytes of text at a time (compressed frames
// may inflate a hundredfold past what the read was sized by). At 1 byte every group is one row: every row of
// several generations, duplicates among them, still arrives once. (That they are separate transactions is
// not seen from here.)
TEST_P(CompactorTest, WithGroupsOfOneRowEveryChunkRowArrivesOnce) {
  LoopOptions o = Fast();
  o.chunk_rows_bytes = 1;
  auto& svc = AddService({{"GENERATION_CHUNK_STORAGE", "db"}}, nullptr, o);
  for (int64_t gen = 21; gen <= 23; ++gen) {
    for (int seq = 0; seq < 5; ++seq) Send({3, 0, gen}, seq, std::string(1 + seq, 'a' + seq), seq == 4);
    Send({3, 0, gen}, 2, "ccc");  // a duplicate: written once
  }
  Pump(svc);
  for (int64_t gen = 21; gen <= 23; ++gen) {
    auto rows = stores_.front()->GetChunks(gen);
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 5u) << gen;
    EXPECT_EQ((*rows)[4].data, "eeeee");
    auto row = Row(gen);
    ASSERT_TRUE(row.has_value()) << gen;
    EXPECT_EQ(Decoded(*row), "abbcccddddeeeee");
  }
}

// CHUNK_COMPRESSION: a generation whose chunks came partly compressed (ingest of this build, large chunks) and
// partly plain (small chunks, or a producer of an earlier build during a rolling deploy) is one row whose
// `compacted` is the base64 of the text, as if nothing were compressed.
TEST_P(CompactorTest, CompressedAndPlainChunksOfOneGenerationBecomeTheSameRow) {
  auto& svc = AddService({{"GENERATION_CHUNK_STORAGE", "both"}});
  Config producer = MakeConfig({{"CHUNK_COMPRESSION", "zstd"}, {"CHUNK_COMPRESSION_MIN_BYTES", "1024"}});
  ChunkWriter writer(producer);
  GenerationId g{12, 0, 61};
  std::string rows_json;
  for (int i = 0; i < 120; ++i) rows_json += "{\"month\": " + std::to_string(i) + ", \"revenue\": 1200.5},";
  const std::vector<std::string> parts = {"{\"rows\": [" + rows_json, "{\"month\": -1}", "], \"note\": \"" +
                                          std::string(3000, 'n') + "\"", "}"};
  // One chunk per request: a request of several would share an entry and carry version 3 (the test below).
  for (int64_t s : {0, 1}) {
    std::vector<PendingChunk> one = {{s, parts[s], false, 0, false, ""}};
    ASSERT_TRUE(writer.Append(*redis_, g, one, "test").ok());
  }
  Send(g, 2, parts[2]);  // a producer without compression: plain, though large
  std::vector<PendingChunk> last = {{3, parts[3], true, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, last, "test").ok());

  // The envelopes: compressed (version 2, so older consumers refuse them) only where it paid.
  const KeySchema& k = svc.buffer().keys();
  auto entries = ParseEntries(k.ChunkStream(k.ShardOf(g)), *redis_->Command({"XRANGE", k.ChunkStream(k.ShardOf(g)), "-", "+"}));
  ASSERT_EQ(entries.size(), 4u);
  std::map<int64_t, v1::ChunkEnvelope> env;
  for (const auto& e : entries) {
    v1::ChunkEnvelope c;
    ASSERT_TRUE(c.ParseFromString(*e.Field("e")));
    env[c.seq()] = c;
  }
  EXPECT_EQ(env[0].data_encoding(), v1::ChunkEnvelope::DATA_ZSTD);
  EXPECT_EQ(env[0].version(), 2u);
  EXPECT_EQ(env[0].data_size(), static_cast<int64_t>(parts[0].size()));
  EXPECT_LT(env[0].data().size(), parts[0].size() / 3);
  for (int64_t s : {1, 2, 3}) {
    EXPECT_EQ(env[s].data_encoding(), v1::ChunkEnvelope::DATA_PLAIN) << s;
    EXPECT_EQ(env[s].version(), 0u) << "plain entries stay readable by consumers that know only version 1";
    EXPECT_EQ(env[s].data(), parts[s]);
  }
  EXPECT_FALSE(UnknownVersionReason("ChunkEnvelope", env[0].version(), 1).empty());

  Pump(svc);
  auto row = Row(61);
  ASSERT_TRUE(row.has_value());
  std::string all = parts[0] + parts[1] + parts[2] + parts[3];
  EXPECT_EQ(Decoded(*row), all);
  EXPECT_EQ(nlohmann::json::parse(*row->llm_response), nlohmann::json::parse(all));
  EXPECT_EQ(Meta(*row)["received_bytes"], all.size()) << "received_bytes counts text, not stored bytes";
  // The buffer list keeps the compressed element compressed ("<seq>z:"), the others as "<seq>:<text>".
  auto list = redis_->Command({"LRANGE", k.BufferKey(g), "0", "-1"});
  std::map<int64_t, std::string> elements;
  for (const auto& e : list->elements) {
    BufferElementView v;
    ASSERT_TRUE(ParseBufferElement(e.str, &v)) << e.str.substr(0, 20);
    elements[v.seq] = e.str;
    EXPECT_EQ(v.compressed, v.seq == 0);
    EXPECT_EQ(*BufferElementText(v, 1 << 20), parts[v.seq]);
  }
  EXPECT_EQ(elements.size(), 4u);
  EXPECT_EQ(elements[0].substr(0, 3), "0z:");
  EXPECT_EQ(elements[1], "1:" + parts[1]);
  // generation_chunks rows hold the text.
  auto rows = stores_.front()->GetChunks(61);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[0].data, parts[0]);
}

// ChunkWriter::Reset (a producer starting the text over) keeps the generation's attempt, one more, and every
// kind of entry the next attempt appends carries it: a single envelope, envelopes with client seqs sharing an
// entry, a ChunkBatch and a FINISH. The compactor reads them as before and the row is the new attempt's text.
TEST_P(CompactorTest, AfterAResetEveryEntryOfTheNextAttemptCarriesIt) {
  auto& svc = AddService();
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  const KeySchema& k = svc.buffer().keys();
  Config producer = MakeConfig({{"CHUNK_COMPRESSION", "off"}});
  ChunkWriter writer(producer);
  GenerationId g{12, 0, 69};
  std::vector<PendingChunk> old = {{std::nullopt, "old a", false, 0, false, ""}, {std::nullopt, "old b", false, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, old, "test").ok());
  EXPECT_FALSE(writer.Reset(*redis_, g).ok()) << "not before the compactor applied the first attempt";
  Pump(svc);
  ASSERT_TRUE(writer.Reset(*redis_, g).ok());
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(g), "attempt"})->str, "1");
  ASSERT_TRUE(writer.Reset(*redis_, g).ok());
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(g), "attempt"})->str, "1") << "nothing appended since: no new attempt";
  EXPECT_GT(redis_->Command({"TTL", k.ControlKey(g)})->integer, 0) << "a reset never leaves a key without a TTL";
  const std::string stream = k.ChunkStream(k.ShardOf(g));
  const std::string after = ParseEntries(stream, *redis_->Command({"XREVRANGE", stream, "+", "-", "COUNT", "1"})).at(0).id;

  std::vector<PendingChunk> batch = {{std::nullopt, "new a", false, 0, false, ""}, {std::nullopt, "new b", false, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, batch, "test").ok());
  std::vector<PendingChunk> single = {{std::nullopt, "new c", false, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, single, "test").ok());
  std::vector<PendingChunk> seqs = {{3, "new d", false, 0, false, ""}, {4, "new e", false, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, seqs, "test").ok());
  std::vector<PendingChunk> finish = {{std::nullopt, "", false, 5, true, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, finish, "test").ok());

  auto entries = ParseEntries(stream, *redis_->Command({"XRANGE", stream, "(" + after, "+"}));
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].fields.at(0).first, "b");
  v1::ChunkBatch parsed;  // protobuf's own reading of what the script appended
  ASSERT_TRUE(parsed.ParseFromString(*entries[0].Field("b")));
  EXPECT_EQ(parsed.attempt(), 1u);
  EXPECT_EQ(parsed.first_seq(), 0);
  std::vector<ChunkItem> items;
  for (const auto& e : entries) {
    std::string why;
    ASSERT_TRUE(DecodeChunkEntry(e, &items, &why)) << why;
    for (const auto& [field, raw] : e.fields) {
      v1::ChunkEnvelope env;
      if (field == "e" && env.ParseFromString(raw)) {
        EXPECT_EQ(env.attempt(), 1u) << "seq " << env.seq();
      }
    }
  }
  ASSERT_EQ(items.size(), 6u);
  for (const auto& item : items) EXPECT_EQ(item.attempt, 1u) << "seq " << item.seq << (item.finish ? " (finish)" : "");
  Pump(svc);
  auto row = WaitForRow(69);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "new anew bnew cnew dnew e");
  // Compacted, with its meta hash expired as GENERATION_DELETE_AFTER_COMPACT's grace makes it: a reset still
  // knows everything was applied (it waited for the meta hash's count, which was gone, for ever).
  ASSERT_TRUE(redis_->Command({"DEL", k.MetaKey(g)}).ok());
  EXPECT_TRUE(writer.Reset(*redis_, g).ok());
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(g), "attempt"})->str, "2");
  // Its compaction's event says which attempt was compacted (a live stream on a later one ignores it).
  auto events = ParseEntries(k.EventsStream(), *redis_->Command({"XREVRANGE", k.EventsStream(), "+", "-", "COUNT", "1"}));
  ASSERT_EQ(events.size(), 1u);
  auto ev = DecodeFleetEvent(events[0]);
  ASSERT_TRUE(ev.ok()) << ev.status().ToString();
  EXPECT_EQ(ev->type, "generation.compacted");
  EXPECT_EQ(ev->gen, 69);
  EXPECT_EQ(ev->attempt, 1u);
  EXPECT_EQ(ev->json.find("attempt"), std::string::npos) << "internal, not in the events route's JSON";
}

// ARCHITECTURE.md "Known windows" (1), now closed: a compactor applied the first attempt's chunks and died
// before its ack; the producer started over (the reset saw them applied) and the chunks came back to another
// compactor after the claim timeout. They took their seqs in the new buffer, and the new attempt's chunks of
// those seqs were dropped as duplicates: the row mixed two answers. An older attempt's chunks are now
// superseded: counted, acknowledged, not applied.
TEST_P(CompactorTest, AnEarlierAttemptsRedeliveredChunksDoNotEnterTheNextAttempt) {
  auto& svc = AddService();
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  const KeySchema& k = svc.buffer().keys();
  Config producer = MakeConfig({{"CHUNK_COMPRESSION", "off"}});
  ChunkWriter writer(producer);
  GenerationId g{12, 0, 73};
  std::vector<PendingChunk> old = {{std::nullopt, "old a", false, 0, false, ""}, {std::nullopt, "old b", false, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, old, "test").ok());
  const std::string stream = k.ChunkStream(k.ShardOf(g));
  std::vector<ChunkItem> first;
  for (const auto& e : ParseEntries(stream, *redis_->Command({"XRANGE", stream, "-", "+"}))) {
    std::string why;
    ASSERT_TRUE(DecodeChunkEntry(e, &first, &why)) << why;
  }
  ASSERT_EQ(first.size(), 2u);
  Pump(svc);  // applied and acknowledged: the reset may go ahead
  ASSERT_TRUE(writer.Reset(*redis_, g).ok());
  // The crashed compactor's delivery, claimed by another one: the same items again.
  auto again = svc.buffer().Apply(*redis_, first);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->superseded, std::vector<bool>({true, true}));
  EXPECT_EQ(again->applied, std::vector<bool>({false, false}));
  EXPECT_EQ(redis_->Command({"LLEN", k.BufferKey(g)})->integer, 0) << "nothing entered the new attempt's buffer";
  std::vector<PendingChunk> next = {{std::nullopt, "new a", false, 0, false, ""}, {std::nullopt, "new b", true, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, next, "test").ok());
  Pump(svc);
  auto row = WaitForRow(73);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "new anew b");
}

// ARCHITECTURE.md "Known windows" (3), now closed: the first attempt's row was committed without
// generation.run's mark (its idle finalization read the buffer before the reset and committed after the
// retry read the row), so the row held 3 chunks the retry's 1-chunk text lacks, and the retry's finalization
// kept the old row (kKeptFullerRow). The row records the attempt its text is, and a later one replaces it.
TEST_P(CompactorTest, ARetrysShorterTextReplacesTheEarlierAttemptsRow) {
  auto& svc = AddService();
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  Config producer = MakeConfig({{"CHUNK_COMPRESSION", "off"}});
  ChunkWriter writer(producer);
  GenerationId g{12, 0, 73};
  std::vector<PendingChunk> old = {{std::nullopt, "old a", false, 0, false, ""},
                                   {std::nullopt, "old b", false, 0, false, ""},
                                   {std::nullopt, "old c", false, 0, false, ""},
                                   {std::nullopt, "", false, 3, true, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, old, "test").ok());
  Pump(svc);
  auto row = WaitForRow(73);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "old aold bold c");
  EXPECT_FALSE(Meta(*row).contains("attempt")) << "attempt 0 leaves the metadata as it was";

  ASSERT_TRUE(writer.Reset(*redis_, g).ok());
  std::vector<PendingChunk> next = {{std::nullopt, "new a", false, 0, false, ""}, {std::nullopt, "", false, 1, true, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, next, "test").ok());
  Pump(svc);
  ASSERT_TRUE(testing::WaitUntil([&] {
    auto r = Row(73);
    return r.has_value() && Decoded(*r) == "new a";
  })) << "kept: " << (Row(73) ? Decoded(*Row(73)) : std::string("no row"));
  row = Row(73);
  EXPECT_EQ(row->chunk_count, 1);
  EXPECT_EQ(Meta(*row)["attempt"], 1);
  EXPECT_EQ(Meta(*row)["seq_runs"], nlohmann::json::parse("[[0,0]]"));
}

// The first attempt's finalization (here its idle timeout) is still unread when the producer starts over
// and writes the next attempt's first chunk (a compactor behind its streams). Read in one batch, the chunk
// was applied first and the finalization compacted it: a row of the next attempt's first chunk, and a
// generation.compacted of the next attempt that ended its live streams there. The entry is now superseded:
// nothing written, nothing said, the buffer left receiving; the next attempt's own finalization writes it.
TEST_P(CompactorTest, AFinalizationQueuedBeforeTheProducerStartedOverLeavesTheNextAttemptAlone) {
  auto& svc = AddService();
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  const KeySchema& k = svc.buffer().keys();
  Config producer = MakeConfig({{"CHUNK_COMPRESSION", "off"}});
  ChunkWriter writer(producer);
  GenerationId g{12, 0, 71};
  std::vector<PendingChunk> old = {{std::nullopt, "old a", false, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, old, "test").ok());
  Pump(svc);
  const std::string old_id =
      redis_->Command({"XADD", k.FinalizeStreamOf(g), "*", "m", KeySchema::Member(g), "r", "idle_timeout"})->str;
  ASSERT_TRUE(writer.Reset(*redis_, g).ok());
  // MarkFailed (a producer giving up before its attempt's first chunk) marks the hash of a reset generation,
  // and a first append starts it again.
  ASSERT_TRUE(writer.MarkFailed(*redis_, g).ok());
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(g), "state"})->str, "failed");
  std::vector<PendingChunk> next = {{std::nullopt, "new a", false, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, next, "test").ok());
  Pump(svc);
  EXPECT_EQ(CounterValue(svc.metrics().finalize_superseded), 1);
  EXPECT_FALSE(Row(71).has_value()) << "the next attempt's first chunk was written as the row";
  auto compacted_events = [&] {
    int n = 0;
    for (const auto& e : ParseEntries(k.EventsStream(), *redis_->Command({"XRANGE", k.EventsStream(), "-", "+"}))) {
      auto ev = DecodeFleetEvent(e);
      if (ev.ok() && ev->type == "generation.compacted" && ev->gen == 71) ++n;
    }
    return n;
  };
  EXPECT_EQ(compacted_events(), 0);
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(g), "state"})->str, "receiving");
  ASSERT_TRUE(writer.MarkFailed(*redis_, g).ok());
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(g), "state"})->str, "receiving")
      << "this attempt has a chunk: not the failed producer's to mark";
  // The same entry put back from the dead letters (a new id; "q" the one it was first queued under), and a
  // generation.compact task's entry queued before the reset: superseded alike.
  ASSERT_TRUE(redis_->Command({"XADD", k.FinalizeStreamOf(g), "*", "m", KeySchema::Member(g), "r", "idle_timeout",
                               "q", old_id}).ok());
  Pump(svc);
  EXPECT_EQ(CounterValue(svc.metrics().finalize_superseded), 2);
  EXPECT_FALSE(Row(71).has_value());
  std::vector<PendingChunk> last = {{std::nullopt, "new b", true, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, g, last, "test").ok());
  Pump(svc);
  auto row = WaitForRow(71);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "new anew b");
  EXPECT_EQ(compacted_events(), 1);
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(g), "state"})->str, "compacted");
  // A row committed while the producer started over (the reset between the finalizer's read and its mark)
  // does not mark the next attempt's keys: the mark names the attempt it read.
  ASSERT_TRUE(redis_->Command({"HSET", k.ControlKey(g), "state", "receiving"}).ok());
  EXPECT_EQ(redis_->Command(svc.buffer().MarkCompactedCommand(*redis_, g, 2, "1-0", 0))->integer, 0);
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(g), "state"})->str, "receiving");
  EXPECT_EQ(redis_->Command(svc.buffer().MarkCompactedCommand(*redis_, g, 2, "1-0", 1))->integer, 1);
}

// Ingest writes a request's chunks as one entry (docs/ARCHITECTURE.md "Chunk entries"), closed at 64 KiB: a
// ChunkBatch (field "b", envelopes of version 4 whose seqs follow the batch's first_seq) when the script
// assigns every seq, else a field "e" each (version 3). The compactor applies every envelope of an entry,
// and dead-letters an entry with a bad envelope whole (its ack covers them all), with every field kept for a
// replay.
TEST_P(CompactorTest, ChunksOfOneRequestShareAnEntryAndAreAppliedOrDeadLetteredTogether) {
  auto& svc = AddService();
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  const KeySchema& k = svc.buffer().keys();
  Config producer = MakeConfig({{"CHUNK_COMPRESSION", "off"}});  // 30 000 equal bytes would compress to little
  ChunkWriter writer(producer);
  GenerationId g{12, 0, 63};
  std::vector<PendingChunk> request;  // 5 chunks of 30 000 bytes: an entry of 3 (90 000 >= 64 KiB), then 2
  std::string all;
  for (int i = 0; i < 5; ++i) {
    request.push_back({std::nullopt, std::string(30000, static_cast<char>('a' + i)), i == 4, 0, false, ""});
    all += request.back().data;
  }
  for (int twice = 0; twice < 2; ++twice) {  // the second time: seqs 5..9, the batches' first_seq 5 and 8
    std::vector<PendingChunk> copy = request;  // Append writes the assigned seqs into its chunks
    ASSERT_TRUE(writer.Append(*redis_, g, copy, "test").ok());
    EXPECT_EQ(copy.back().seq, 5 * twice + 4);
  }
  all += all;
  const std::string stream = k.ChunkStream(k.ShardOf(g));
  auto entries = ParseEntries(stream, *redis_->Command({"XRANGE", stream, "-", "+"}));
  ASSERT_EQ(entries.size(), 4u);
  for (const auto& e : entries) ASSERT_EQ(e.fields.size(), 1u);
  EXPECT_EQ(entries[0].fields[0].first, "b");
  EXPECT_EQ(ChunkEnvelopeCount(entries[0]), 3u);
  EXPECT_EQ(ChunkEnvelopeCount(entries[1]), 2u);
  int undecodable = 0;
  auto envelopes = testing::ChunkEnvelopesOf(entries, &undecodable);  // protobuf's own parser
  EXPECT_EQ(undecodable, 0);
  ASSERT_EQ(envelopes.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(envelopes[i].seq(), i) << "seqs assigned by the script, in request order";
    EXPECT_EQ(envelopes[i].version(), kChunkEnvelopeBatched) << "never read alone, where its seq would be 0";
  }
  // Chunks with client seqs go as fields "e": each is checked and recorded by the script.
  GenerationId cg{12, 0, 62};
  std::vector<PendingChunk> seqs = {{2, "c", true, 0, false, ""}, {0, "a", false, 0, false, ""}, {1, "b", false, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, cg, seqs, "test").ok());
  const std::string cstream = k.ChunkStream(k.ShardOf(cg));
  auto cl = ParseEntries(cstream, *redis_->Command({"XREVRANGE", cstream, "+", "-", "COUNT", "1"}));
  ASSERT_EQ(cl.size(), 1u);
  ASSERT_EQ(cl[0].fields.size(), 3u);
  for (const auto& [f, v] : cl[0].fields) EXPECT_EQ(f, "e");
  EXPECT_EQ(testing::ChunkEnvelopesOf(cl).at(0).version(), kChunkEnvelopeShared) << "builds that read only the first \"e\" refuse it";
  // CHUNK_BATCHES=false (a rollout from a release without batches): such a request as fields "e", version 3.
  Config unbatched_config = MakeConfig({{"CHUNK_BATCHES", "false"}});
  ChunkWriter unbatched(unbatched_config);
  GenerationId ug{12, 0, 68};
  std::vector<PendingChunk> two = {{std::nullopt, "x", false, 0, false, ""}, {std::nullopt, "y", true, 0, false, ""}};
  ASSERT_TRUE(unbatched.Append(*redis_, ug, two, "test").ok());
  const std::string ustream = k.ChunkStream(k.ShardOf(ug));
  auto ul = ParseEntries(ustream, *redis_->Command({"XREVRANGE", ustream, "+", "-", "COUNT", "1"}));
  ASSERT_EQ(ul.size(), 1u);
  ASSERT_EQ(ul[0].fields.size(), 2u);
  EXPECT_EQ(ul[0].fields[0].first, "e");
  EXPECT_EQ(testing::ChunkEnvelopesOf(ul).at(1).seq(), 1);
  std::vector<PendingChunk> single = {{std::nullopt, "one", false, 0, false, ""}};
  ASSERT_TRUE(writer.Append(*redis_, {12, 0, 64}, single, "test").ok());
  auto last = ParseEntries(stream, *redis_->Command({"XREVRANGE", stream, "+", "-", "COUNT", "1"}));
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(testing::ChunkEnvelopesOf(last).at(0).version(), 0u) << "a one-chunk request stays readable by version 1";

  // Another producer's entry of two envelopes whose second is not one: nothing of it is applied.
  GenerationId bad{12, 0, 65};
  ASSERT_TRUE(redis_->Command({"XADD", k.ChunkStream(k.ShardOf(bad)), "*", "e", Envelope(bad, 0, "kept whole"), "e",
                               "\xff\xffnot a protobuf"})
                  .ok());
  // A batch whose second envelope is not one, and a batch's envelope alone (its seq would be 0): the same.
  GenerationId bad_batch{12, 0, 66}, loose{12, 0, 67};
  v1::ChunkBatch b;
  b.add_envelopes(testing::ChunkEnvelopeBytes(bad_batch, 0, "x", false, 0, false, kChunkEnvelopeBatched));
  b.add_envelopes("\xff\xffnot a protobuf");
  b.set_first_seq(0);
  ASSERT_TRUE(redis_->Command({"XADD", k.ChunkStream(k.ShardOf(bad_batch)), "*", "b", b.SerializeAsString()}).ok());
  ASSERT_TRUE(redis_->Command({"XADD", k.ChunkStream(k.ShardOf(loose)), "*", "e",
                               testing::ChunkEnvelopeBytes(loose, 3, "y", true, 0, false, kChunkEnvelopeBatched)})
                  .ok());
  Pump(svc);
  auto row = Row(63);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), all);
  EXPECT_EQ(row->chunk_count, 10);
  ASSERT_TRUE(Row(62).has_value());
  EXPECT_EQ(Decoded(*Row(62)), "abc");
  ASSERT_TRUE(Row(68).has_value());
  EXPECT_EQ(Decoded(*Row(68)), "xy");
  for (GenerationId d : {bad, bad_batch, loose}) EXPECT_EQ(redis_->Command({"EXISTS", k.BufferKey(d)})->integer, 0);
  auto dead = ParseEntries(k.ChunkDeadLetterStream(), *redis_->Command({"XRANGE", k.ChunkDeadLetterStream(), "-", "+"}));
  ASSERT_EQ(dead.size(), 3u);
  std::map<std::string, const StreamEntry*> by_field;  // the dead letters in any order (the shards differ)
  for (const auto& d : dead) {
    size_t es = 0;
    for (const auto& [f, v] : d.fields) es += f == "e" ? 1 : 0;
    by_field[d.Field("b") ? "b" : es == 2 ? "e-bad" : "e-loose"] = &d;
  }
  ASSERT_EQ(by_field.size(), 3u);
  EXPECT_NE(by_field["e-bad"]->Field("reason")->find("envelope 2 of the entry"), std::string::npos)
      << *by_field["e-bad"]->Field("reason");
  std::vector<std::string> kept;
  for (const auto& [f, v] : by_field["e-bad"]->fields) {
    if (f == "e") kept.push_back(v);
  }
  EXPECT_EQ(kept, (std::vector<std::string>{Envelope(bad, 0, "kept whole"), "\xff\xffnot a protobuf"}));
  EXPECT_NE(by_field["b"]->Field("reason")->find("envelope 2 of the entry: undecodable"), std::string::npos)
      << *by_field["b"]->Field("reason");
  EXPECT_EQ(*by_field["b"]->Field("b"), b.SerializeAsString()) << "the batch kept byte for byte, for a replay";
  EXPECT_NE(by_field["e-loose"]->Field("reason")->find("outside a ChunkBatch"), std::string::npos)
      << *by_field["e-loose"]->Field("reason");
  for (int i = 0; i < k.chunk_streams(); ++i) EXPECT_EQ(Pending(k.ChunkStream(i)), 0);
}

// An NDJSON request's chunks are one entry (docs/ARCHITECTURE.md "Chunk entries"): a read asks each chunk
// stream for as many entries as hold about read_chunks envelopes (a fixed COUNT of such entries once held
// 541 MB in one compactor), and the finalize stream is still read a full batch at a time meanwhile.
TEST_P(CompactorTest, ReadsOfLargeEntriesAskForFewOfThemWithoutHoldingFinalizationsBack) {
  LoopOptions o = Fast();
  o.read_chunks = 100;
  auto& svc = AddService({}, nullptr, o);
  ASSERT_TRUE(svc.RunOnce(stop_).ok());  // the first cycle looks at its own pending entries only
  const KeySchema& k = svc.buffer().keys();
  Config producer = MakeConfig();
  ChunkWriter writer(producer);
  constexpr int kGens = 200, kChunks = 50;
  for (int g = 1; g <= kGens; ++g) {
    std::vector<PendingChunk> request;
    for (int i = 0; i < kChunks; ++i) request.push_back({std::nullopt, "c" + std::to_string(i), i + 1 == kChunks, 0, false, ""});
    ASSERT_TRUE(writer.Append(*redis_, {13, 0, g}, request, "test").ok());
  }
  auto applied = [&] { return static_cast<int64_t>(CounterValue(svc.metrics().chunks_applied)); };
  auto queued_finalizations = [&] {
    int64_t n = 0;
    for (int i = 0; i < k.control_shards(); ++i) n += Len(k.FinalizeStream(i));
    return n;
  };
  auto rows = [&] {
    auto n = stores_.front()->CountGenerations();
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : -1;
  };
  // Nothing is known of the entries yet: a small first read.
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  const int64_t first = applied();
  EXPECT_GT(first, 0);
  EXPECT_LE(first, int64_t{ReadSizer::kFirstCount} * k.chunk_streams() * kChunks);
  EXPECT_LT(first, int64_t{kGens} * kChunks);
  const int64_t completed = queued_finalizations();
  EXPECT_EQ(completed, first / kChunks) << "each generation of the read is complete";
  // Then 100 envelopes per stream, 2 entries of 50; the finalizations queued by the first read all come in
  // the next one (not 2 at a time with the chunk entries).
  int64_t before = applied();
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  EXPECT_LE(applied() - before, int64_t{2} * k.chunk_streams() * kChunks);
  EXPECT_GE(rows(), completed);
  for (int i = 0; i < 400 && rows() < kGens; ++i) {
    before = applied();
    ASSERT_TRUE(svc.RunOnce(stop_).ok());
    EXPECT_LE(applied() - before, int64_t{2} * k.chunk_streams() * kChunks);
  }
  EXPECT_EQ(rows(), kGens);
  EXPECT_EQ(applied(), int64_t{kGens} * kChunks);
}

// A takeover asks for as few entries at a time as a read does (ReadSizer), and follows XAUTOCLAIM's cursor:
// Redis scans only 10 x COUNT pending entries per call, so at COUNT 2 a live consumer's 30 pending entries
// ahead of a dead one's would otherwise hide them.
TEST_P(CompactorTest, TakeoverWithASmallCountReachesADeadConsumersEntriesBehindALiveOnes) {
  LoopOptions o = Fast();
  o.read_count = 2;
  auto& svc = AddService({{"CHUNK_STREAMS", "1"}}, nullptr, o);
  ASSERT_TRUE(svc.RunOnce(stop_).ok());  // creates the group
  const KeySchema& k = svc.buffer().keys();
  Config producer = MakeConfig({{"CHUNK_STREAMS", "1"}});
  ChunkWriter writer(producer);
  auto write = [&](int first, int n) {
    for (int g = first; g < first + n; ++g) {
      std::vector<PendingChunk> request;
      for (int i = 0; i < 50; ++i) request.push_back({std::nullopt, "c", i == 49, 0, false, ""});
      ASSERT_TRUE(writer.Append(*redis_, {15, 0, g}, request, "test").ok());
    }
  };
  const std::string stream = k.ChunkStream(0);
  write(1, 30);
  auto live = redis_->Command({"XREADGROUP", "GROUP", k.CompactorGroup(), "live", "COUNT", "30", "STREAMS", stream, ">"});
  ASSERT_TRUE(live.ok());
  write(31, 40);
  ASSERT_TRUE(redis_->Command({"XREADGROUP", "GROUP", k.CompactorGroup(), "dead", "COUNT", "40", "STREAMS", stream, ">"}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past VISIBILITY_TIMEOUT
  std::vector<std::string> renew = {"XCLAIM", stream, k.CompactorGroup(), "live", "0"};
  for (const auto& e : ParseStreamReply(*live)) renew.push_back(e.id);
  ASSERT_EQ(renew.size(), 35u);
  ASSERT_TRUE(redis_->Command(renew).ok());  // the live consumer's entries are fresh again
  ASSERT_TRUE(svc.ClaimNow(stop_).ok());
  EXPECT_EQ(CounterValue(svc.metrics().claimed), 40);
  EXPECT_EQ(CounterValue(svc.metrics().chunks_applied), 40 * 50);
  auto dead = redis_->Command({"XPENDING", stream, k.CompactorGroup(), "-", "+", "100", "dead"});
  ASSERT_TRUE(dead.ok());
  EXPECT_TRUE(dead->elements.empty());
}

// A finalization holds its generation's buffer, text and row at once: a read's finalizations are done in
// groups of about LoopOptions::finalize_bytes of buffered text, one transaction each, not all together.
TEST_P(CompactorTest, FinalizationsOfOneReadAreDoneInGroupsBoundedByTheirBufferedBytes) {
  LoopOptions o = Fast();
  o.finalize_bytes = 3000;
  auto& svc = AddService({}, nullptr, o);
  auto rows = [&] {
    auto n = stores_.front()->CountGenerations();
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : -1;
  };
  for (int g = 1; g <= 10; ++g) Send({14, 0, g}, 0, std::string(1000, 'a' + g));
  Pump(svc);
  EXPECT_EQ(rows(), 0);
  auto batches = [&] { return svc.metrics().finalize_batch_latency.Collect().histogram.sample_count; };
  const auto batches_before = batches();
  clock_.Advance(31'000);
  ASSERT_TRUE(svc.SweepNow().ok());
  Pump(svc);
  EXPECT_EQ(rows(), 10);
  EXPECT_EQ(CounterValue(svc.metrics().finalized_idle), 10);
  EXPECT_EQ(batches() - batches_before, 4u) << "3 + 3 + 3 + 1 generations of 1000 bytes";
  for (int g = 1; g <= 10; ++g) {
    auto row = Row(g);
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(Decoded(*row), std::string(1000, 'a' + g));
  }
}

// The append script writes an assigned seq into the envelope as a protobuf varint of 1, 2 or more bytes: each
// width and the boundaries between them read back as the seq.
TEST_P(CompactorTest, AssignedSeqsReadBackAcrossEveryVarintWidth) {
  Config producer = MakeConfig();  // ChunkWriter keeps a reference to it
  producer.max_chunks_per_generation = int64_t{1} << 30;  // the script refuses seqs from this limit on
  const KeySchema k = KeySchema::FromConfig(producer);
  ChunkWriter writer(producer);
  GenerationId g{12, 0, 66};
  std::vector<int64_t> want;
  for (int64_t start : {0, 126, 16382, 2097150, 268435454}) {
    ASSERT_TRUE(redis_->Command({"HSET", k.ControlKey(g), "next_seq", std::to_string(start)}).ok());
    std::vector<PendingChunk> request;
    for (int i = 0; i < 3; ++i) {
      request.push_back({std::nullopt, "s" + std::to_string(start + i), false, 0, false, ""});
      want.push_back(start + i);
    }
    ASSERT_TRUE(writer.Append(*redis_, g, request, "test").ok());
    for (int i = 0; i < 3; ++i) EXPECT_EQ(*request[i].seq, start + i);
  }
  int undecodable = 0;
  std::vector<int64_t> got;
  for (const auto& e : testing::ChunksInStream(*redis_, k.ChunkStream(k.ShardOf(g)), &undecodable)) {
    got.push_back(e.seq());
    EXPECT_EQ(e.data(), "s" + std::to_string(e.seq()));
  }
  EXPECT_EQ(undecodable, 0);
  EXPECT_EQ(got, want);
}

TEST_P(CompactorTest, CompressedEntriesThatLieAboutTheirSizeAreDeadLettered) {
  auto& svc = AddService({{"INGEST_MAX_GENERATION_BYTES", "1048576"}});
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  const KeySchema& k = svc.buffer().keys();
  GenerationId g{1, 0, 62};
  auto compressed = [&](int64_t seq, const std::string& frame, int64_t size) {
    v1::ChunkEnvelope e;
    ASSERT_TRUE(e.ParseFromString(Envelope(g, seq, "")));
    e.set_data(frame);
    e.set_data_encoding(v1::ChunkEnvelope::DATA_ZSTD);
    e.set_data_size(size);
    e.set_version(2);
    ASSERT_TRUE(redis_->Command({"XADD", k.ChunkStream(k.ShardOf(g)), "*", "e", e.SerializeAsString()}).ok());
  };
  std::string text(5000, 'x');
  std::string frame = ZstdCompress(text);
  compressed(0, frame, 10);                                   // claims less than the frame holds
  compressed(1, frame.substr(0, frame.size() - 2), 5000);     // truncated
  compressed(2, "not zstd at all", 15);
  compressed(3, ZstdCompress(std::string(2 << 20, 'a')), 2 << 20);  // over the generation byte limit
  compressed(4, frame, 5000);                                 // fine
  Send(g, 5, "end", true);
  Pump(svc);
  auto dead = ParseEntries(k.ChunkDeadLetterStream(), *redis_->Command({"XRANGE", k.ChunkDeadLetterStream(), "-", "+"}));
  ASSERT_EQ(dead.size(), 4u);
  for (const auto& d : dead) EXPECT_NE(d.Field("reason")->find("compressed chunk data"), std::string::npos) << *d.Field("reason");
  // The good ones are buffered; the generation waits for the missing seqs (idle timeout) as for any lost chunk.
  EXPECT_EQ(redis_->Command({"LLEN", k.BufferKey(g)})->integer, 2);
}

// A buffered frame that does not decompress (written to the stream by hand, or damaged in Redis) is left out
// of the text at finalize. It used to be left out silently: the row now says how many
// (metadata.malformed_chunks), its seq is among the missing ones, and the compactor counts it.
TEST_P(CompactorTest, ABufferedFrameThatDoesNotDecompressIsNamedInTheRow) {
  auto& svc = AddService();
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  GenerationId g{1, 0, 63};
  std::vector<ChunkItem> items(3);
  for (int i = 0; i < 3; ++i) {
    items[i].gen = g;
    items[i].seq = i;
  }
  items[0].data = "[\"a\", ";
  items[1].data = "not a zstd frame";  // taken as compressed: nothing checks frames on this path
  items[1].compressed = true;
  items[1].plain_bytes = 5;
  items[2].data = "\"c\"]";
  items[2].final = true;
  ASSERT_TRUE(svc.buffer().Apply(*redis_, items).ok());
  Pump(svc);
  auto row = WaitForRow(63);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "[\"a\", \"c\"]");
  EXPECT_EQ(Meta(*row)["malformed_chunks"], 1);
  EXPECT_EQ(Meta(*row)["missing_seqs"], nlohmann::json::array({1}));
  EXPECT_EQ(CounterValue(svc.metrics().chunks_malformed), 1);
}

// An entry that kills the compactor (its memory, say) stays pending on the consumer that read it, and a
// restart under the same name reads its own pending entries first: each restart took it up again, a crash
// loop. Read again after a restart, an entry delivered more than MAX_DELIVERIES times is dead-lettered, as
// the claim path does with another consumer's.
TEST_P(CompactorTest, AnOwnPendingEntryDeliveredTooOftenIsDeadLetteredAfterARestart) {
  KeySchema k = KeySchema::FromConfig(MakeConfig());
  auto& first = AddService({{"CONSUMER_NAME", "pod-1"}});
  ASSERT_TRUE(first.RunOnce(stop_).ok());  // the groups
  GenerationId g{1, 0, 64};
  Send(g, 0, "poison");
  const std::string stream = k.ChunkStream(k.ShardOf(g));
  auto read = redis_->Command({"XREADGROUP", "GROUP", "compactor", "pod-1", "COUNT", "10", "STREAMS", stream, ">"});
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  auto entries = ParseStreamReply(*read);
  ASSERT_EQ(entries.size(), 1u);
  // Its earlier deliveries, each ended by the process dying: the count a crash loop leaves.
  ASSERT_TRUE(redis_->Command({"XCLAIM", stream, "compactor", "pod-1", "0", entries[0].id, "RETRYCOUNT", "9"}).ok());
  auto& restarted = AddService({{"CONSUMER_NAME", "pod-1"}});  // the same name, as a StatefulSet pod's
  Pump(restarted);
  auto dead = ParseEntries(k.ChunkDeadLetterStream(), *redis_->Command({"XRANGE", k.ChunkDeadLetterStream(), "-", "+"}));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_NE(dead[0].Field("reason")->find("read again after a restart"), std::string::npos) << *dead[0].Field("reason");
  EXPECT_EQ(redis_->Command({"LLEN", k.BufferKey(g)})->integer, 0) << "not applied";
  EXPECT_EQ(Pending(stream), 0) << "acknowledged";
}

TEST_P(CompactorTest, TrimmingKeepsUnacknowledgedEntries) {
  // Long enough that the dead consumer's entries are not claimed while the test looks at them. No kept
  // window (the next test covers it): everything acknowledged may go.
  LoopOptions o = Fast();
  o.trim_keep_ms = 0;
  auto& svc = AddService({{"VISIBILITY_TIMEOUT", "1500ms"}}, nullptr, o);
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  KeySchema k = svc.buffer().keys();
  for (int s = 0; s < 10; ++s) Send({1, 0, 21}, s, "x");
  std::vector<StreamEntry> taken;
  ReadAsDeadConsumer(*redis_, k, &taken);  // 10 pending on a dead consumer
  for (int s = 0; s < 10; ++s) Send({1, 0, 22}, s, "y", s == 9);
  Pump(svc);
  ASSERT_TRUE(svc.TrimNow().ok());
  int64_t total = 0;
  for (int i = 0; i < k.chunk_streams(); ++i) total += redis_->Command({"XLEN", k.ChunkStream(i)})->integer;
  EXPECT_GE(total, 10) << "the 10 pending entries survive trimming";
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));  // past VISIBILITY_TIMEOUT=1500ms, on purpose
  ASSERT_TRUE(svc.ClaimNow(stop_).ok());
  Pump(svc);
  ASSERT_TRUE(svc.TrimNow().ok());
  total = 0;
  for (int i = 0; i < k.chunk_streams(); ++i) total += redis_->Command({"XLEN", k.ChunkStream(i)})->integer;
  EXPECT_LE(total, 2) << "only the last delivered entry of each stream may stay";
}

// Acknowledged entries of the last trim_keep_ms (2 s by default) survive a trim: ingest's live tail reads the
// chunk streams outside the group, a little behind their end, and would skip an entry trimmed first.
TEST_P(CompactorTest, TrimmingKeepsTheLastSecondsForReadersOutsideTheGroup) {
  auto& svc = AddService();
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  KeySchema k = svc.buffer().keys();
  for (int s = 0; s < 10; ++s) Send({1, 0, 23}, s, "z", s == 9);
  Pump(svc);
  ASSERT_TRUE(Row(23).has_value()) << "every entry applied and acknowledged";
  ASSERT_TRUE(svc.TrimNow().ok());
  int64_t total = 0;
  for (int i = 0; i < k.chunk_streams(); ++i) total += redis_->Command({"XLEN", k.ChunkStream(i)})->integer;
  EXPECT_EQ(total, 10) << "acknowledged a moment ago: inside the kept window";
}

TEST_P(CompactorTest, ThreeCompactorsOnAThousandGenerationsWithRandomOrderAndDuplicates) {
  constexpr int kGens = 1000, kChunks = 20;
  std::mt19937 rng(42);
  std::vector<std::pair<GenerationId, int>> sends;
  std::map<int64_t, std::string> expected;
  auto chunk = [](int64_t gen, int seq) {
    // Multi-byte UTF-8 and a JSON shape, different per generation.
    return std::string(seq == 0 ? "[\"" : "") + "é" + std::to_string(gen * 100 + seq) + "ü" +
           std::string(seq == kChunks - 1 ? "\"]" : "");
  };
  for (int g = 1; g <= kGens; ++g) {
    for (int s = 0; s < kChunks; ++s) {
      sends.push_back({GenerationId{g % 7 + 1, g % 3 == 0 ? 500 + g : 0, 100000 + g}, s});
      expected[100000 + g] += chunk(100000 + g, s);
      if (rng() % 5 == 0) sends.push_back({GenerationId{g % 7 + 1, g % 3 == 0 ? 500 + g : 0, 100000 + g}, s});
    }
  }
  std::shuffle(sends.begin(), sends.end(), rng);
  KeySchema k = KeySchema::FromConfig(MakeConfig());
  for (size_t i = 0; i < sends.size(); i += 500) {
    std::vector<std::vector<std::string>> cmds;
    for (size_t j = i; j < std::min(sends.size(), i + 500); ++j) {
      auto& [g, s] = sends[j];
      cmds.push_back({"XADD", k.ChunkStream(k.ShardOf(g)), "*", "e", Envelope(g, s, chunk(g.gen, s), s == kChunks - 1)});
    }
    ASSERT_TRUE(redis_->Pipeline(cmds).ok());
  }
  std::vector<CompactorService*> fleet;
  for (int i = 0; i < 3; ++i) {
    fleet.push_back(&AddService({{"CONSUMER_NAME", "fleet-" + std::to_string(i)}, {"VISIBILITY_TIMEOUT", "5s"}}));
  }
  std::vector<std::thread> threads;
  std::atomic<bool> stop{false};
  for (auto* s : fleet) threads.emplace_back([s, &stop] { s->Run(stop); });
  // Every row written and every entry (duplicates included, and any finalization they queued) read and
  // acknowledged: then a duplicate that re-finalized a generation would already show in the counters below.
  EXPECT_TRUE(testing::WaitUntil([&] { return *stores_.front()->CountGenerations() >= kGens && testing::CompactorDrained(*redis_, k); }, 120000))
      << "rows: " << *stores_.front()->CountGenerations();
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_EQ(*stores_.front()->CountGenerations(), kGens);
  double finalized = 0, applied = 0;
  for (auto* s : fleet) {
    finalized += CounterValue(s->metrics().finalized_complete);
    applied += CounterValue(s->metrics().chunks_applied);
  }
  EXPECT_EQ(finalized, kGens) << "each generation finalized exactly once";
  EXPECT_EQ(applied, kGens * kChunks);
  EXPECT_EQ(redis_->Command({"XLEN", k.ChunkDeadLetterStream()})->integer, 0);
  for (const auto& [gen, text] : expected) {
    auto row = Row(gen);
    ASSERT_TRUE(row.has_value()) << gen;
    ASSERT_EQ(Decoded(*row), text) << gen;
    ASSERT_EQ(row->chunk_count, kChunks);
    ASSERT_TRUE(row->llm_response.has_value());
  }
}

TEST_P(CompactorTest, LoopsOfOneProcessAreConsumersThatShareTheWorkAndTheMetrics) {
  constexpr int kGens = 200, kChunks = 5;
  KeySchema k = KeySchema::FromConfig(MakeConfig());
  std::vector<std::vector<std::string>> cmds;
  std::map<int64_t, std::string> expected;
  for (int s = 0; s < kChunks; ++s) {  // round-robin: every generation is in flight at once
    for (int g = 1; g <= kGens; ++g) {
      GenerationId gen{3, 0, 200000 + g};
      std::string data = std::string(s == 0 ? "[\"" : "") + std::to_string(g * 10 + s) + (s == kChunks - 1 ? "\"]" : "");
      expected[gen.gen] += data;
      cmds.push_back({"XADD", k.ChunkStream(k.ShardOf(gen)), "*", "e", Envelope(gen, s, data, s == kChunks - 1)});
    }
  }
  ASSERT_TRUE(redis_->Pipeline(cmds).ok());
  AddService();  // migrates the schema (main does before opening the loops); never run: it only reads rows
  // No consumer dies here, so nothing may be reclaimed: with the fixture's 100ms visibility timeout a loaded
  // machine let the loops claim each other's entries, and the exact counts below became duplicates.
  configs_.push_back(std::make_unique<Config>(
      MakeConfig({{"CONSUMER_NAME", "pod-a"}, {"COMPACTOR_LOOPS", "3"}, {"VISIBILITY_TIMEOUT", "60s"}})));
  prometheus::Registry registry;
  auto loops = CompactorLoops::Open(*configs_.back(), server_clock_, registry, Fast());
  ASSERT_TRUE(loops.ok()) << loops.status().ToString();
  ASSERT_EQ((*loops)->size(), 3);
  // One Redis and one database health for the process: an outage every loop sees is counted once.
  EXPECT_EQ(&(*loops)->loop(0).redis_health(), &(*loops)->loop(2).redis_health());
  EXPECT_EQ(&(*loops)->loop(0).db_health(), &(*loops)->loop(1).db_health());
  std::atomic<bool> stop{false};
  std::thread runner([&] { (*loops)->Run(stop); });
  EXPECT_TRUE(testing::WaitUntil([&] { return *stores_.front()->CountGenerations() >= kGens; }, 60000));
  EXPECT_TRUE((*loops)->Ready().ok());
  stop = true;
  runner.join();  // Run returns once every loop has stopped
  ASSERT_EQ(*stores_.front()->CountGenerations(), kGens);
  for (const auto& [gen, text] : expected) {
    auto row = Row(gen);
    ASSERT_TRUE(row.has_value()) << gen;
    EXPECT_EQ(Decoded(*row), text) << gen;
  }
  // One registry: the loops' counters add up (each generation finalized once, each chunk applied once).
  EXPECT_EQ(CounterValue((*loops)->metrics().finalized_complete), kGens);
  EXPECT_EQ(CounterValue((*loops)->loop(2).metrics().chunks_applied), kGens * kChunks);
  EXPECT_EQ(CounterValue((*loops)->metrics().chunks_duplicate), 0);
  // Each loop is its own consumer of the group, named after the process's CONSUMER_NAME.
  auto consumers = redis_->Command({"XINFO", "CONSUMERS", k.ChunkStream(0), k.CompactorGroup()});
  ASSERT_TRUE(consumers.ok());
  std::set<std::string> names;
  for (const auto& c : consumers->elements) {
    for (size_t i = 0; i + 1 < c.elements.size(); i += 2) {
      if (c.elements[i].str == "name") names.insert(c.elements[i + 1].str);
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"pod-a", "pod-a-2", "pod-a-3"}));
  for (int s = 0; s < k.chunk_streams(); ++s) EXPECT_EQ(Pending(k.ChunkStream(s)), 0);
}

TEST_P(CompactorTest, DatabaseDownThenUpLosesNothingAndReadinessFollows) {
  if (GetParam() != "postgresql") GTEST_SKIP() << "the outage is simulated on the PostgreSQL connection";
  auto proxy = ProxyDatabase();
  auto& svc = AddService();
  std::atomic<bool> stop{false};
  std::thread loop([&] { svc.Run(stop); });
  GenerationId g{2, 0, 30};
  // Ready first, so "not ready" below is the outage and not a loop that has not started yet.
  ASSERT_TRUE(testing::WaitUntil([&] { return svc.Ready().ok(); })) << "never ready";
  proxy->Down();
  Send(g, 0, "[\"kept\", ");
  Send(g, 1, "\"safe\"]", true);
  EXPECT_TRUE(testing::WaitUntil([&] { return !svc.Ready().ok(); })) << "readiness must turn false while the database is down";
  EXPECT_TRUE(testing::WaitUntil([&] { return Pending(svc.buffer().keys().FinalizeStreamOf(g)) > 0; }))
      << "the finalization stays pending, not acked";
  proxy->Up();
  std::optional<GenerationRow> row = WaitForRow(30);
  stop = true;
  loop.join();
  ASSERT_TRUE(row.has_value()) << "finalized once the database came back";
  EXPECT_EQ(Decoded(*row), "[\"kept\", \"safe\"]");
  EXPECT_TRUE(svc.Ready().ok());
  EXPECT_GT(CounterValue(svc.metrics().db_errors), 0);
  EXPECT_EQ(svc.db_health().outages(), 1) << "one outage, however many calls failed during it";
  EXPECT_EQ(Pending(svc.buffer().keys().FinalizeStreamOf(g)), 0);
}

// A database outage longer than VISIBILITY_TIMEOUT: the loop retrying a finalization renews its lease, so the
// other compactors' claim passes leave the entry alone. Before, each claim counted a delivery, and past
// MAX_DELIVERIES the finalization of a generation still being retried was dead-lettered.
TEST_P(CompactorTest, ADatabaseOutageDoesNotLetOtherCompactorsClaimOrDeadLetterWhatIsBeingRetried) {
  if (GetParam() != "postgresql") GTEST_SKIP() << "the outage is simulated on the PostgreSQL connection";
  auto proxy = ProxyDatabase();
  const std::map<std::string, std::string> env = {{"VISIBILITY_TIMEOUT", "300ms"}, {"MAX_DELIVERIES", "1"}};
  auto& a = AddService(env);
  auto& b = AddService(env);
  std::atomic<bool> stop{false};
  std::thread la([&] { a.Run(stop); });
  std::thread lb([&] { b.Run(stop); });
  ASSERT_TRUE(testing::WaitUntil([&] { return a.Ready().ok() && b.Ready().ok(); }));
  proxy->Down();
  GenerationId g{2, 0, 32};
  Send(g, 0, "[\"held\", ");
  Send(g, 1, "\"through\"]", true);
  const std::string fin = a.buffer().keys().FinalizeStreamOf(g);
  EXPECT_TRUE(testing::WaitUntil([&] { return Pending(fin) > 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // 5 x VISIBILITY_TIMEOUT of outage
  // EXPECT, not ASSERT, until the loops are joined: a test that returns with them running aborts the suite.
  auto pending = redis_->Command({"XPENDING", fin, a.buffer().keys().CompactorGroup(), "-", "+", "10"});
  EXPECT_TRUE(pending.ok() && pending->elements.size() == 1u) << "still pending, not dead-lettered";
  if (pending.ok() && pending->elements.size() == 1u) {
    EXPECT_EQ(pending->elements[0].elements[3].integer, 1) << "never claimed: delivered once";
  }
  EXPECT_EQ(redis_->Command({"XLEN", a.buffer().keys().ChunkDeadLetterStream()})->integer, 0);
  proxy->Up();
  std::optional<GenerationRow> row = WaitForRow(32);
  stop = true;
  la.join();
  lb.join();
  ASSERT_TRUE(row.has_value()) << "finalized once the database came back";
  EXPECT_EQ(Decoded(*row), "[\"held\", \"through\"]");
  EXPECT_EQ(redis_->Command({"XLEN", a.buffer().keys().ChunkDeadLetterStream()})->integer, 0);
}

// Redis full with maxmemory-policy noeviction (what docs/deploy.md recommends): every write that may grow
// memory is refused with OOM, which is retryable. Marking a finalized generation compacted (and publishing its
// event) was such a write, so a finalization committed its row and then retried for ever: the buffers that
// finalizing lets go were never let go, and Redis stayed full. Those two writes are now allowed when full
// (scripts flagged allow-oom): a few small fields and one trimmed event per generation.
TEST_P(CompactorTest, AFullRedisStillLetsFinalizationsFinish) {
  if (GetParam() != "sqlite") GTEST_SKIP() << "Redis memory does not depend on the database backend";
  if (server_->cluster()) GTEST_SKIP() << "one server's maxmemory";
  auto& svc = AddService();
  ASSERT_TRUE(svc.RunOnce(stop_).ok());
  const KeySchema& k = svc.buffer().keys();
  GenerationId g{3, 0, 77};
  std::vector<ChunkItem> items(2);
  items[0].gen = items[1].gen = g;
  items[0].seq = 0;
  items[0].data = "[\"full\", ";
  items[1].seq = 1;
  items[1].data = "\"redis\"]";
  items[1].final = true;
  ASSERT_TRUE(redis_->Command({"SET", k.OwnerKey(g.gen), "3"}).ok());  // as ingest records it
  auto applied = svc.buffer().Apply(*redis_, items);  // the buffer complete, its finalization queued
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  ASSERT_EQ(applied->finalize_queued, 1);
  // And one whose owner record is gone (it expired) and that ends by its idle timeout: the claim of the record
  // and the deadline's sweep are writes a full Redis refuses too.
  GenerationId idle{3, 0, 78};
  std::vector<ChunkItem> partial(1);
  partial[0].gen = idle;
  partial[0].data = "[\"idle\"]";
  ASSERT_TRUE(svc.buffer().Apply(*redis_, partial).ok());
  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).ok());
  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory", "1"}).ok());  // full whatever it holds
  auto refused = redis_->Command({"SET", "any", "write"});
  EXPECT_FALSE(refused.ok()) << "Redis is full";
  std::atomic<bool> stop{false};
  std::thread loop([&] { svc.Run(stop); });
  auto compacted = [&](const GenerationId& id) {
    auto st = redis_->Command({"HGET", k.ControlKey(id), "state"});
    return st.ok() && st->str == "compacted";
  };
  const bool marked = testing::WaitUntil([&] { return compacted(g); }, 5000);
  clock_.Advance(31'000);  // past GENERATION_IDLE_TIMEOUT
  const bool idle_marked = testing::WaitUntil([&] { return compacted(idle); }, 5000);
  stop = true;
  loop.join();
  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory", "0"}).ok());
  EXPECT_TRUE(marked) << "the finalization was retried for ever";
  EXPECT_TRUE(idle_marked) << "the idle generation was never swept, or its owner claim retried for ever";
  auto row = Row(77);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(Decoded(*row), "[\"full\", \"redis\"]");
  EXPECT_TRUE(Row(78).has_value());
  EXPECT_EQ(redis_->Command({"XLEN", k.EventsStream()})->integer, 2) << "their generation.compacted events";
}

TEST_P(CompactorTest, RedisOutageIsCountedOnceAndReadinessFollows) {
  if (GetParam() != "sqlite") GTEST_SKIP() << "the Redis outage does not depend on the database backend";
  if (server_->cluster()) GTEST_SKIP() << "the cluster's outage is a failover: redis_cluster_test, fleet cluster test";
  auto& svc = AddService();
  // streamfleet_redis_up, which the Redis-down alert watches: ingest's only, until the compactor had one too.
  prometheus::Gauge& redis_up = DependencyHealth::RedisUpGauge(*registries_.back());
  std::atomic<bool> stop{false};
  std::thread loop([&] { svc.Run(stop); });
  auto wait_for = [&](bool ready) { return testing::WaitUntil([&] { return svc.Ready().ok() == ready; }); };
  ASSERT_TRUE(wait_for(true));
  EXPECT_EQ(svc.redis_health().outages(), 0);
  EXPECT_EQ(redis_up.Value(), 1);
  server_->server()->Kill();
  EXPECT_TRUE(wait_for(false)) << "not ready while Redis is down";
  EXPECT_EQ(redis_up.Value(), 0);
  // Letting time pass while Redis is down is the point: the loop fails read after read, and it is still one
  // outage. A loaded machine makes fewer failed reads in this time; the count must be 1 either way.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server_->server()->Start();
  EXPECT_TRUE(wait_for(true)) << "ready again once Redis is back";
  stop = true;
  loop.join();
  EXPECT_EQ(svc.redis_health().outages(), 1);
  redis_ = RedisClient::Connect(server_->config()).value();
  // Delivery still works after the restart (the groups were recreated on the empty server).
  GenerationId g{2, 0, 31};
  Send(g, 0, "[1]", true);
  Pump(AddService());
  EXPECT_TRUE(Row(31).has_value());
}

INSTANTIATE_TEST_SUITE_P(Backends, CompactorTest, ::testing::Values("sqlite", "postgresql"));

}  // namespace
}  // namespace streamfleet::compactor
