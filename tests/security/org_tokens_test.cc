// Per-organization tokens: org 12's token cannot read, write or finish org 13's generations through any
// route, and a refused request writes nothing to Redis (every key and every stream entry compared before and
// after). ingest_test covers 401/403 on the chunk and start routes; this covers every route and the state.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "support/ingest_harness.h"
#include "streamfleet/testing/redis_server.h"
#include "support/sql_database.h"

namespace streamfleet::testing {
namespace {

const std::vector<std::string> kTwelve = {"Authorization: Bearer tok-twelve"};
const std::vector<std::string> kThirteen = {"Authorization: Bearer tok-thirteen"};

class OrgTokensTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new RedisServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    redis_ = RedisClient::Connect(server_->config()).value();
    ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
  }
  // Every key with its type and a dump of its value: any write shows up as a difference.
  std::map<std::string, std::string> Snapshot() {
    std::map<std::string, std::string> out;
    std::string cursor = "0";
    do {
      auto r = redis_->Command({"SCAN", cursor, "COUNT", "100"});
      cursor = r->elements[0].str;
      for (const auto& k : r->elements[1].elements) {
        auto dump = redis_->Command({"DUMP", k.str});
        out[k.str] = dump.ok() ? dump->str : "?";
      }
    } while (cursor != "0");
    return out;
  }

  inline static RedisServer* server_ = nullptr;
  std::unique_ptr<RedisClient> redis_;
};

TEST_F(OrgTokensTest, AnotherOrganizationsTokenCanNeitherReadNorWriteNorFinish) {
  std::string db_path;
  std::string db_url = FreshDatabaseUrl("sqlite", "sf-org-tokens", &db_path);
  auto store = SqlStore::Open(db_url).value();
  ASSERT_TRUE(store->Migrate().ok());
  IngestHarness ingest(server_->port(), {{"INGEST_TOKENS", "12:tok-twelve,13:tok-thirteen"}}, store.get());
  // Org 13 has a generation in progress.
  const std::string gen = "/v1/orgs/13/generations/70";
  ASSERT_EQ(ingest.Post(gen + "/chunks", R"({"seq": 0, "data": "org 13 only"})", "application/json", kThirteen).status,
            202);
  // The first chunk's generation.started event is sent after the 202 (fire and forget): wait for it, so the
  // snapshot holds everything the owner's request wrote and any later difference is the intruders'.
  const std::string events = KeySchema::FromConfig(ingest.config()).EventsStream();
  for (int i = 0; i < 500 && redis_->Command({"XLEN", events})->integer < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(redis_->Command({"XLEN", events})->integer, 1);
  auto before = Snapshot();
  ASSERT_FALSE(before.empty());

  struct Attempt {
    std::string method, path, type, body;
  };
  const std::vector<Attempt> attempts = {
      {"GET", gen, "", ""},
      {"GET", gen + "/progress", "", ""},
      {"POST", gen + "/chunks", "application/json", R"({"seq": 1, "data": "intruder"})"},
      {"POST", gen + "/chunks", "application/json", R"({"data": "intruder", "final": true})"},
      {"POST", gen + "/chunks", "application/x-ndjson", "{\"seq\": 1, \"data\": \"intruder\", \"final\": true}\n"},
      {"POST", gen + "/chunks", "text/event-stream",
       "data: {\"choices\":[{\"delta\":{\"content\":\"intruder\"}}]}\n\ndata: [DONE]\n\n"},
      {"POST", gen + "/finish", "application/json", R"({"total_chunks": 1})"},
      {"POST", "/v1/orgs/13/generations", "application/json", R"({"instruction": {"content": "intrude"}})"},
  };
  for (const auto& a : attempts) {
    HttpResponse r = a.method == "GET" ? ingest.Get(a.path, kTwelve) : ingest.Post(a.path, a.body, a.type, kTwelve);
    EXPECT_EQ(r.status, 403) << a.method << " " << a.path << " " << a.type << ": " << r.body;
    EXPECT_NE(r.body.find("\"forbidden\""), std::string::npos) << r.body;
    // No token, or an unknown one: 401, also nothing written.
    r = a.method == "GET" ? ingest.Get(a.path) : ingest.Post(a.path, a.body, a.type);
    EXPECT_EQ(r.status, 401) << a.method << " " << a.path;
    r = a.method == "GET" ? ingest.Get(a.path, {"Authorization: Bearer tok-twelvex"})
                          : ingest.Post(a.path, a.body, a.type, {"Authorization: Bearer tok-twelvex"});
    EXPECT_EQ(r.status, 401) << a.method << " " << a.path;
  }
  EXPECT_EQ(Snapshot(), before) << "a refused request changed Redis";
  // The owner still can.
  EXPECT_EQ(ingest.Get(gen + "/progress", kThirteen).status, 200);
  EXPECT_EQ(ingest.Post(gen + "/finish", R"({"total_chunks": 1})", "application/json", kThirteen).status, 202);
  store.reset();
  for (auto suffix : {"", "-wal", "-shm"}) std::remove((db_path + suffix).c_str());
}

}  // namespace
}  // namespace streamfleet::testing
