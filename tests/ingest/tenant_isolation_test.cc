// Tenant isolation (issue: one organization cannot touch another's generation): a generation id belongs to
// the first organization that uses it, through ingest, through POST /v1/orgs/{org}/generations and through
// envelopes XADDed by hand; the SQL row never changes owner. Real redis-server (or the 3+3 cluster under
// ingest_cluster_test), real ingest over HTTP, real compactor, SQLite and PostgreSQL.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "streamfleet/base/envelope_version.h"
#include "streamfleet/chunks/chunk_buffer.h"
#include "compactor/compactor_service.h"
#include "ingest/ingest_service.h"
#include "streamfleet/chunks/generation_owner.h"
#include "streamfleet/chunks/generation_request.h"
#include "streamfleet/chunks/generation_start.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/testing/chunk_envelope.h"
#include "support/http_client.h"
#include "support/map_env.h"
#include "streamfleet/testing/redis_server.h"
#include "support/redis_suite.h"
#include "support/sql_database.h"
#include "streamfleet/v1/chunk.pb.h"

namespace streamfleet::ingest {
namespace {

using testing::HttpRequest;
using testing::HttpResponse;

double CounterValue(prometheus::Registry& reg, const std::string& name) {
  for (const auto& f : reg.Collect()) {
    if (f.name == name && !f.metric.empty()) return f.metric[0].counter.value;
  }
  return -1;
}

class TenantIsolationTest : public testing::RedisSuite<::testing::TestWithParam<std::string>> {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
    db_url_ = testing::FreshDatabaseUrl(GetParam(), "sf-tenant", &sqlite_path_);
    ASSERT_FALSE(db_url_.empty()) << "STREAMFLEET_TEST_PG_URL is not set (scripts/test.sh starts PostgreSQL)";
    auto store = SqlStore::Open(db_url_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    ASSERT_TRUE(store_->Migrate().ok());

    std::map<std::string, std::string> env = server_->env();
    env.insert({{"INGEST_LISTEN", "127.0.0.1:0"},
                {"CHUNK_STREAMS", "1"},
                {"INGEST_THREADS", "4"},
                {"INGEST_TOKENS", "12:tokA,13:tokB"},
                {"IR_CACHE_TTL", "0"},
                {"DATABASE_URL", db_url_},
                {"CONSUMER_NAME", "tenant-test"}});
    auto c = LoadConfig(testing::MapEnv(env), "127.0.0.1:0");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    config_ = std::make_unique<Config>(*c);
    service_ = std::make_unique<IngestService>(*config_, ingest_registry_, store_.get());
    ASSERT_TRUE(service_->Start().ok());
    compactor::LoopOptions lo;
    lo.block_ms = 20;
    compactor_ = std::make_unique<compactor::CompactorService>(*config_, clock_, *store_, compactor_registry_, lo);
  }
  void TearDown() override {
    if (service_) service_->Stop();
    compactor_.reset();
    store_.reset();
    if (!sqlite_path_.empty()) std::filesystem::remove(sqlite_path_);
  }

  static std::string Token(int64_t org) { return org == 12 ? "tokA" : "tokB"; }
  HttpResponse Send(const std::string& method, int64_t org, const std::string& path, const std::string& body = "",
                    const std::string& content_type = "application/json") {
    HttpRequest r;
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(service_->port()) + "/v1/orgs/" + std::to_string(org) + path;
    r.body = body;
    r.headers = {"Authorization: Bearer " + Token(org), "Content-Type: " + content_type};
    return testing::Send(r);
  }
  // Two chunks and a finish: the whole generation, as its organization writes it.
  void WriteGeneration(int64_t org, int64_t gen, const std::string& text) {
    std::string g = "/generations/" + std::to_string(gen);
    ASSERT_EQ(Send("POST", org, g + "/chunks", nlohmann::json{{"seq", 0}, {"data", text}}.dump()).status, 202);
    ASSERT_EQ(Send("POST", org, g + "/chunks", R"({"seq": 1, "data": ""})").status, 202);
    ASSERT_EQ(Send("POST", org, g + "/finish", R"({"total_chunks": 2})").status, 202);
  }
  void Compact() {
    std::atomic<bool> stop{false};
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(compactor_->RunOnce(stop).ok());
  }
  void XaddByHand(const GenerationId& g, int64_t seq, const std::string& data, int64_t total) {
    KeySchema keys = KeySchema::FromConfig(*config_);
    auto r = redis_->Command({"XADD", keys.ChunkStream(keys.ShardOf(g)), "*", "e",
                              testing::ChunkEnvelopeBytes(g, seq, data, /*final=*/true, total)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::vector<std::string> DeadLetterReasons() {
    auto r = redis_->Command({"XRANGE", KeySchema::FromConfig(*config_).ChunkDeadLetterStream(), "-", "+"});
    std::vector<std::string> out;
    for (auto& e : ParseEntries("dlq", *r)) {
      if (const std::string* why = e.Field("reason")) out.push_back(*why);
    }
    return out;
  }
  void ExpectRow(int64_t gen, int64_t org, const std::string& text) {
    auto row = store_->GetGeneration(gen);
    ASSERT_TRUE(row.ok() && row->has_value()) << "no row for " << gen;
    EXPECT_EQ((*row)->organization_id, org);
    auto llm = nlohmann::json::parse((*row)->llm_response.value_or("null"), nullptr, false);
    EXPECT_EQ(llm, nlohmann::json::parse(text)) << (*row)->llm_response.value_or("(null)");
  }
  // A refusal names no owner: nothing about the other organization leaks.
  void ExpectOwnedElsewhere(const HttpResponse& r, int64_t owner) {
    EXPECT_EQ(r.status, 409) << r.body;
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_EQ(j.value("error", ""), kOwnedElsewhere) << r.body;
    EXPECT_EQ(r.body.find(std::to_string(owner)), std::string::npos) << r.body;
  }

  std::string db_url_, sqlite_path_;
  std::unique_ptr<SqlStore> store_;
  std::unique_ptr<Config> config_;
  prometheus::Registry ingest_registry_, compactor_registry_;
  RedisServerClock clock_;
  std::unique_ptr<IngestService> service_;
  std::unique_ptr<compactor::CompactorService> compactor_;
};

// The defect as found: org 13 posting to org 12's generation 9401 took over its row.
TEST_P(TenantIsolationTest, AnotherOrganizationCannotWriteFinishOrReadAnOwnedGeneration) {
  WriteGeneration(12, 9401, R"({"owner": "twelve"})");
  Compact();
  ExpectRow(9401, 12, R"({"owner": "twelve"})");

  ExpectOwnedElsewhere(Send("POST", 13, "/generations/9401/chunks", R"({"seq": 0, "data": "{\"owner\": 13}"})"), 12);
  ExpectOwnedElsewhere(Send("POST", 13, "/generations/9401/chunks", R"({"data": "no seq"})"), 12);
  ExpectOwnedElsewhere(Send("POST", 13, "/generations/9401/finish", R"({"total_chunks": 1})"), 12);
  EXPECT_EQ(Send("GET", 13, "/generations/9401").status, 404);
  EXPECT_EQ(Send("GET", 13, "/generations/9401/progress").status, 404);
  Compact();
  ExpectRow(9401, 12, R"({"owner": "twelve"})");
  auto mine = Send("GET", 12, "/generations/9401");
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_EQ(nlohmann::json::parse(mine.body)["llm_response"]["owner"], "twelve");
  // Nothing of org 13's reached a stream: its refused requests wrote no key either.
  KeySchema keys = KeySchema::FromConfig(*config_);
  EXPECT_EQ(redis_->Command({"EXISTS", keys.ControlKey({13, 0, 9401})})->AsInt(), 0);
}

// The authorization scheme is case-insensitive (RFC 9110 section 11.1): "bearer tokA" was refused as a
// missing token. The token still decides the organization.
TEST_P(TenantIsolationTest, TheBearerSchemeIsCaseInsensitiveAndTheTokenStillDecides) {
  auto post = [&](int64_t org, const std::string& authorization) {
    HttpRequest r;
    r.method = "POST";
    r.url = "http://127.0.0.1:" + std::to_string(service_->port()) + "/v1/orgs/" + std::to_string(org) +
            "/generations/9402/chunks";
    r.body = R"({"data": "x"})";
    r.headers = {"Authorization: " + authorization, "Content-Type: application/json"};
    return testing::Send(r).status;
  };
  EXPECT_EQ(post(12, "bearer tokA"), 202);
  EXPECT_EQ(post(12, "BEARER   tokA"), 202);
  EXPECT_EQ(post(13, "bearer tokA"), 403) << "org 12's token, whatever the scheme's case";
  EXPECT_EQ(post(12, "BearertokA"), 401);
  EXPECT_EQ(post(12, "Basic tokA"), 401);
}

// The reverse order: the first user is org 13, and org 12 is the one refused (it used to end with no row
// for org 13 and a "keeping the row" log line).
TEST_P(TenantIsolationTest, TheFirstOrganizationKeepsTheIdWhicheverOrganizationItIs) {
  WriteGeneration(13, 9402, R"({"owner": "thirteen"})");
  ExpectOwnedElsewhere(Send("POST", 12, "/generations/9402/chunks", R"({"seq": 0, "data": "{}"})"), 13);
  Compact();
  ExpectRow(9402, 13, R"({"owner": "thirteen"})");
  EXPECT_EQ(Send("GET", 12, "/generations/9402").status, 404);
}

// Envelopes written by hand into the chunk stream (any producer can XADD) go through the same rule in the
// compactor: the finalization of a foreign id is dead-lettered with the reason and counted, no row changes.
TEST_P(TenantIsolationTest, HandWrittenEnvelopeForAnotherOrganizationsIdIsDeadLetteredAndCounted) {
  WriteGeneration(12, 9403, R"({"owner": "twelve"})");
  Compact();
  XaddByHand({13, 0, 9403}, 0, R"({"owner": "thirteen"})", 1);
  Compact();
  ExpectRow(9403, 12, R"({"owner": "twelve"})");
  auto reasons = DeadLetterReasons();
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_NE(reasons[0].find(kOwnedElsewhere), std::string::npos) << reasons[0];
  EXPECT_EQ(CounterValue(compactor_registry_, "streamfleet_compactor_owner_conflicts_total"), 1);

  // Hand-written first: the envelope's organization becomes the owner, and ingest then refuses org 12.
  XaddByHand({13, 0, 9404}, 0, R"({"owner": "thirteen"})", 1);
  Compact();
  ExpectRow(9404, 13, R"({"owner": "thirteen"})");
  ExpectOwnedElsewhere(Send("POST", 12, "/generations/9404/chunks", R"({"seq": 0, "data": "{}"})"), 13);
}

// A ChunkBatch (field "b") is what ingest writes for a request of several chunks. One written by hand is read
// as the envelopes it holds, each under the same rule as field "e": a batch that mixes another organization's
// claim on an owned id with the owner's chunk of a second generation gives the owner both rows and
// dead-letters only the foreign finalization. Through ingest, such a request is refused before any write.
// (Ids without "12" or "13" in them: a refusal must not name the owner.)
TEST_P(TenantIsolationTest, HandWrittenBatchIsCheckedEnvelopeByEnvelope) {
  WriteGeneration(12, 9414, R"({"owner": "twelve"})");
  Compact();
  ExpectRow(9414, 12, R"({"owner": "twelve"})");

  ExpectOwnedElsewhere(Send("POST", 13, "/generations/9414/chunks", "{\"data\": \"a\"}\n{\"data\": \"b\"}\n",
                            "application/x-ndjson"),
                       12);

  // Seqs follow first_seq: the foreign envelope is seq 0 of 9414, the owner's is seq 1 of 9415.
  v1::ChunkBatch batch;
  batch.set_first_seq(0);
  batch.add_envelopes(testing::ChunkEnvelopeBytes({13, 0, 9414}, 0, R"({"owner": "thirteen"})", /*final=*/true, 1,
                                                  false, kChunkEnvelopeBatched));
  batch.add_envelopes(testing::ChunkEnvelopeBytes({12, 0, 9415}, 0, "1}", /*final=*/true, 2, false,
                                                  kChunkEnvelopeBatched));
  KeySchema keys = KeySchema::FromConfig(*config_);
  ASSERT_TRUE(redis_->Command({"XADD", keys.ChunkStream(keys.ShardOf({12, 0, 9415})), "*", "b",
                               batch.SerializeAsString()})
                  .ok());
  ASSERT_EQ(Send("POST", 12, "/generations/9415/chunks", R"({"seq": 0, "data": "{\"a\": "})").status, 202);
  Compact();

  ExpectRow(9414, 12, R"({"owner": "twelve"})");
  ExpectRow(9415, 12, R"({"a": 1})");
  auto reasons = DeadLetterReasons();
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_NE(reasons[0].find(kOwnedElsewhere), std::string::npos) << reasons[0];
  EXPECT_EQ(CounterValue(compactor_registry_, "streamfleet_compactor_owner_conflicts_total"), 1);
  EXPECT_EQ(redis_->Command({"GET", keys.OwnerKey(9414)})->str, "12");
  EXPECT_EQ(Send("GET", 13, "/generations/9415").status, 404);
}

// The SQL write is the backstop when Redis forgot the owner (its record expired, or Redis was replaced): the
// upsert's condition includes the organization, so the row keeps its owner and the finalization is refused.
TEST_P(TenantIsolationTest, TheRowKeepsItsOwnerWhenTheRedisRecordIsGone) {
  WriteGeneration(12, 9405, R"({"owner": "twelve"})");
  Compact();
  const KeySchema keys = KeySchema::FromConfig(*config_);
  ASSERT_EQ(redis_->Command({"DEL", keys.OwnerKey(9405)})->AsInt(), 1);
  WriteGeneration(13, 9405, R"({"owner": "thirteen"})");  // accepted: Redis no longer knows the owner
  Compact();
  ExpectRow(9405, 12, R"({"owner": "twelve"})");
  EXPECT_EQ(CounterValue(compactor_registry_, "streamfleet_compactor_owner_conflicts_total"), 1);
  ASSERT_EQ(DeadLetterReasons().size(), 1u);

  GenerationWrite w;
  w.id = 9405;
  w.organization_id = 13;
  w.chunk_count = 99;
  w.compacted_at = "2026-01-01T00:00:00Z";
  auto up = store_->UpsertGeneration(w);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(*up, UpsertResult::kOwnedElsewhere);
  Status merge = store_->MergeGenerationMetadata(9405, 13, 0, R"({"status": "running"})");
  EXPECT_TRUE(IsOwnedElsewhere(merge)) << merge.ToString();
  ExpectRow(9405, 12, R"({"owner": "twelve"})");
  EXPECT_EQ(nlohmann::json::parse((*store_->GetGeneration(9405))->metadata).count("status"), 0u);
  // Redis learned the row's owner again: the owner writes on, the other organization is refused at once.
  EXPECT_EQ(redis_->Command({"GET", keys.OwnerKey(9405)})->str, "12");
  EXPECT_EQ(Send("POST", 12, "/generations/9405/chunks", R"({"seq": 5, "data": " "})").status, 202);
  ExpectOwnedElsewhere(Send("POST", 13, "/generations/9405/chunks", R"({"seq": 6, "data": " "})"), 12);
}

// A manual compaction of a generation with nothing buffered claims nothing: it must not take an id from
// whoever uses it next.
TEST_P(TenantIsolationTest, FinalizingAnEmptyGenerationClaimsNoId) {
  ChunkBuffer buffer(*config_, clock_);
  ASSERT_TRUE(buffer.QueueFinalize(*redis_, {13, 0, 9411}, "manual").ok());
  Compact();
  KeySchema keys = KeySchema::FromConfig(*config_);
  EXPECT_EQ(redis_->Command({"EXISTS", keys.OwnerKey(9411)})->AsInt(), 0);
  WriteGeneration(12, 9411, R"({"owner": "twelve"})");
  Compact();
  ExpectRow(9411, 12, R"({"owner": "twelve"})");
}

// GENERATION_CHUNK_STORAGE=both keeps chunks in generation_chunks, keyed by (generation, seq): a foreign
// organization's chunk must neither hide the owner's nor end up in the owner's row.
TEST_P(TenantIsolationTest, ChunksStoredInTheDatabaseNeverMixOrganizations) {
  Config both = *config_;
  both.chunk_storage = ChunkStorage::kBoth;
  prometheus::Registry reg;
  compactor::LoopOptions lo;
  lo.block_ms = 20;
  compactor::CompactorService c(both, clock_, *store_, reg, lo);
  ASSERT_EQ(Send("POST", 12, "/generations/9410/chunks", R"({"seq": 1, "data": "1}"})").status, 202);
  XaddByHand({13, 0, 9410}, 0, "foreign", 1);  // seq 0 from another organization, before the owner's seq 0
  ASSERT_EQ(Send("POST", 12, "/generations/9410/chunks", R"({"seq": 0, "data": "{\"a\": "})").status, 202);
  ASSERT_EQ(Send("POST", 12, "/generations/9410/finish", R"({"total_chunks": 2})").status, 202);
  std::atomic<bool> stop{false};
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(c.RunOnce(stop).ok());
  ExpectRow(9410, 12, R"({"a": 1})");
  auto rows = store_->GetChunks(9410);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  for (const auto& r : *rows) EXPECT_EQ(r.organization_id, 12) << r.data;
}

// POST /v1/orgs/{org}/generations hands out ids from a counter; one that another organization already used
// for its chunks is skipped.
TEST_P(TenantIsolationTest, StartedGenerationsSkipIdsOwnedElsewhere) {
  WriteGeneration(13, 9407, R"({"owner": "thirteen"})");
  ASSERT_TRUE(redis_->Command({"SET", GenerationIdsKey(*config_), "9406"}).ok());
  auto r = Send("POST", 12, "/generations", R"({"instruction": {"content": "plan it"}})");
  ASSERT_EQ(r.status, 202) << r.body;
  // 9407 is taken; the skips double (so a run of claimed ids cannot block everyone): 9407 + 2.
  EXPECT_EQ(nlohmann::json::parse(r.body)["generation_id"], 9409);
  KeySchema keys = KeySchema::FromConfig(*config_);
  EXPECT_EQ(redis_->Command({"GET", keys.OwnerKey(9409)})->str, "12");
  EXPECT_EQ(redis_->Command({"GET", keys.OwnerKey(9407)})->str, "13");
}

INSTANTIATE_TEST_SUITE_P(Backends, TenantIsolationTest, ::testing::Values("sqlite", "postgresql"));

}  // namespace
}  // namespace streamfleet::ingest
