#include "streamfleet/sql/sql_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <sqlite3.h>

#include <cstdlib>

#include "streamfleet/base/time.h"
#include "streamfleet/testing/redis_server.h"
#include "support/sql_database.h"

namespace streamfleet {
namespace {

// Runs every case on SQLite and, when the test script started one, PostgreSQL.
class SqlStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    url_ = testing::FreshDatabaseUrl(GetParam(), "sf-sql", &path_);
    if (url_.empty()) GTEST_FAIL() << "STREAMFLEET_TEST_PG_URL is not set (scripts/test.sh sets it)";
    auto st = SqlStore::Open(url_);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(*st);
    ASSERT_TRUE(store_->Migrate().ok());
  }
  void TearDown() override {
    store_.reset();
    if (!path_.empty()) {
      for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
    }
  }
  std::string path_, url_;
  std::unique_ptr<SqlStore> store_;
};

// A one-chunk row of organization 12 with the given answer.
GenerationWrite OneChunkRow(int64_t id, std::string llm_response) {
  GenerationWrite w;
  w.id = id;
  w.organization_id = 12;
  w.llm_response = std::move(llm_response);
  w.compacted = "eyJhIjoxfQ==";
  w.metadata_patch = R"({"chunk_count":1})";
  w.chunk_count = 1;
  w.compacted_at = "2026-11-25T12:00:00.000Z";
  w.compacted_by = "c1";
  w.finalize_id = "1700000000000-0";
  return w;
}

TEST_P(SqlStoreTest, MigrationsAreVersionedAndIdempotent) {
  ASSERT_TRUE(store_->Migrate().ok());
  auto m = store_->Migrations();
  ASSERT_TRUE(m.ok());
  ASSERT_FALSE(m->empty());
  for (const auto& x : *m) EXPECT_TRUE(x.applied) << x.name;
}

TEST_P(SqlStoreTest, UpsertIsIdempotentPerFinalizeIdAndMergesMetadata) {
  ASSERT_TRUE(store_->MergeGenerationMetadata(59, 12, 345, R"({"provider":"abacus","model":"m1","initiator":"u7"})").ok());
  GenerationWrite w;
  w.id = 59;
  w.organization_id = 12;
  w.scenario_id = 345;
  w.llm_response = R"({"a":1})";
  w.compacted = "eyJhIjoxfQ==";
  w.metadata_patch = R"({"chunk_count":3,"progress":{"percent":100}})";
  w.chunk_count = 3;
  w.compacted_at = "2026-11-25T12:00:00.000Z";
  w.compacted_by = "c1";
  w.finalize_id = "1700000000000-0";
  auto first = store_->UpsertGeneration(w);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, UpsertResult::kWritten);
  auto row1 = store_->GetGeneration(59);
  ASSERT_TRUE(row1.ok() && row1->has_value());

  GenerationWrite replay = w;
  replay.compacted_by = "c2";  // another consumer replays the same finalization
  auto again = store_->UpsertGeneration(replay);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, UpsertResult::kAlreadyApplied);
  auto row2 = store_->GetGeneration(59);
  ASSERT_TRUE(row2.ok() && row2->has_value());
  EXPECT_EQ((*row2)->compacted_by, (*row1)->compacted_by);
  EXPECT_EQ((*row2)->metadata, (*row1)->metadata);

  auto md = nlohmann::json::parse((*row2)->metadata);
  EXPECT_EQ(md["provider"], "abacus") << "keys set before compaction survive";
  EXPECT_EQ(md["initiator"], "u7");
  EXPECT_EQ(md["chunk_count"], 3);
  EXPECT_FALSE(md.contains("compacted")) << "metadata never holds the blob";
  EXPECT_EQ(nlohmann::json::parse(*(*row2)->llm_response), nlohmann::json::parse(R"({"a":1})"));
  EXPECT_EQ(*(*row2)->compacted, "eyJhIjoxfQ==");
  EXPECT_EQ((*row2)->chunk_count, 3);
  EXPECT_EQ((*row2)->scenario_id, 345);
  EXPECT_EQ(*(*row2)->compacted_at, "2026-11-25T12:00:00.000Z");

  // A later finalization (a straggler) without valid JSON keeps llm_response unchanged.
  GenerationWrite later = w;
  later.finalize_id = "1700000000001-0";
  later.llm_response.reset();
  later.compacted = "bm90IGpzb24=";
  later.chunk_count = 4;
  ASSERT_TRUE(store_->UpsertGeneration(later).ok());
  auto row3 = store_->GetGeneration(59);
  EXPECT_EQ(nlohmann::json::parse(*(*row3)->llm_response), nlohmann::json::parse(R"({"a":1})"));
  EXPECT_EQ(*(*row3)->compacted, "bm90IGpzb24=");
  EXPECT_EQ((*row3)->chunk_count, 4);
}

// A buffer that expired and was re-created by late chunks holds as many chunks as the row, or more, but not
// the row's: it replaced the row's text with the late chunks alone. A write replaces a row only when it holds
// every chunk of it (its seq runs contain the row's), or, for rows without runs, by count.
// A finalization of seqs 0..9 with the text "first", as the compactor writes it.
GenerationWrite TenChunksOf(int64_t id) {
  GenerationWrite w;
  w.id = id;
  w.organization_id = 12;
  w.compacted = "Zmlyc3Q=";  // "first"
  w.metadata_patch = R"({"seq_runs":[[0,9]]})";
  w.seq_runs = SeqRuns{{0, 9}};
  w.chunk_count = 10;
  w.compacted_at = "2026-11-25T12:00:00.000Z";
  w.compacted_by = "c1";
  w.finalize_id = "1700000000000-0";
  return w;
}

TEST_P(SqlStoreTest, AWriteLackingSomeOfTheRowsChunksKeepsTheRow) {
  GenerationWrite w = TenChunksOf(61);
  ASSERT_EQ(*store_->UpsertGeneration(w), UpsertResult::kWritten);

  GenerationWrite late = w;  // seqs 10..19 only: as many chunks, none of the row's
  late.finalize_id = "1700000000001-0";
  late.compacted = "bGF0ZQ==";
  late.metadata_patch = R"({"seq_runs":[[10,19]]})";
  late.seq_runs = SeqRuns{{10, 19}};
  EXPECT_EQ(*store_->UpsertGeneration(late), UpsertResult::kKeptFullerRow);
  late.metadata_patch = R"({"seq_runs":[[0,4],[6,19]]})";  // more chunks, but not seq 5
  late.seq_runs = SeqRuns{{0, 4}, {6, 19}};
  late.chunk_count = 19;
  EXPECT_EQ(*store_->UpsertGeneration(late), UpsertResult::kKeptFullerRow);
  auto row = store_->GetGeneration(61);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ(*(*row)->compacted, "Zmlyc3Q=");
  EXPECT_EQ((*row)->chunk_count, 10);

  GenerationWrite fuller = w;  // every chunk of the row and more: the usual re-finalization
  fuller.finalize_id = "1700000000002-0";
  fuller.compacted = "ZnVsbGVy";
  fuller.metadata_patch = R"({"seq_runs":[[0,19]]})";
  fuller.seq_runs = SeqRuns{{0, 19}};
  fuller.chunk_count = 20;
  EXPECT_EQ(*store_->UpsertGeneration(fuller), UpsertResult::kWritten);
  row = store_->GetGeneration(61);
  EXPECT_EQ(*(*row)->compacted, "ZnVsbGVy");
  EXPECT_EQ(nlohmann::json::parse((*row)->metadata)["seq_runs"], nlohmann::json::parse("[[0,19]]"));
}

// A producer that started the text over (ChunkWriter::Reset: the generation's attempt counts up) writes from
// seq 0 again, maybe fewer chunks. The attempt decides before the chunks do: the retry's shorter text replaces
// the earlier attempt's row, and the earlier attempt's finalization, committing late (it read its buffer
// before the reset), never replaces the retry's row, though it holds every chunk of it and more.
TEST_P(SqlStoreTest, ALaterAttemptReplacesTheRowAndAnEarlierOneNever) {
  GenerationWrite first = TenChunksOf(62);
  first.attempt = 0;
  ASSERT_EQ(*store_->UpsertGeneration(first), UpsertResult::kWritten);
  EXPECT_FALSE(nlohmann::json::parse((*store_->GetGeneration(62))->metadata).contains("attempt"));

  GenerationWrite retry = first;  // attempt 1: seqs 0..3 only
  retry.finalize_id = "1700000000005-0";
  retry.compacted = "cmV0cnk=";  // "retry"
  retry.metadata_patch = R"({"seq_runs":[[0,3]],"attempt":1})";
  retry.seq_runs = SeqRuns{{0, 3}};
  retry.chunk_count = 4;
  retry.attempt = 1;
  ASSERT_EQ(*store_->UpsertGeneration(retry), UpsertResult::kWritten) << "fewer chunks, but a later attempt";
  auto row = store_->GetGeneration(62);
  EXPECT_EQ(*(*row)->compacted, "cmV0cnk=");
  EXPECT_EQ((*row)->chunk_count, 4);
  EXPECT_EQ(nlohmann::json::parse((*row)->metadata)["attempt"], 1);

  GenerationWrite late = first;  // attempt 0 again, every chunk of the row and more
  late.finalize_id = "1700000000009-0";
  late.compacted = "bGF0ZQ==";
  late.metadata_patch = R"({"seq_runs":[[0,19]]})";
  late.seq_runs = SeqRuns{{0, 19}};
  late.chunk_count = 20;
  EXPECT_EQ(*store_->UpsertGeneration(late), UpsertResult::kKeptLaterAttempt);
  row = store_->GetGeneration(62);
  EXPECT_EQ(*(*row)->compacted, "cmV0cnk=");
  EXPECT_EQ((*row)->chunk_count, 4);

  GenerationWrite unknown = late;  // no attempt known (a hand-written write): the chunks decide, as before
  unknown.attempt.reset();
  unknown.finalize_id = "1700000000010-0";
  EXPECT_EQ(*store_->UpsertGeneration(unknown), UpsertResult::kWritten);
  EXPECT_EQ(*(*store_->GetGeneration(62))->compacted, "bGF0ZQ==");
}

// A reader that serves one of the two large columns reads only that one (a generation may be 64 MiB).
TEST_P(SqlStoreTest, AReadOfOneLargeColumnLeavesTheOtherUnset) {
  GenerationWrite w = OneChunkRow(62, R"({"a":1})");
  ASSERT_TRUE(store_->UpsertGeneration(w).ok());
  auto both = store_->ReadGeneration(62, SqlStore::LargeColumns::kBoth);
  ASSERT_TRUE(both.ok() && both->has_value()) << both.status().ToString();
  EXPECT_TRUE((*both)->llm_response && (*both)->compacted);
  auto response = store_->ReadGeneration(62, SqlStore::LargeColumns::kResponseOnly);
  ASSERT_TRUE(response.ok() && response->has_value()) << response.status().ToString();
  EXPECT_EQ(nlohmann::json::parse(*(*response)->llm_response), nlohmann::json::parse(*w.llm_response));
  EXPECT_FALSE((*response)->compacted.has_value());
  auto text = store_->ReadGeneration(62, SqlStore::LargeColumns::kCompactedOnly);
  ASSERT_TRUE(text.ok() && text->has_value()) << text.status().ToString();
  EXPECT_EQ((*text)->compacted, w.compacted);
  EXPECT_FALSE((*text)->llm_response.has_value());
  EXPECT_EQ((*text)->organization_id, 12);
  EXPECT_EQ((*text)->chunk_count, 1);
  EXPECT_EQ((*text)->compacted_by, "c1");
  auto neither = store_->ReadGeneration(62, SqlStore::LargeColumns::kNeither);
  ASSERT_TRUE(neither.ok() && neither->has_value()) << neither.status().ToString();
  EXPECT_FALSE((*neither)->llm_response || (*neither)->compacted);
  EXPECT_EQ(nlohmann::json::parse((*neither)->metadata)["chunk_count"], 1);
}

// PostgreSQL quotes the refused value in its error's DETAIL/CONTEXT lines; words of the data there ("busy",
// "connection", "could not") made a permanent refusal look like an outage, retried for ever.
TEST_P(SqlStoreTest, ARefusalQuotingTheDataIsNotTakenForAnOutage) {
  if (GetParam() != "postgresql") GTEST_SKIP() << "SQLite stores any JSON text";
  // jsonb refuses U+0000, and the error quotes the value.
  auto r = store_->UpsertGeneration(OneChunkRow(61, R"({"a": "servers busy, could not get a connection \u0000"})"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
}

TEST(SqlStoreRulesTest, AWriteHoldsTheRowsChunksWhenItsRunsContainTheRows) {
  auto md = [](const char* runs) { return nlohmann::json::parse(std::string(R"({"seq_runs":)") + runs + "}"); };
  const nlohmann::json none = nlohmann::json::object();
  EXPECT_TRUE(SqlStore::HoldsEveryChunkOf(10, SeqRuns{{0, 9}}, 10, md("[[0,9]]")));
  EXPECT_TRUE(SqlStore::HoldsEveryChunkOf(12, SeqRuns{{0, 11}}, 9, md("[[0,3],[5,9]]")));
  EXPECT_TRUE(SqlStore::HoldsEveryChunkOf(6, SeqRuns{{7, 9}, {0, 2}}, 4, md("[[0,1],[8,9]]"))) << "any order";
  EXPECT_FALSE(SqlStore::HoldsEveryChunkOf(10, SeqRuns{{10, 19}}, 10, md("[[0,9]]")));
  EXPECT_FALSE(SqlStore::HoldsEveryChunkOf(10, SeqRuns{{0, 4}, {6, 10}}, 10, md("[[0,9]]")));
  EXPECT_FALSE(SqlStore::HoldsEveryChunkOf(5, SeqRuns{{0, 4}}, 10, none)) << "a row without runs: by count";
  EXPECT_TRUE(SqlStore::HoldsEveryChunkOf(10, SeqRuns{{10, 19}}, 10, none)) << "a row without runs: by count";
  EXPECT_TRUE(SqlStore::HoldsEveryChunkOf(10, std::nullopt, 10, md("[[0,9]]"))) << "a write without runs: by count";
  EXPECT_FALSE(SqlStore::HoldsEveryChunkOf(9, std::nullopt, 10, md("[[0,9]]")));
  EXPECT_TRUE(SqlStore::HoldsEveryChunkOf(10, SeqRuns{{10, 19}}, 10, md("null"))) << "more runs than listed: by count";
  EXPECT_TRUE(SqlStore::HoldsEveryChunkOf(10, SeqRuns{{10, 19}}, 10, md(R"([["a",1]])"))) << "hand-written: by count";
  EXPECT_TRUE(SqlStore::HoldsEveryChunkOf(3, SeqRuns{{0, 2}}, 50, md("[]"))) << "restarted: holds none of its chunks";
}

TEST_P(SqlStoreTest, ChunksAreIdempotentAndBinarySafe) {
  std::string bin("\x00\xff\xc3\xa9x", 5);
  ASSERT_TRUE(store_->UpsertChunks({{59, 12, 0, 1, "b"}, {59, 12, 0, 0, bin}}).ok());
  ASSERT_TRUE(store_->UpsertChunks({{59, 12, 0, 1, "b"}}).ok());
  auto rows = store_->GetChunks(59);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].data, bin);
  EXPECT_EQ((*rows)[1].data, "b");
}

// A producer starting a generation over deletes its organization's chunk rows of it, and only those.
TEST_P(SqlStoreTest, DeleteChunksOfTakesOneOrganizationsRowsOfOneGeneration) {
  ASSERT_TRUE(store_->UpsertChunks({{62, 12, 0, 0, "a"}, {62, 12, 0, 1, "b"}, {63, 12, 0, 0, "c"}}).ok());
  ASSERT_TRUE(store_->UpsertChunks({{64, 13, 0, 0, "d"}}).ok());
  auto other_org = store_->DeleteChunksOf(64, 12);
  ASSERT_TRUE(other_org.ok()) << other_org.status().ToString();
  EXPECT_EQ(*other_org, 0);
  auto n = store_->DeleteChunksOf(62, 12);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2);
  EXPECT_TRUE(store_->GetChunks(62)->empty());
  EXPECT_EQ(store_->GetChunks(63)->size(), 1u);
  EXPECT_EQ(store_->GetChunks(64)->size(), 1u);
}

// Ids are int64 (ingest takes up to 18 digits). SQLite's INTEGER columns were read as int where a query's
// rows are read generically: ids past 2^31 wrapped, in the chunk rows' organization, the id lists of the
// maintenance tasks, and the migration's UPDATE ... WHERE id (another row's).
TEST_P(SqlStoreTest, IdsPastTwoToThe31AreReadWhole) {
  const int64_t gen = 5'000'000'000, org = 4'294'967'297;  // org wraps to 1 as an int
  ASSERT_TRUE(store_->UpsertChunks({{gen, org, 7'000'000'000, 0, "a"}}).ok());
  auto rows = store_->GetChunks(gen);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].organization_id, org);
  EXPECT_EQ((*rows)[0].scenario_id, 7'000'000'000);
  auto with_chunks = store_->GenerationIdsWithChunksBefore("2999-01-01T00:00:00.000Z", 0, 10);
  ASSERT_TRUE(with_chunks.ok()) << with_chunks.status().ToString();
  EXPECT_EQ(*with_chunks, std::vector<int64_t>{gen});
  ASSERT_TRUE(store_->MergeGenerationMetadata(gen, org, 0, R"({"compacted":"QUJD"})").ok());
  auto uncompacted = store_->GenerationIdsByCompacted(0, -1, 10);
  ASSERT_TRUE(uncompacted.ok()) << uncompacted.status().ToString();
  EXPECT_EQ(*uncompacted, std::vector<int64_t>{gen});
  EXPECT_EQ(*store_->MigrateCompactedFromMetadata(false), 1);
  auto row = store_->GetGeneration(gen);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ(*(*row)->compacted, "QUJD") << "the migration wrote the row it read";
}

TEST_P(SqlStoreTest, MigrateCompactedFromMetadataPreviewChangesNothing) {
  ASSERT_TRUE(store_->MergeGenerationMetadata(7, 1, 0, R"({"compacted":"QUJD","model":"m"})").ok());
  auto preview = store_->MigrateCompactedFromMetadata(true);
  ASSERT_TRUE(preview.ok()) << preview.status().ToString();
  EXPECT_EQ(*preview, 1);
  auto row = store_->GetGeneration(7);
  EXPECT_FALSE((*row)->compacted.has_value());
  auto moved = store_->MigrateCompactedFromMetadata(false);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, 1);
  row = store_->GetGeneration(7);
  EXPECT_EQ(*(*row)->compacted, "QUJD");
  EXPECT_FALSE(nlohmann::json::parse((*row)->metadata).contains("compacted"));
  EXPECT_EQ(*store_->MigrateCompactedFromMetadata(false), 0) << "idempotent";
}

// The migration reads the table a page at a time (it read every row into memory in one transaction): rows past
// the first pages are migrated too, and rows of the new layout are left as they are.
TEST_P(SqlStoreTest, MigrateCompactedFromMetadataGoesThroughEveryPage) {
  for (int64_t id = 1; id <= 75; ++id) {
    const std::string md = id % 5 == 0 ? R"({"model":"m"})" : R"({"compacted":"QUJD)" + std::to_string(id) + R"(","n":1})";
    ASSERT_TRUE(store_->MergeGenerationMetadata(1000 + id, 1, 0, md).ok());
  }
  auto preview = store_->MigrateCompactedFromMetadata(true);
  ASSERT_TRUE(preview.ok()) << preview.status().ToString();
  EXPECT_EQ(*preview, 60);
  auto moved = store_->MigrateCompactedFromMetadata(false);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, 60);
  for (int64_t id = 1; id <= 75; ++id) {
    auto row = store_->GetGeneration(1000 + id);
    ASSERT_TRUE(row.ok() && row->has_value()) << id;
    if (id % 5 == 0) {
      EXPECT_FALSE((*row)->compacted.has_value()) << id;
      continue;
    }
    ASSERT_TRUE((*row)->compacted.has_value()) << id;
    EXPECT_EQ(*(*row)->compacted, "QUJD" + std::to_string(id));
    auto md = nlohmann::json::parse((*row)->metadata);
    EXPECT_FALSE(md.contains("compacted")) << id;
    EXPECT_EQ(md.value("n", 0), 1) << id;
  }
  EXPECT_EQ(*store_->MigrateCompactedFromMetadata(false), 0) << "idempotent";
}

TEST_P(SqlStoreTest, PurgeChunksDeletesOnlyRowsOlderThanTheCutoff) {
  ASSERT_TRUE(store_->UpsertChunks({{61, 12, 0, 0, "a"}, {61, 12, 0, 1, "b"}}).ok());
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  auto none = store_->PurgeChunksOlderThan(IsoUtcFromMs(now - 3'600'000));
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, 0);
  EXPECT_EQ(store_->GetChunks(61)->size(), 2u);
  auto all = store_->PurgeChunksOlderThan(IsoUtcFromMs(now + 3'600'000));
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, 2);
  EXPECT_TRUE(store_->GetChunks(61)->empty());
}

TEST_P(SqlStoreTest, HashSnapshotsUpsertIdempotently) {
  ASSERT_TRUE(store_->UpsertHashSnapshots({{"progress:1", R"({"a":"1"})"}, {"progress:2", R"({"b":"x'; --"})"}}).ok());
  ASSERT_TRUE(store_->UpsertHashSnapshots({{"progress:1", R"({"a":"2"})"}}).ok());
  ASSERT_TRUE(store_->UpsertHashSnapshots({{"progress:1", R"({"a":"2"})"}}).ok()) << "replay";
  auto one = store_->GetHashSnapshot("progress:1");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ(nlohmann::json::parse(**one)["a"], "2");
  EXPECT_EQ(nlohmann::json::parse(**store_->GetHashSnapshot("progress:2"))["b"], "x'; --");
  EXPECT_FALSE(store_->GetHashSnapshot("progress:3")->has_value());
}

INSTANTIATE_TEST_SUITE_P(Backends, SqlStoreTest, ::testing::Values("sqlite", "postgresql"));

// Percent escapes in DATABASE_URL are decoded; a malformed one stays as written (it threw std::invalid_argument,
// which ended the process at start).
TEST(SqlStoreUrlTest, MalformedPercentEscapesAreKeptNotFatal) {
  auto c = PostgresUrlToConninfo("postgresql://app:p%zz%4x%41@db.example:5433/streamfleet");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_NE(c->find("password='p%zz%4xA'"), std::string::npos) << *c;
  EXPECT_NE(c->find("port='5433'"), std::string::npos) << *c;
}

// An IPv6 host is in brackets (its colons are not the port's: "[::1]:5432" became host '[::1]'), and a
// percent-encoded host is decoded (a socket directory reached libpq as "%2Fvar...").
TEST(SqlStoreUrlTest, BracketedIpv6AndEncodedSocketDirectoryHosts) {
  auto v6 = PostgresUrlToConninfo("postgresql://app@[::1]:5433/db");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_NE(v6->find("host='::1' port='5433'"), std::string::npos) << *v6;
  auto v6_no_port = PostgresUrlToConninfo("postgresql://app@[fe80::1]/db");
  ASSERT_TRUE(v6_no_port.ok());
  EXPECT_NE(v6_no_port->find("host='fe80::1'"), std::string::npos) << *v6_no_port;
  EXPECT_EQ(v6_no_port->find("port="), std::string::npos) << *v6_no_port;
  auto socket = PostgresUrlToConninfo("postgresql://app@%2Fvar%2Frun%2Fpostgresql/db");
  ASSERT_TRUE(socket.ok());
  EXPECT_NE(socket->find("host='/var/run/postgresql'"), std::string::npos) << *socket;
  EXPECT_FALSE(PostgresUrlToConninfo("postgresql://app@[::1/db").ok());
}

TEST(SqlStoreOutageTest, UnreachableDatabaseIsUnavailableNotFatal) {
  auto st = SqlStore::Open("postgresql://postgres@127.0.0.1:" + std::to_string(testing::FreePort()) +
                           "/x?connect_timeout=2");
  ASSERT_TRUE(st.ok());
  Status s = (*st)->Ping();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_FALSE(SqlStore::Open("mysql://x").ok());
}

// While it lives, every SQLite connection the process opens is held to the size its database has at open:
// PRAGMA max_page_count, set from an auto extension because it is per connection and the store's session is
// its own. A write that needs a new page then fails with SQLITE_FULL ("database or disk is full"), as on a
// full disk or quota, without root or a tiny filesystem.
class PinSqliteSizeOnOpen {
 public:
  PinSqliteSizeOnOpen() { sqlite3_auto_extension(Entry()); }
  ~PinSqliteSizeOnOpen() { sqlite3_cancel_auto_extension(Entry()); }
  PinSqliteSizeOnOpen(const PinSqliteSizeOnOpen&) = delete;
  PinSqliteSizeOnOpen& operator=(const PinSqliteSizeOnOpen&) = delete;

 private:
  static int Pin(sqlite3* db, char** error, const sqlite3_api_routines*) {
    int pages = 0;
    auto read = [](void* out, int, char** values, char**) {
      *static_cast<int*>(out) = std::atoi(values[0]);
      return 0;
    };
    int rc = sqlite3_exec(db, "PRAGMA page_count", read, &pages, error);
    if (rc != SQLITE_OK) return rc;
    std::string pin = "PRAGMA max_page_count = " + std::to_string(pages);
    return sqlite3_exec(db, pin.c_str(), nullptr, nullptr, error);
  }
  // sqlite3_auto_extension takes every entry point as void(*)(void).
  static void (*Entry())() { return reinterpret_cast<void (*)()>(&Pin); }
};

TEST(SqlStoreOutageTest, SqliteFullDiskIsUnavailableNotAPermanentError) {
  std::string path;
  std::string url = testing::FreshDatabaseUrl("sqlite", "sf-sql-full", &path);
  {
    auto st = SqlStore::Open(url);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    ASSERT_TRUE((*st)->Migrate().ok());
  }
  std::unique_ptr<SqlStore> store;
  {
    PinSqliteSizeOnOpen pin;  // only the connection Open makes now
    auto st = SqlStore::Open(url);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store = std::move(*st);
  }
  ASSERT_TRUE(store->Ping().ok());

  GenerationWrite w;
  w.id = 59;
  w.organization_id = 12;
  w.compacted = std::string(256 * 1024, 'A');  // overflow pages the file may not grow by
  w.chunk_count = 1;
  w.compacted_at = "2026-11-25T12:00:00.000Z";
  w.compacted_by = "c1";
  w.finalize_id = "1700000000000-0";
  auto r = store->UpsertGeneration(w);
  ASSERT_FALSE(r.ok()) << "the pinned file took a 256 KiB row: no SQLITE_FULL was provoked";
  // A full disk is an outage (retried, not ready), not a bad row to dead-letter.
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_TRUE(r.status().retryable());
  EXPECT_NE(r.status().message().find("database or disk is full"), std::string::npos) << r.status().ToString();

  // Chunk rows (GENERATION_CHUNK_STORAGE=db|both) meet the same disk.
  Status chunks = store->UpsertChunks({{59, 12, 0, 0, std::string(256 * 1024, 'x')}});
  EXPECT_EQ(chunks.code(), StatusCode::kUnavailable) << chunks.ToString();

  // The failed transaction was rolled back and the session still answers.
  auto row = store->GetGeneration(59);
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  EXPECT_FALSE(row->has_value());

  store.reset();
  for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

}  // namespace
}  // namespace streamfleet
