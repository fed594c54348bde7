// streamfleetctl as an operator runs it: the real binary, a real redis-server, SQLite and PostgreSQL.
#include <gtest/gtest.h>

#include "streamfleet/base/time.h"

#include <set>
#include <sys/wait.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "streamfleet/chunks/chunk_buffer.h"
#include "streamfleet/cache/cache.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/artifacts/chunk_archive.h"
#include "streamfleet/sql/sql_store.h"
#include "streamfleet/taskqueue/task_keys.h"
#include "streamfleet/v1/task.pb.h"
#include "support/queued_generations.h"
#include "streamfleet/testing/redis_server.h"
#include "support/map_env.h"
#include "support/redis_suite.h"
#include "support/s3_server.h"

namespace streamfleet {
namespace {

struct CtlRun {
  int code;
  std::string out;
};

class CtlTest : public testing::RedisSuite<> {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
    db_ = testing::TempPath("sf-ctl") + ".db";
  }
  void TearDown() override { std::remove(db_.c_str()); }
  CtlRun Ctl(const std::string& args, const std::string& env = "") {
    std::string cmd = "REDIS_PORT=" + std::to_string(server_->config().port) + " DATABASE_URL=sqlite:" + db_ + " " + env +
                      " " STREAMFLEETCTL_PATH " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    int st = pclose(p);
    return {WEXITSTATUS(st), out};
  }
  std::string db_;
};

TEST_F(CtlTest, EveryCommandsHelpHasAnExample) {
  for (const std::string cmd : {"inspect-generation", "compact-generation", "replay-generation", "show-generation",
                                "migrate-artifacts", "generate", "migrate",
                                "migrate-compacted-from-metadata", "streams", "dlq", "enqueue", "tasks", "schedules", "queues",
                                "buffers", "config", "check-config", "cache", "cache stats", "cache flush"}) {
    auto h = Ctl(cmd + " --help");
    EXPECT_EQ(h.code, 0) << cmd;
    EXPECT_NE(h.out.find("example: streamfleetctl"), std::string::npos) << cmd << ":\n" << h.out;
  }
}

TEST_F(CtlTest, WrongArgumentsAndUnreachableServicesFailClearly) {
  EXPECT_NE(Ctl("").code, 0) << "a subcommand is required";
  EXPECT_NE(Ctl("inspect-generation abc 1").code, 0);
  auto down = Ctl("streams", "REDIS_PORT=" + std::to_string(testing::FreePort()));
  EXPECT_EQ(down.code, 1);
  EXPECT_NE(down.out.find("redis"), std::string::npos) << down.out;
  auto bad_cfg = Ctl("streams", "GENERATION_CHUNK_STORAGE=s3");
  EXPECT_EQ(bad_cfg.code, 2);
  EXPECT_NE(bad_cfg.out.find("GENERATION_CHUNK_STORAGE"), std::string::npos);
  auto db_down = Ctl("migrate", "DATABASE_URL=postgresql://postgres@127.0.0.1:" + std::to_string(testing::FreePort()) + "/x");
  EXPECT_EQ(db_down.code, 1);
  EXPECT_NE(db_down.out.find("database"), std::string::npos) << db_down.out;
}

// check-config loads the environment as the processes do, without Redis or a database: what they would refuse
// at start (scripts/check-deploy.sh runs it on every manifest's environment) exits 2 naming the variable.
TEST_F(CtlTest, CheckConfigRefusesWhatTheProcessesWouldRefuseAtStart) {
  const std::string nowhere = "REDIS_PORT=" + std::to_string(testing::FreePort()) + " ";
  auto good = Ctl("check-config", nowhere + "INGEST_TOKENS=1:secret,22:other TASK_API_TOKENS=app:enqueue+read");
  EXPECT_EQ(good.code, 0) << good.out;
  EXPECT_NE(good.out.find("configuration ok"), std::string::npos) << good.out;
  auto org_not_a_number = Ctl("check-config", nowhere + "INGEST_TOKENS=dev:dev-token");
  EXPECT_EQ(org_not_a_number.code, 2);
  EXPECT_NE(org_not_a_number.out.find("INGEST_TOKENS"), std::string::npos) << org_not_a_number.out;
  EXPECT_EQ(org_not_a_number.out.find("dev-token"), std::string::npos) << "a token was printed: " << org_not_a_number.out;
  auto bad_duration = Ctl("--json check-config", nowhere + "GENERATION_IDLE_TIMEOUT=soon");
  EXPECT_EQ(bad_duration.code, 2);
  EXPECT_NE(bad_duration.out.find("GENERATION_IDLE_TIMEOUT"), std::string::npos) << bad_duration.out;
}

TEST_F(CtlTest, MigrateOnSqliteAndPostgres) {
  auto st = Ctl("--json migrate status");
  ASSERT_EQ(st.code, 0) << st.out;
  EXPECT_EQ(nlohmann::json::parse(st.out)[0]["applied"], false);
  ASSERT_EQ(Ctl("migrate").code, 0);
  EXPECT_EQ(nlohmann::json::parse(Ctl("--json migrate status").out)[0]["applied"], true);
  std::string pg = testing::PostgresUrl();
  ASSERT_FALSE(pg.empty()) << "STREAMFLEET_TEST_PG_URL is not set";
  auto pgm = Ctl("--json migrate", "DATABASE_URL=" + pg);
  ASSERT_EQ(pgm.code, 0) << pgm.out;
  EXPECT_EQ(nlohmann::json::parse(pgm.out)[0]["applied"], true);
  auto prev = Ctl("--json migrate-compacted-from-metadata --preview", "DATABASE_URL=" + pg);
  ASSERT_EQ(prev.code, 0) << prev.out;
  EXPECT_EQ(nlohmann::json::parse(prev.out)["preview"], true);
}

TEST_F(CtlTest, InspectCompactAndDeleteAGeneration) {
  Config c = LoadConfig([](const std::string&) { return std::nullopt; }, ":0").value();
  c.redis = server_->config();
  ManualClock clock(1'800'000'000'000);
  ChunkBuffer buf(c, clock);
  GenerationId g{12, 345, 59};
  ASSERT_TRUE(buf.Apply(*redis_, {{g, false, 1, "2]", false, 0}, {g, false, 0, "[1,", false, 0}}).ok());
  auto in = Ctl("--json inspect-generation 12 59");
  ASSERT_EQ(in.code, 0) << in.out;
  auto j = nlohmann::json::parse(in.out);
  bool saw_list = false;
  for (auto& k : j["keys"]) {
    if (k["key"] == "app:scenario_planning:org:12:scenario:345:generation:59:chunks") {
      saw_list = true;
      EXPECT_EQ(k["llen"], 2);
    }
  }
  EXPECT_TRUE(saw_list) << in.out;
  auto cp = Ctl("--json compact-generation 12 59 --scenario-id 345 --delete");
  ASSERT_EQ(cp.code, 0) << cp.out;
  auto cj = nlohmann::json::parse(cp.out);
  EXPECT_EQ(cj["chunk_count"], 2);
  EXPECT_EQ(cj["json_valid"], true);
  EXPECT_EQ(redis_->Command({"EXISTS", buf.keys().BufferKey(g)})->integer, 0);
  auto again = Ctl("compact-generation 12 59 --scenario-id 345");
  EXPECT_EQ(again.code, 1) << "nothing left to compact";

  // The same on PostgreSQL (a generation id of its own: the database is shared with other suites).
  std::string pg = testing::PostgresUrl();
  ASSERT_FALSE(pg.empty()) << "STREAMFLEET_TEST_PG_URL is not set";
  const int64_t id = 800000 + static_cast<int64_t>(::time(nullptr) % 100000);
  GenerationId pg_gen{12, 345, id};
  ASSERT_TRUE(buf.Apply(*redis_, {{pg_gen, false, 0, "{\"a\":", false, 0}, {pg_gen, false, 1, "1}", false, 0}}).ok());
  auto pc = Ctl("--json compact-generation 12 " + std::to_string(id) + " --scenario-id 345", "DATABASE_URL=" + pg);
  ASSERT_EQ(pc.code, 0) << pc.out;
  EXPECT_EQ(nlohmann::json::parse(pc.out)["chunk_count"], 2);
  auto row = SqlStore::Open(pg).value()->GetGeneration(id).value();
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->chunk_count, 2);
  EXPECT_EQ(Base64Decode(*row->compacted).value_or(""), "{\"a\":1}");
}

TEST_F(CtlTest, ReplayGenerationRebuildsTheBufferFromGenerationChunksAndFinalizes) {
  std::string pg = testing::PostgresUrl();
  ASSERT_FALSE(pg.empty()) << "STREAMFLEET_TEST_PG_URL is not set";
  // A generation id of its own per run: the PostgreSQL database is shared with other suites.
  const int64_t gen = 700000 + static_cast<int64_t>(::time(nullptr) % 100000);
  for (const std::string& url : {"sqlite:" + db_, pg}) {
    SCOPED_TRACE(url);
    ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
    const std::string env = "DATABASE_URL=" + url;
    auto store = SqlStore::Open(url).value();
    ASSERT_TRUE(store->Migrate().ok());
    const std::string text = "{\"greeting\": \"h\u00e9llo \u00e9t\u00e9\"}";
    std::vector<std::string> parts = {"{\"greeting\": ", "\"h\u00e9llo ", "\u00e9t\u00e9\"}"};
    std::vector<ChunkRow> rows;
    for (size_t i = 0; i < parts.size(); ++i) rows.push_back({gen, 5, 0, static_cast<int64_t>(i), parts[i]});
    // Another organization's chunk under the same id (the id used again after its owner record lapsed): it
    // was replayed into organization 5's text.
    rows.push_back({gen, 9, 0, 3, " and organization 9's"});
    ASSERT_TRUE(store->UpsertChunks(rows).ok());

    auto r = Ctl("--json replay-generation " + std::to_string(gen), env);
    ASSERT_EQ(r.code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["organization_id"], 5);
    EXPECT_EQ(j["other_organization_rows"], 1);
    EXPECT_EQ(j["rows"], 3);
    EXPECT_EQ(j["appended"], 3);
    EXPECT_EQ(j["chunk_count"], 3);
    EXPECT_EQ(j["json_valid"], true);
    EXPECT_EQ(j["buffer_deleted"], false);
    auto row = store->GetGeneration(gen).value();
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->organization_id, 5);
    EXPECT_EQ(row->chunk_count, 3);
    ASSERT_TRUE(row->compacted.has_value());
    EXPECT_EQ(Base64Decode(*row->compacted).value_or(""), text);
    EXPECT_NE(row->metadata.find("replay"), std::string::npos) << row->metadata;
    Config c = LoadConfig([](const std::string&) { return std::nullopt; }, ":0").value();
    KeySchema keys = KeySchema::FromConfig(c);
    GenerationId g{5, 0, gen};
    EXPECT_EQ(redis_->Command({"LLEN", keys.BufferKey(g)})->integer, 3);

    // Again, deleting: the buffer dedupes by seq (nothing re-appended), the row is rewritten, the buffer goes.
    auto again = Ctl("--json replay-generation " + std::to_string(gen) + " --delete", env);
    ASSERT_EQ(again.code, 0) << again.out;
    auto aj = nlohmann::json::parse(again.out);
    EXPECT_EQ(aj["appended"], 0);
    EXPECT_EQ(aj["chunk_count"], 3);
    EXPECT_EQ(aj["buffer_deleted"], true);
    EXPECT_EQ(redis_->Command({"EXISTS", keys.BufferKey(g), keys.MetaKey(g), keys.SeenKey(g)})->integer, 0);

    auto none = Ctl("replay-generation " + std::to_string(gen + 1), env);
    EXPECT_EQ(none.code, 1);
    EXPECT_NE(none.out.find("no generation_chunks rows"), std::string::npos) << none.out;
  }
  EXPECT_NE(Ctl("replay-generation -3").code, 0);
}

// A replay of an id whose owner record names another organization fails before buffering anything (it buffered,
// finalized nothing, DEL'd the buffer with --delete whatever happened and said "compacted"); its owner's replay
// with --delete has the buffer deleted by the finalization itself.
TEST_F(CtlTest, ReplayGenerationOfAnIdHeldByAnotherOrganizationFailsAndKeepsTheBuffer) {
  auto store = SqlStore::Open("sqlite:" + db_).value();
  ASSERT_TRUE(store->Migrate().ok());
  const int64_t gen = 4343;
  ASSERT_TRUE(store->UpsertChunks({{gen, 5, 0, 0, "{\"a\": "}, {gen, 5, 0, 1, "1}"}}).ok());
  Config c = LoadConfig([](const std::string&) { return std::nullopt; }, ":0").value();
  KeySchema keys = KeySchema::FromConfig(c);
  ASSERT_TRUE(redis_->Command({"SET", keys.OwnerKey(gen), "9", "EX", "600"}).ok());
  auto r = Ctl("replay-generation " + std::to_string(gen) + " --delete");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("another organization"), std::string::npos) << r.out;
  GenerationId g{5, 0, gen};
  EXPECT_EQ(redis_->Command({"EXISTS", keys.BufferKey(g)})->integer, 0) << "buffered for another's id";
  EXPECT_FALSE(store->GetGeneration(gen).value().has_value());

  // Its owner now: replayed, written, and the buffer deleted by the finalization.
  ASSERT_TRUE(redis_->Command({"SET", keys.OwnerKey(gen), "5", "EX", "600"}).ok());
  auto ok = Ctl("--json replay-generation " + std::to_string(gen) + " --delete");
  ASSERT_EQ(ok.code, 0) << ok.out;
  EXPECT_EQ(nlohmann::json::parse(ok.out)["buffer_deleted"], true);
  EXPECT_EQ(redis_->Command({"EXISTS", keys.BufferKey(g), keys.MetaKey(g)})->integer, 0);
  EXPECT_EQ(store->GetGeneration(gen).value()->chunk_count, 2);
}

// Rows generation_chunks.purge archived and deleted come back from the chunk archive (s3rver): replay merges them
// with the rows still in the table, and an archive it cannot read fails the replay instead of compacting a part.
TEST_F(CtlTest, ReplayGenerationReadsPurgedRowsFromTheChunkArchive) {
  testing::S3Server s3;
  std::string env;
  for (const auto& [k, v] : s3.env("ctl")) env += k + "=" + v + " ";
  Config c = LoadConfig(testing::MapEnv(s3.env("ctl")), ":0").value();
  auto archive = OpenObjectStore(c);
  auto store = SqlStore::Open("sqlite:" + db_).value();
  ASSERT_TRUE(store->Migrate().ok());
  const int64_t gen = 4242;
  ASSERT_TRUE(ArchiveChunks(*archive, {{gen, 6, 9, 0, "{\"plan\": "}, {gen, 6, 9, 1, "[1, 2"}}, ChunkArchiveMaxBytes(c)).ok());
  ASSERT_TRUE(store->UpsertChunks({{gen, 6, 9, 2, "]}"}}).ok());

  auto r = Ctl("--json replay-generation " + std::to_string(gen) + " --delete", env);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["organization_id"], 6);
  EXPECT_EQ(j["scenario_id"], 9);
  EXPECT_EQ(j["rows"], 3);
  EXPECT_EQ(j["from_archive"], 2);
  EXPECT_EQ(j["chunk_count"], 3);
  EXPECT_EQ(j["json_valid"], true);
  auto row = store->GetGeneration(gen).value();
  ASSERT_TRUE(row.has_value() && row->compacted.has_value());
  EXPECT_EQ(Base64Decode(*row->compacted).value_or(""), "{\"plan\": [1, 2]}");

  // Without ARTIFACT_STORE only the table's row is there: a replay of what is left, which the finalizer refuses
  // to let shrink the row (its warning is on stderr, before the JSON); with an archive that is not one, an error
  // naming it.
  auto partial = Ctl("--json replay-generation " + std::to_string(gen) + " --delete");
  ASSERT_EQ(partial.code, 0) << partial.out;
  EXPECT_EQ(nlohmann::json::parse(partial.out.substr(partial.out.find("{\n")))["rows"], 1) << partial.out;
  EXPECT_EQ(store->GetGeneration(gen).value()->chunk_count, 3);
  ASSERT_TRUE(archive->Put(ChunkArchiveKey(gen), "not an archive").ok());
  auto bad = Ctl("replay-generation " + std::to_string(gen), env);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("chunk archive s3://art/ctl/chunk-archive/4242.ndjson.zst"), std::string::npos) << bad.out;
}

// show-generation reads the text wherever the row keeps it: in `compacted`, or in ARTIFACT_STORE (s3rver) through
// the row's reference, the same bytes either way; another organization's row is not found.
TEST_F(CtlTest, ShowGenerationReadsTheTextThroughTheObjectStore) {
  testing::S3Server s3;
  std::string env = "ARTIFACT_INLINE_MAX_BYTES=16 ";
  for (const auto& [k, v] : s3.env("show")) env += k + "=" + v + " ";
  Config c = LoadConfig([](const std::string&) { return std::nullopt; }, ":0").value();
  c.redis = server_->config();
  ManualClock clock(1'800'000'000'000);
  ChunkBuffer buf(c, clock);
  GenerationId g{14, 0, 61};
  const std::string text = "{\"answer\": \"d\u00e9j\u00e0 vu, longer than sixteen bytes\"}";
  ASSERT_TRUE(buf.Apply(*redis_, {{g, false, 0, text.substr(0, 20), false, 0}, {g, false, 1, text.substr(20), false, 0}}).ok());
  ASSERT_EQ(Ctl("compact-generation 14 61 --delete", env).code, 0);

  auto shown = Ctl("--json show-generation 14 61", env);
  ASSERT_EQ(shown.code, 0) << shown.out;
  auto j = nlohmann::json::parse(shown.out);
  EXPECT_EQ(j["text_in"], "store");
  EXPECT_EQ(j["text_bytes"], text.size());
  EXPECT_EQ(j["chunk_count"], 2);
  EXPECT_EQ(j["compacted"], Base64Encode(text));
  EXPECT_EQ(j["metadata"]["artifact"]["sha256"], Sha256Hex(text));
  EXPECT_EQ(Ctl("show-generation 14 61 --text", env).out, text);
  auto human = Ctl("show-generation 14 61", env);
  EXPECT_NE(human.out.find("text in store, " + std::to_string(text.size()) + " bytes (s3://art/show/artifacts/"),
            std::string::npos) << human.out;

  auto other_org = Ctl("show-generation 15 61", env);
  EXPECT_EQ(other_org.code, 1);
  EXPECT_NE(other_org.out.find("no generation 61 in organization 15"), std::string::npos) << other_org.out;
  auto no_store = Ctl("show-generation 14 61");
  EXPECT_EQ(no_store.code, 1);
  EXPECT_NE(no_store.out.find("ARTIFACT_STORE is not set"), std::string::npos) << no_store.out;

  // Back into the row: the same bytes.
  ASSERT_EQ(Ctl("migrate-artifacts --to database", env).code, 0);
  auto inline_row = nlohmann::json::parse(Ctl("--json show-generation 14 61").out);
  EXPECT_EQ(inline_row["text_in"], "row");
  EXPECT_EQ(inline_row["compacted"], Base64Encode(text));
  EXPECT_EQ(Ctl("show-generation 14 61 --text").out, text);
}

// `streams --keys` works offline (an unreachable Redis is fine) and names exactly the streams the consumer
// groups read, in both key schemas: the KEDA triggers of every deploy overlay are checked against it.
TEST_F(CtlTest, StreamsKeysListsWhatTheConsumerGroupsReadWithoutRedis) {
  std::string offline = "REDIS_HOST=127.0.0.1 REDIS_PORT=" + std::to_string(testing::FreePort());
  auto std_run = Ctl("--json streams --keys", offline + " CHUNK_STREAMS=2 QUEUES=critical:6,default:3");
  ASSERT_EQ(std_run.code, 0) << std_run.out;
  std::vector<std::string> got;
  for (const auto& e : nlohmann::json::parse(std_run.out)) {
    got.push_back(e["stream"].get<std::string>() + "|" + e["group"].get<std::string>() + "|" +
                  e["process"].get<std::string>());
  }
  EXPECT_EQ(got, (std::vector<std::string>{
                     "streamfleet:chunks:0|compactor|streamfleet-compactor",
                     "streamfleet:chunks:1|compactor|streamfleet-compactor",
                     "streamfleet:finalize|compactor|streamfleet-compactor",
                     "streamfleet:queue:critical|workers|streamfleet-queue-worker",
                     "streamfleet:queue:default|workers|streamfleet-queue-worker",
                 }));
  // Cluster: hash-tagged chunk shards with their own finalize streams, 2 shards per queue, and the events
  // stream once the webhook forwarding is on.
  auto cl = Ctl("--json streams --keys", "REDIS_CLUSTER=true REDIS_URL=redis://127.0.0.1:" +
                                             std::to_string(testing::FreePort()) +
                                             " CHUNK_STREAMS=2 TASK_QUEUE_SHARDS=2 QUEUES=default:1"
                                             " EVENTS_WEBHOOK_URL=http://127.0.0.1:9/hook");
  ASSERT_EQ(cl.code, 0) << cl.out;
  got.clear();
  for (const auto& e : nlohmann::json::parse(cl.out)) got.push_back(e["stream"].get<std::string>() + "|" + e["group"].get<std::string>());
  EXPECT_EQ(got, (std::vector<std::string>{
                     "{streamfleet:0}:chunks|compactor",
                     "{streamfleet:1}:chunks|compactor",
                     "{streamfleet:0}:finalize|compactor",
                     "{streamfleet:1}:finalize|compactor",
                     "streamfleet:events|webhooks",
                     "{streamfleet:queue:default:0}|workers",
                     "{streamfleet:queue:default:1}|workers",
                 }));
}

// schedules: each configured schedule with its last fired occurrence (from Redis) and its next run.
TEST_F(CtlTest, SchedulesListsLastAndNextRun) {
  const std::string env =
      "SCHEDULES='[{\"name\": \"nightly\", \"cron\": \"0 3 * * *\", \"type\": \"noop\", \"payload\": {\"a\": 1}}]'";
  auto r = Ctl("--json schedules", env);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["name"], "nightly");
  EXPECT_EQ(j[0]["payload"]["a"], 1);
  EXPECT_TRUE(j[0]["last_fired_ms"].is_null());
  const int64_t next = j[0]["next_run_ms"].get<int64_t>();
  EXPECT_EQ(next % (24 * 3600 * 1000), 3 * 3600 * 1000) << "03:00 UTC";
  EXPECT_GT(next, WallClockMs());
  // Fired two days ago at 03:00 and not since: yesterday's occurrence was missed, it is due now.
  const int64_t day = 24 * 3600 * 1000;
  const int64_t yesterday3 = (WallClockMs() / day - 2) * day + 3 * 3600 * 1000;
  ASSERT_TRUE(redis_->Command({"SET", "streamfleet:schedule:nightly", std::to_string(yesterday3)}).ok());
  auto again = nlohmann::json::parse(Ctl("--json schedules", env).out);
  EXPECT_EQ(again[0]["last_fired_ms"], yesterday3);
  EXPECT_LE(again[0]["next_run_ms"].get<int64_t>(), WallClockMs()) << "a missed occurrence runs now";
  EXPECT_NE(Ctl("schedules", "SCHEDULES='[{\"name\": 1}]'").code, 0) << "a malformed SCHEDULES is refused";
}

// tasks list pages (the printed cursor leads to the next page, to the end, nothing twice); tasks cancel
// cancels a waiting task once, and refuses an unknown one.
TEST_F(CtlTest, TasksListPagesAndTasksCancel) {
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto e = Ctl("--json enqueue noop --delay " + std::to_string(60 + i) + "s");
    ASSERT_EQ(e.code, 0) << e.out;
    ids.insert(nlohmann::json::parse(e.out)["id"].get<std::string>());
  }
  std::set<std::string> listed;
  std::string cursor;
  int pages = 0;
  do {
    auto r = Ctl("--json tasks list --state scheduled --limit 2" + (cursor.empty() ? "" : " --cursor " + cursor));
    ASSERT_EQ(r.code, 0) << r.out;
    auto page = nlohmann::json::parse(r.out);
    for (const auto& t : page["tasks"]) EXPECT_TRUE(listed.insert(t["id"].get<std::string>()).second);
    cursor = page["next_cursor"];
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(listed, ids);
  EXPECT_GE(pages, 3);
  auto human = Ctl("tasks list --state scheduled --limit 2");
  EXPECT_NE(human.out.find("more: streamfleetctl tasks list --state scheduled --limit 2 --cursor "), std::string::npos)
      << human.out;
  EXPECT_NE(Ctl("tasks list --state busy").code, 0);

  const std::string id = *ids.begin();
  auto c = Ctl("--json tasks cancel " + id);
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_EQ(nlohmann::json::parse(c.out)["previous_state"], "scheduled");
  EXPECT_EQ(nlohmann::json::parse(Ctl("--json tasks show " + id).out)["state"], "cancelled");
  EXPECT_EQ(Ctl("tasks cancel " + id).code, 0) << "again: already cancelled";
  // A record holding bytes that are not UTF-8 (a handler's raw result): printed with replacements, not an abort.
  Config defaults = LoadConfig([](const std::string&) { return std::nullopt; }, ":0").value();
  ASSERT_TRUE(redis_->Command({"HSET", TaskKeys::FromConfig(defaults).Status(id), "result", "ok \xff\xfe"}).ok());
  auto raw = Ctl("--json tasks show " + id);
  ASSERT_EQ(raw.code, 0) << raw.out;
  EXPECT_EQ(nlohmann::json::parse(raw.out)["result"], "ok \xEF\xBF\xBD\xEF\xBF\xBD");
  auto unknown = Ctl("tasks cancel no-such-task");
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.out.find("unknown or expired"), std::string::npos) << unknown.out;
}

TEST_F(CtlTest, EnqueueTasksQueuesAndDeadLetters) {
  auto e = Ctl("--json enqueue cache.flush --payload '{\"pattern\":\"x:*\"}' --delay 30s --unique-key k1");
  ASSERT_EQ(e.code, 0) << e.out;
  auto ej = nlohmann::json::parse(e.out);
  EXPECT_EQ(ej["scheduled"], true);
  EXPECT_EQ(nlohmann::json::parse(Ctl("--json enqueue cache.flush --unique-key k1").out)["duplicate"], true);
  auto at = Ctl("--json enqueue noop --at 2099-01-01T00:00:00Z");
  ASSERT_EQ(at.code, 0) << at.out;
  EXPECT_EQ(Ctl("enqueue noop --at tomorrow").code, 1);
  EXPECT_EQ(Ctl("enqueue noop --delay 106751991167d").code, 2) << "overflowed into a run at once";
  EXPECT_NE(Ctl("enqueue noop --at 2099-01-01T00:00:00Z --delay 5s").code, 0) << "--at and --delay exclude";
  auto sch = nlohmann::json::parse(Ctl("--json tasks scheduled").out);
  ASSERT_EQ(sch.size(), 2u);
  EXPECT_EQ(sch[0]["type"], "cache.flush");
  EXPECT_EQ(sch[1]["type"], "noop");
  EXPECT_EQ(sch[1]["run_at_ms"], 4070908800000);
  auto show = nlohmann::json::parse(Ctl("--json tasks show " + ej["id"].get<std::string>()).out);
  EXPECT_EQ(show["state"], "scheduled");
  for (const auto& [k, v] : show.items()) {
    bool numeric = k == "attempts" || (k.size() > 3 && k.substr(k.size() - 3) == "_ms");
    if (numeric) {
      EXPECT_TRUE(v.is_number()) << k << ": " << v;
    }
  }
  // A queue no worker of this configuration reads (QUEUES): the task would wait forever.
  auto nowhere = Ctl("enqueue noop --queue nobody-reads-this");
  EXPECT_EQ(nowhere.code, 2) << nowhere.out;
  EXPECT_NE(nowhere.out.find("--force"), std::string::npos) << nowhere.out;
  EXPECT_EQ(Ctl("enqueue noop --queue nobody-reads-this --force").code, 0);
  EXPECT_EQ(Ctl("enqueue x --payload '{broken'").code, 1);
  ASSERT_EQ(Ctl("queues pause low").code, 0);
  EXPECT_EQ(redis_->Command({"SISMEMBER", "streamfleet:paused", "low"})->integer, 1);
  ASSERT_EQ(Ctl("queues resume low").code, 0);
  // A dead letter, listed, requeued to its source stream.
  ASSERT_TRUE(redis_->Command({"XADD", "streamfleet:dlq:tasks", "*", "source_stream", "streamfleet:queue:default",
                               "reason", "boom", "e", "payload"}).ok());
  auto l = nlohmann::json::parse(Ctl("--json dlq list").out);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["reason"], "boom");
  const std::string dead_id = l[0]["id"].get<std::string>();
  auto shown = Ctl("--json dlq show " + dead_id);
  ASSERT_EQ(shown.code, 0) << shown.out;
  EXPECT_EQ(nlohmann::json::parse(shown.out)[0]["reason"], "boom");
  EXPECT_EQ(Ctl("dlq show 1-1").code, 1) << "a well-formed id of no dead letter";
  // An id that is not a stream id is the command line's mistake (exit 2), said as such; before, Redis'
  // "Invalid stream ID" came back as a failure of XRANGE.
  for (const char* bad : {"abc", "12-", "-1", "99999999999999999999999-0"}) {
    auto r = Ctl(std::string("dlq show '") + bad + "'");
    EXPECT_EQ(r.code, 2) << bad << ": " << r.out;
    EXPECT_NE(r.out.find("is not a dead-letter id"), std::string::npos) << r.out;
    EXPECT_EQ(Ctl(std::string("dlq requeue '") + bad + "'").code, 2) << bad;
  }
  EXPECT_EQ(Ctl("dlq show").code, 2);
  ASSERT_EQ(Ctl("dlq requeue --all").code, 0);
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:queue:default"})->integer, 1);
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:dlq:tasks"})->integer, 0);
  // A consumer holding an entry shows up with its pending count and idle time.
  ASSERT_TRUE(redis_->Command({"XGROUP", "CREATE", "streamfleet:queue:default", "workers", "0", "MKSTREAM"}).ok());
  ASSERT_TRUE(redis_->Command({"XREADGROUP", "GROUP", "workers", "w-1", "COUNT", "1", "STREAMS",
                               "streamfleet:queue:default", ">"}).ok());
  auto s = Ctl("--json streams");
  ASSERT_EQ(s.code, 0) << s.out;
  bool saw = false;
  for (auto& st : nlohmann::json::parse(s.out)) {
    if (st["stream"] != "streamfleet:queue:default") continue;
    for (auto& g : st["groups"]) {
      ASSERT_EQ(g["consumer_list"].size(), 1u) << s.out;
      EXPECT_EQ(g["consumer_list"][0]["name"], "w-1");
      EXPECT_EQ(g["consumer_list"][0]["pending"], 1);
      EXPECT_GE(g["consumer_list"][0]["idle_seconds"].get<double>(), 0.0);
      saw = true;
    }
  }
  EXPECT_TRUE(saw) << s.out;
  EXPECT_NE(Ctl("streams").out.find("consumer w-1"), std::string::npos);
}

TEST_F(CtlTest, GenerateEnqueuesGenerationRunLikeTheHttpRoute) {
  auto g = Ctl("--json generate 12 --content 'Plan Q3' --language en --scenario-id 345 --model m1 --initiator ops");
  ASSERT_EQ(g.code, 0) << g.out;
  auto j = nlohmann::json::parse(g.out);
  EXPECT_EQ(j["generation_id"], 1);
  EXPECT_EQ(j["task_id"], "generation-1");
  auto queued = testing::QueuedGenerations(*redis_);
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].type, "generation.run");
  ASSERT_EQ(queued[0].payload_error, "");
  EXPECT_EQ(nlohmann::json::parse(GenerationRunPayload(queued[0].request)), nlohmann::json::parse(R"(
      {"organization_id": 12, "generation_id": 1, "scenario_id": 345, "model": "m1", "initiator": "ops",
       "instruction": {"content": "Plan Q3", "source": "cli", "language": "en"}})"));
  EXPECT_NE(Ctl("generate 12 --content 'x'").out.find("generation 2 started"), std::string::npos);
  EXPECT_NE(Ctl("generate 12").code, 0) << "--content is required";
  EXPECT_NE(Ctl("generate 0 --content x").code, 0) << "the organization must be positive";
  EXPECT_EQ(Ctl("generate 12 --content ''").code, 1) << "same validation as the HTTP route";
}

TEST_F(CtlTest, CacheStatsAndFlushByKeyNameAndPattern) {
  std::string dir = testing::TempPath("sf-ctl-cache");
  CacheOptions o;
  o.fs_dir = dir;
  Cache cache(server_->config(), o);
  auto fill = [&](const std::string& name, int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(cache.GetOrCompute(name, std::to_string(i), [] { return StatusOr<std::string>(std::string(500, 'v')); }).ok());
    }
  };
  fill("a", 3);
  fill("b", 1);
  std::string env = "IR_CACHE_DIR=" + dir;
  auto st = Ctl("--json cache stats", env);
  ASSERT_EQ(st.code, 0) << st.out;
  auto j = nlohmann::json::parse(st.out);
  EXPECT_EQ(j["redis_keys"], 4);
  EXPECT_GT(j["redis_bytes"].get<int64_t>(), 2000);
  EXPECT_EQ(j["names"]["a"], 3);
  EXPECT_EQ(j["names"]["b"], 1);
  EXPECT_EQ(j["fs_files"], 4);
  EXPECT_GT(j["fs_bytes"].get<int64_t>(), 2000);
  EXPECT_NE(Ctl("cache stats", env).out.find("redis keys: 4"), std::string::npos);
  auto only_b = nlohmann::json::parse(Ctl("--json cache stats b", env).out);
  EXPECT_EQ(only_b["names"].size(), 1u);
  EXPECT_EQ(only_b["names"]["b"], 1);

  auto f = Ctl("--json cache flush a", env);  // positional NAME = --name
  ASSERT_EQ(f.code, 0) << f.out;
  EXPECT_EQ(nlohmann::json::parse(f.out)["deleted"], 3);
  EXPECT_EQ(nlohmann::json::parse(Ctl("--json cache flush --key " + *cache.Key("b", "0"), env).out)["deleted"], 1);
  fill("c", 2);
  ASSERT_TRUE(redis_->Command({"SET", "other:key", "keep"}).ok());
  EXPECT_EQ(nlohmann::json::parse(Ctl("--json cache flush --pattern 'ir_cache:c_*'", env).out)["deleted"], 2);
  EXPECT_EQ(nlohmann::json::parse(Ctl("--json cache stats", env).out)["redis_keys"], 0);
  EXPECT_EQ(redis_->Command({"EXISTS", "other:key"})->integer, 1);
  EXPECT_EQ(Ctl("cache flush", env).code, 1);
  EXPECT_NE(Ctl("cache flush --key k --name n", env).code, 0);
  EXPECT_NE(Ctl("cache flush a --name b", env).code, 0);
  EXPECT_EQ(Ctl("cache flush --key not-a-cache-key", env).code, 1);
  EXPECT_EQ(Ctl("cache stats", "REDIS_PORT=" + std::to_string(testing::FreePort())).code, 1);
  std::filesystem::remove_all(dir);
}

// dlq purge takes filters; without a terminal (scripts, this test) it does not ask.
TEST_F(CtlTest, DeadLetterPurgeTakesFilters) {
  auto task_dlq = [&](const std::string& type, const std::string& src, const std::string& id) {
    v1::TaskEnvelope t;
    t.set_id("t-" + type);
    t.set_type(type);
    ASSERT_TRUE(redis_->Command({"XADD", "streamfleet:dlq:tasks", id, "source_stream", src, "reason", "boom", "e",
                                 t.SerializeAsString()}).ok());
  };
  int64_t now = static_cast<int64_t>(std::time(nullptr)) * 1000;
  std::string old_id = std::to_string(now - 10LL * 86400 * 1000) + "-0";
  task_dlq("webhook", "streamfleet:queue:default", old_id);
  task_dlq("webhook", "streamfleet:queue:low", "*");
  task_dlq("noop", "streamfleet:queue:default", "*");
  ASSERT_TRUE(redis_->Command({"XADD", "streamfleet:dlq:chunks", "*", "source_stream", "streamfleet:chunks:0",
                               "reason", "garbage"}).ok());
  auto older = Ctl("--json dlq purge --older-than 7d");
  ASSERT_EQ(older.code, 0) << older.out;
  EXPECT_EQ(nlohmann::json::parse(older.out)["purged"], 1);
  EXPECT_EQ(nlohmann::json::parse(Ctl("dlq purge --type webhook --json").out)["purged"], 1);
  EXPECT_EQ(nlohmann::json::parse(Ctl("--json dlq purge --stream streamfleet:chunks:0").out)["purged"], 1);
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:dlq:tasks"})->integer, 1) << "the noop one is left";
  EXPECT_EQ(Ctl("dlq purge --older-than soon").code, 1);
  // On a terminal (script(1) gives the command a pty) it asks first; anything but "y" deletes nothing.
  std::string env = "REDIS_PORT=" + std::to_string(server_->config().port) + " DATABASE_URL=sqlite:" + db_;
  auto tty = [&](const std::string& answer) {
    std::string cmd = "printf '" + answer + "\\n' | script -qec '" + env + " " STREAMFLEETCTL_PATH " dlq purge' /dev/null 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    return CtlRun{WEXITSTATUS(pclose(p)), out};
  };
  auto no = tty("n");
  EXPECT_EQ(no.code, 1) << no.out;
  EXPECT_NE(no.out.find("delete 1 dead letter(s)?"), std::string::npos) << no.out;
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:dlq:tasks"})->integer, 1);
  auto yes = tty("y");
  EXPECT_EQ(yes.code, 0) << yes.out;
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:dlq:tasks"})->integer, 0);
  task_dlq("noop", "streamfleet:queue:default", "*");
  EXPECT_EQ(nlohmann::json::parse(Ctl("--json dlq purge").out)["purged"], 1);
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:dlq:tasks"})->integer, 0);

  // requeue --all takes the same filters: once one type's handler is fixed, only its dead letters go back.
  task_dlq("webhook", "streamfleet:queue:default", "*");
  task_dlq("noop", "streamfleet:queue:default", "*");
  ASSERT_TRUE(redis_->Command({"XADD", "streamfleet:dlq:chunks", "*", "source_stream", "streamfleet:chunks:0",
                               "reason", "garbage", "e", "x"}).ok());
  auto webhooks = Ctl("--json dlq requeue --all --type webhook");
  ASSERT_EQ(webhooks.code, 0) << webhooks.out;
  EXPECT_EQ(nlohmann::json::parse(webhooks.out)["requeued"], 1);
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:queue:default"})->integer, 1);
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:dlq:tasks"})->integer, 1) << "the noop one stays";
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:dlq:chunks"})->integer, 1) << "chunk dead letters stay";
  EXPECT_EQ(Ctl("dlq requeue 1-1 --type webhook").code, 2) << "filters go with --all";
}

// `dlq purge ID` deletes that dead letter only: the ID was ignored and every dead letter deleted (a script
// is not asked). An ID beside --all or filters, and filters where they do nothing, are refused untouched.
TEST_F(CtlTest, DeadLetterPurgeOfAnIdDeletesOnlyThatOne) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto id = redis_->Command({"XADD", "streamfleet:dlq:chunks", "*", "source_stream", "streamfleet:chunks:0",
                               "reason", "garbage", "e", "x"});
    ASSERT_TRUE(id.ok());
    ids.push_back(id->str);
  }
  for (const std::string& bad : std::vector<std::string>{"dlq requeue --all " + ids[0], "dlq purge " + ids[0] + " --older-than 1d",
                                "dlq list --type webhook", "dlq show " + ids[0] + " --stream s", "dlq purge --all",
                                "dlq list " + ids[0]}) {
    EXPECT_EQ(Ctl(bad).code, 2) << bad;
  }
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:dlq:chunks"})->integer, 3) << "nothing touched";
  auto one = Ctl("--json dlq purge " + ids[1]);
  ASSERT_EQ(one.code, 0) << one.out;
  EXPECT_EQ(nlohmann::json::parse(one.out)["purged"], 1);
  auto left = redis_->Command({"XRANGE", "streamfleet:dlq:chunks", "-", "+"});
  ASSERT_EQ(left->elements.size(), 2u);
  EXPECT_EQ(left->elements[0].elements[0].str, ids[0]);
  EXPECT_EQ(left->elements[1].elements[0].str, ids[2]);
  EXPECT_EQ(Ctl("dlq purge " + ids[1]).code, 1) << "gone: no dead letter with that id";
  // Ids are unique per stream only: one that is in two dead-letter streams is not deleted from both.
  ASSERT_TRUE(redis_->Command({"XADD", "streamfleet:dlq:chunks", "9999999999999-0", "reason", "a"}).ok());
  ASSERT_TRUE(redis_->Command({"XADD", "streamfleet:dlq:tasks", "9999999999999-0", "reason", "b"}).ok());
  auto twice = Ctl("dlq purge 9999999999999-0");
  EXPECT_EQ(twice.code, 1) << twice.out;
  EXPECT_NE(twice.out.find("several"), std::string::npos) << twice.out;
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:dlq:tasks"})->integer, 1);
  EXPECT_EQ(redis_->Command({"XLEN", "streamfleet:dlq:chunks"})->integer, 3);
}

}  // namespace
}  // namespace streamfleet
