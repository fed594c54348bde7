// A database that refuses the finalization's write (a trigger here; a CHECK or a role without rights
// behaves the same): the compactor keeps the buffer, leaves the finalize entry pending (never acked, never
// silently lost), reports it (log + streamfleet_compactor_finalizations_rejected_total), retries it after
// VISIBILITY_TIMEOUT, and completes the generation once the database accepts the row; only after
// MAX_DELIVERIES refusals does the entry go to the dead letters, with the database's error as its reason.
#include <gtest/gtest.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <sqlite3.h>

#include "badinput/pipeline.h"
#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/testing/redis_server.h"
#include "support/sql_database.h"
#include "support/wait.h"

namespace streamfleet::testing {
namespace {

class DbRejectsWriteTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { server_ = new RedisServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    redis_ = RedisClient::Connect(server_->config()).value();
    ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
    db_url_ = FreshDatabaseUrl(GetParam(), "sf-db-rejects", &db_path_);
    if (db_url_.empty()) GTEST_FAIL() << "STREAMFLEET_TEST_PG_URL is not set (scripts/test.sh sets it)";
  }
  void TearDown() override {
    // The PostgreSQL database is shared with the suites that run after this one: never leave the trigger.
    if (GetParam() == "postgresql" && !db_url_.empty()) Sql("DROP TRIGGER IF EXISTS refuse_rows ON scenario_generations");
    for (auto suffix : {"", "-wal", "-shm"}) std::remove((db_path_ + suffix).c_str());
  }
  void Sql(const std::string& statement) {
    if (GetParam() == "sqlite") {
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
      sqlite3_busy_timeout(db, 5000);
      char* err = nullptr;
      int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &err);
      EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
      sqlite3_free(err);
      sqlite3_close(db);
    } else {
      soci::session s(soci::postgresql, *PostgresUrlToConninfo(db_url_));
      s << statement;
    }
  }
  void RefuseRows() {
    if (GetParam() == "sqlite") {
      Sql("CREATE TRIGGER refuse_rows BEFORE INSERT ON scenario_generations "
          "BEGIN SELECT RAISE(ABORT, 'rows refused by policy'); END");
    } else {
      Sql("CREATE OR REPLACE FUNCTION refuse_rows() RETURNS trigger LANGUAGE plpgsql AS "
          "$$ BEGIN RAISE EXCEPTION 'rows refused by policy'; END $$");
      Sql("CREATE TRIGGER refuse_rows BEFORE INSERT ON scenario_generations "
          "FOR EACH ROW EXECUTE FUNCTION refuse_rows()");
    }
  }
  // Only generation `gen`'s row, as a row-level policy would: the others are written.
  void RefuseRowOf(int64_t gen) {
    const std::string id = std::to_string(gen);
    if (GetParam() == "sqlite") {
      Sql("CREATE TRIGGER refuse_rows BEFORE INSERT ON scenario_generations WHEN NEW.id = " + id +
          " BEGIN SELECT RAISE(ABORT, 'rows refused by policy'); END");
    } else {
      Sql("CREATE OR REPLACE FUNCTION refuse_rows() RETURNS trigger LANGUAGE plpgsql AS "
          "$$ BEGIN IF NEW.id = " + id + " THEN RAISE EXCEPTION 'rows refused by policy'; END IF; RETURN NEW; END $$");
      Sql("CREATE TRIGGER refuse_rows BEFORE INSERT ON scenario_generations "
          "FOR EACH ROW EXECUTE FUNCTION refuse_rows()");
    }
  }
  void AcceptRows() { Sql(GetParam() == "sqlite" ? "DROP TRIGGER refuse_rows" : "DROP TRIGGER refuse_rows ON scenario_generations"); }
  void SendGeneration(CompactorUnderTest& c, int64_t gen) {
    const std::string stream = c.keys().ChunkStream(0);
    ASSERT_TRUE(redis_->Command({"XADD", stream, "*", "e", ChunkEnvelopeBytes({1, 0, gen}, 0, "{\"n\": ")}).ok());
    ASSERT_TRUE(redis_->Command({"XADD", stream, "*", "e", ChunkEnvelopeBytes({1, 0, gen}, 1, "1}", true)}).ok());
  }

  inline static RedisServer* server_ = nullptr;
  std::unique_ptr<RedisClient> redis_;
  std::string db_url_, db_path_;
};

TEST_P(DbRejectsWriteTest, RefusedRowStaysPendingAndIsWrittenOnceTheDatabaseAccepts) {
  CompactorUnderTest c(server_->port(), db_url_);
  RefuseRows();
  c.Pump(1);
  SendGeneration(c, 40);
  c.Pump();
  EXPECT_FALSE(c.Row(40).has_value());
  EXPECT_GE(c.service().metrics().finalize_rejected.Value(), 1);
  EXPECT_EQ(PendingOf(*redis_, c.keys().FinalizeStreamOf({1, 0, 40})), 1) << "not acknowledged";
  EXPECT_EQ(redis_->Command({"LLEN", c.keys().BufferKey({1, 0, 40})})->integer, 2) << "the buffer is kept";
  EXPECT_EQ(ReadStream(*redis_, c.keys().ChunkDeadLetterStream()).size(), 0u) << "not dead-lettered at once";

  AcceptRows();
  // Past VISIBILITY_TIMEOUT on purpose, so ClaimNow takes the entry back (a minimum: load only adds to it).
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_TRUE(c.service().ClaimNow(std::atomic<bool>{false}).ok());
  auto row = c.Row(40);
  ASSERT_TRUE(row.has_value()) << "retried through the claim path once the database accepted rows";
  EXPECT_EQ(DecodedText(*row), "{\"n\": 1}");
  EXPECT_EQ(PendingOf(*redis_, c.keys().FinalizeStreamOf({1, 0, 40})), 0);
}

TEST_P(DbRejectsWriteTest, RefusedTooOftenIsDeadLetteredWithTheDatabaseError) {
  CompactorUnderTest c(server_->port(), db_url_, {{"MAX_DELIVERIES", "2"}});
  RefuseRows();
  c.Pump(1);
  SendGeneration(c, 41);
  c.Pump();
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past VISIBILITY_TIMEOUT on purpose
    ASSERT_TRUE(c.service().ClaimNow(std::atomic<bool>{false}).ok());
  }
  auto dead = ReadStream(*redis_, c.keys().ChunkDeadLetterStream());
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(*dead[0].Field("source_stream"), c.keys().FinalizeStreamOf({1, 0, 41}));
  EXPECT_NE(dead[0].Field("reason")->find("rows refused by policy"), std::string::npos) << *dead[0].Field("reason");
  EXPECT_EQ(PendingOf(*redis_, c.keys().FinalizeStreamOf({1, 0, 41})), 0);
  EXPECT_EQ(redis_->Command({"LLEN", c.keys().BufferKey({1, 0, 41})})->integer, 2)
      << "the buffer survives for a replay (streamfleetctl dlq requeue)";

  // Once the database takes rows again, `streamfleetctl dlq requeue` puts the finalize request back on its
  // stream (it used to skip any dead letter without a chunk envelope: "requeued 0", and nothing else would
  // finalize the generation, whose idle deadline was already gone).
  AcceptRows();
  auto requeued = RequeueDeadLetters(*redis_, c.config(), "");
  ASSERT_TRUE(requeued.ok()) << requeued.status().ToString();
  EXPECT_EQ(*requeued, 1);
  EXPECT_EQ(ReadStream(*redis_, c.keys().ChunkDeadLetterStream()).size(), 0u);
  c.Pump();
  auto row = c.Row(41);
  ASSERT_TRUE(row.has_value()) << "finalized from the requeued request";
  EXPECT_EQ(DecodedText(*row), "{\"n\": 1}");
  EXPECT_EQ(PendingOf(*redis_, c.keys().FinalizeStreamOf({1, 0, 41})), 0);
}

// A compactor restarted (same consumer name) with a refused finalization among its own pending entries: its
// recovery read that entry again every round from "0" -- each read reset its idle time, so the claim path never
// counted it toward MAX_DELIVERIES -- and never got to new entries: the other generations waited for ever.
TEST_P(DbRejectsWriteTest, ARestartWithARefusedFinalizationPendingGoesOnWithNewWorkAndDeadLettersIt) {
  {
    CompactorUnderTest before(server_->port(), db_url_, {{"MAX_DELIVERIES", "3"}});
    RefuseRowOf(42);  // once the table is there
    before.Pump(1);
    SendGeneration(before, 42);
    before.Pump();
    ASSERT_EQ(PendingOf(*redis_, before.keys().FinalizeStreamOf({1, 0, 42})), 1) << "refused, left pending";
  }
  CompactorUnderTest after(server_->port(), db_url_, {{"MAX_DELIVERIES", "3"}});
  SendGeneration(after, 43);
  bool dead = false;
  for (int round = 0; round < 400 && !(dead && after.Row(43).has_value()); ++round) {
    ASSERT_TRUE(after.service().RunOnce(std::atomic<bool>{false}).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    dead = ReadStream(*redis_, after.keys().ChunkDeadLetterStream()).size() == 1;
  }
  auto row = after.Row(43);
  ASSERT_TRUE(row.has_value()) << "the restarted compactor never got past its refused entry";
  EXPECT_EQ(DecodedText(*row), "{\"n\": 1}");
  ASSERT_TRUE(dead) << "the refused entry reached MAX_DELIVERIES through the claim path";
  auto letters = ReadStream(*redis_, after.keys().ChunkDeadLetterStream());
  EXPECT_EQ(*letters[0].Field("source_stream"), after.keys().FinalizeStreamOf({1, 0, 42}));
  EXPECT_FALSE(after.Row(42).has_value());
}

INSTANTIATE_TEST_SUITE_P(Backends, DbRejectsWriteTest, ::testing::Values("sqlite", "postgresql"));

}  // namespace
}  // namespace streamfleet::testing
