// ingest against a real redis-server, through a real HTTP client (libcurl).
#include "ingest/ingest_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "compactor/compactor_service.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/cache/generation_cache.h"
#include "streamfleet/chunks/generation_request.h"
#include "streamfleet/chunks/generation_start.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/v1/chunk.pb.h"
#include "support/http_client.h"
#include "support/map_env.h"
#include "support/queued_generations.h"
#include "support/raw_http.h"
#include "streamfleet/testing/chunk_envelope.h"
#include "streamfleet/testing/redis_server.h"
#include "support/redis_suite.h"
#include "support/wait.h"
#include "streamfleet/taskqueue/task_keys.h"

namespace streamfleet::ingest {
namespace {

using testing::HttpRequest;
using testing::HttpResponse;

// A single redis-server, or the 3+3 cluster with STREAMFLEET_TEST_REDIS=cluster (ingest_cluster_test).
class IngestTest : public testing::RedisSuite<> {
 protected:
  void TearDown() override {
    if (service_) service_->Stop();
  }

  void StartIngest(std::map<std::string, std::string> extra = {}, SqlStore* store = nullptr) {
    std::map<std::string, std::string> env = server_->env();
    env.insert({{"INGEST_LISTEN", "127.0.0.1:0"},
                {"CHUNK_STREAMS", "1"},
                {"INGEST_THREADS", "16"},
                {"REDIS_TIMEOUT", "1s"}});
    for (auto& [k, v] : extra) env[k] = v;
    auto c = LoadConfig(testing::MapEnv(env), "127.0.0.1:0");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    config_ = std::make_unique<Config>(*c);
    registry_ = std::make_unique<prometheus::Registry>();
    service_ = std::make_unique<IngestService>(*config_, *registry_, store);
    ASSERT_TRUE(service_->Start().ok());
  }

  std::string Url(const std::string& path) { return "http://127.0.0.1:" + std::to_string(service_->port()) + path; }
  HttpResponse Post(const std::string& path, const std::string& body, const std::string& type = "application/json",
                    std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.method = "POST";
    r.url = Url(path);
    r.body = body;
    headers.push_back("Content-Type: " + type);
    r.headers = headers;
    return testing::Send(r);
  }
  HttpResponse Get(const std::string& path, std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.url = Url(path);
    r.headers = std::move(headers);
    return testing::Send(r);
  }
  // The chunk stream's name from the key schema: standard "streamfleet:chunks:N", or hash-tagged on a cluster.
  std::string ChunkStream(int shard = 0) { return KeySchema::FromConfig(*config_).ChunkStream(shard); }
  std::vector<v1::ChunkEnvelope> Stream(int shard = 0) {
    int undecodable = 0;
    auto out = testing::ChunksInStream(*redis_, ChunkStream(shard), &undecodable);
    EXPECT_EQ(undecodable, 0);
    return out;
  }
  nlohmann::json Json(const HttpResponse& r) { return nlohmann::json::parse(r.body, nullptr, false); }

  std::unique_ptr<Config> config_;
  std::unique_ptr<prometheus::Registry> registry_;
  std::unique_ptr<IngestService> service_;
};

TEST_F(IngestTest, JsonChunkIsInRedisWhenAnswered) {
  StartIngest();
  auto r = Post("/v1/orgs/12/generations/59/chunks?scenario_id=345", R"({"seq": 0, "data": "héllo", "final": false})");
  ASSERT_EQ(r.status, 202) << r.body << r.error;
  EXPECT_EQ(Json(r)["accepted"], 1);
  EXPECT_EQ(Json(r)["last_seq"], 0);
  auto s = Stream();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].organization_id(), 12);
  EXPECT_EQ(s[0].scenario_id(), 345);
  EXPECT_EQ(s[0].generation_id(), 59);
  EXPECT_EQ(s[0].data(), "héllo");
  EXPECT_EQ(s[0].source(), "ingest-json");
}

TEST_F(IngestTest, SeqIsAssignedAtomicallyUnderConcurrentRequests) {
  StartIngest();
  constexpr int kThreads = 8, kEach = 40;
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = Post("/v1/orgs/1/generations/2/chunks", R"({"data": ")" + std::to_string(t * 1000 + i) + "\"}");
        if (r.status == 202) ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  std::set<int64_t> seqs;
  for (auto& e : Stream()) seqs.insert(e.seq());
  EXPECT_EQ(seqs.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(*seqs.begin(), 0);
  EXPECT_EQ(*seqs.rbegin(), kThreads * kEach - 1);
}

TEST_F(IngestTest, NdjsonIsAppendedAsTheBodyStreamsIn) {
  StartIngest();
  int sent = 0;
  bool saw_before_end = false;
  HttpRequest req;
  req.method = "POST";
  req.url = Url("/v1/orgs/1/generations/3/chunks");
  req.headers = {"Content-Type: application/x-ndjson"};
  req.stream = [&](std::string* piece) {
    if (sent == 150) {
      // Halfway through the body: the first full batch must already be in Redis.
      saw_before_end = testing::WaitUntil([&] { return Stream().size() >= 100; });
    }
    if (sent == 300) return false;
    *piece = R"({"seq": )" + std::to_string(sent) + R"(, "data": "line )" + std::to_string(sent) + std::string(80, '.') + "\"" +
             (sent == 299 ? R"(, "final": true)" : "") + "}\n";
    ++sent;
    return true;
  };
  auto r = testing::Send(req);
  ASSERT_EQ(r.status, 202) << r.body << r.error;
  EXPECT_TRUE(saw_before_end) << "chunks were only appended after the whole body arrived";
  EXPECT_EQ(Json(r)["accepted"], 300);
  EXPECT_EQ(Json(r)["last_seq"], 299);
  auto s = Stream();
  ASSERT_EQ(s.size(), 300u);
  EXPECT_TRUE(s[299].final());
  EXPECT_EQ(s[7].data(), "line 7" + std::string(80, '.'));
}

TEST_F(IngestTest, MalformedNdjsonLineIsReportedAndNothingAfterItApplied) {
  StartIngest();
  std::string body = "{\"data\": \"a\"}\n{\"data\": \"b\"}\n{\"data\": oops}\n{\"data\": \"d\"}\n";
  auto r = Post("/v1/orgs/1/generations/4/chunks", body, "application/x-ndjson");
  EXPECT_EQ(r.status, 400);
  auto j = Json(r);
  EXPECT_EQ(j["error"], "malformed_line");
  EXPECT_EQ(j["line"], 3);
  EXPECT_EQ(j["accepted"], 2);
  auto s = Stream();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].data(), "b");
}

TEST_F(IngestTest, SseStreamIsRelayedWithAFinishMarker) {
  StartIngest();
  std::string body =
      ": keep-alive\n\n"
      "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"{\\\"a\\\": \"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"1}\"}}]}\n\n"
      "data: [DONE]\n\n";
  auto r = Post("/v1/orgs/5/generations/6/chunks", body, "text/event-stream");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Json(r)["accepted"], 2);
  EXPECT_EQ(Json(r)["done"], true);
  auto s = Stream();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].data(), "{\"a\": ");
  EXPECT_EQ(s[1].seq(), 1);
  EXPECT_EQ(s[2].kind(), v1::ChunkEnvelope::FINISH);
  EXPECT_EQ(s[2].total_chunks(), 2);
  auto bad = Post("/v1/orgs/5/generations/7/chunks", "data: {broken\n\n", "text/event-stream");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Json(bad)["line"], 1);
}

// docs/API.md: anything after the first `data: [DONE]` is ignored. It was still read as lines, and a line
// too long, a body past INGEST_MAX_BODY_BYTES or a read error after it answered 400/413 without writing the
// FINISH (the generation then waited for its idle timeout, and a producer retrying without an
// Idempotency-Key appended its stream again). The FINISH is written at [DONE], and the answer is 202 done:true
// whatever follows.
TEST_F(IngestTest, WhatFollowsSseDoneNeitherFailsTheStreamNorHoldsBackItsFinish) {
  StartIngest({{"INGEST_MAX_CHUNK_BYTES", "100"}, {"INGEST_MAX_BODY_BYTES", "8192"}});
  const std::string stream =
      "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n"
      "data: [DONE]\n\n";
  auto entries_of = [&](int64_t gen) {
    std::vector<v1::ChunkEnvelope> out;
    for (auto& e : Stream()) {
      if (e.generation_id() == gen) out.push_back(std::move(e));
    }
    return out;
  };
  // The two deltas, then the FINISH with their count.
  auto finished = [&](int64_t gen) {
    auto e = entries_of(gen);
    return e.size() == 3 && e[2].kind() == v1::ChunkEnvelope::FINISH && e[2].total_chunks() == 2;
  };
  // A line longer than any chunk of the limit could need (100 * 6 + 4096 bytes), and a chunked body (a
  // Content-Length past the limit is refused before it is read) that goes past the limit with more events.
  auto expect_done = [&](int64_t gen, const HttpResponse& r) {
    EXPECT_EQ(r.status, 202) << gen << ": " << r.body << r.error;
    EXPECT_EQ(Json(r)["done"], true) << r.body;
    EXPECT_EQ(Json(r)["accepted"], 2) << r.body;
    EXPECT_TRUE(finished(gen)) << gen << ": " << entries_of(gen).size() << " entries";
  };
  expect_done(701, Post("/v1/orgs/5/generations/701/chunks", stream + std::string(6000, 'g'), "text/event-stream"));
  HttpRequest chunked;
  chunked.method = "POST";
  chunked.url = Url("/v1/orgs/5/generations/702/chunks");
  chunked.headers = {"Content-Type: text/event-stream"};
  size_t sent = 0;
  chunked.stream = [&](std::string* piece) {
    if (sent >= 20000) return false;
    *piece = sent == 0 ? stream : "data: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\n";
    sent += piece->size();
    return true;
  };
  expect_done(702, testing::Send(chunked));

  // The client's connection reset in the middle of a chunk after [DONE]: nobody gets the answer, but the
  // FINISH is written all the same.
  testing::RawConnection c(service_->port());
  char size[16];
  std::snprintf(size, sizeof(size), "%zx\r\n", stream.size());
  ASSERT_TRUE(c.Send("POST /v1/orgs/5/generations/703/chunks HTTP/1.1\r\nHost: t\r\nContent-Type: text/event-stream\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n" + std::string(size) + stream + "\r\n"));
  ASSERT_TRUE(testing::WaitUntil([&] { return entries_of(703).size() >= 2; })) << "the deltas never arrived";
  ASSERT_TRUE(c.Send("400\r\ndata: half"));
  c.Reset();
  EXPECT_TRUE(testing::WaitUntil([&] { return finished(703); })) << entries_of(703).size() << " entries";
  EXPECT_EQ(Post("/v1/orgs/5/generations/704/chunks", R"({"data": "still served"})").status, 202);
}

// INGEST_WAIT_REPLICAS: 202 only once a replica has the chunk; without one a 503 the client retries, and the
// retry does not append twice.
TEST_F(IngestTest, WaitReplicasAnswersOnlyOnceAReplicaHasTheChunk) {
  if (server_->cluster()) GTEST_SKIP() << "a cluster's replicas are its own: the standalone replication path";
  StartIngest({{"INGEST_WAIT_REPLICAS", "1"}, {"INGEST_WAIT_TIMEOUT", "300ms"}});
  auto r = Post("/v1/orgs/12/generations/501/chunks", R"({"seq": 0, "data": "kept"})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("0 of 1 replicas"), std::string::npos) << r.body;
  testing::RedisServer replica("--replicaof 127.0.0.1 " + std::to_string(server_->config().port));
  auto rc = RedisClient::Connect(replica.config()).value();
  ASSERT_TRUE(testing::WaitUntil([&] {
    auto info = rc->Command({"INFO", "replication"});
    return info.ok() && info->str.find("master_link_status:up") != std::string::npos;
  }, 10000));
  // With a replica attached the 300 ms wait is normally enough; on a loaded machine the replica may answer
  // later, and the client's retry with the same seq is what the 503 asks for (and must not append twice).
  auto post_until_acknowledged = [&](const std::string& body) {
    HttpResponse resp;
    for (int attempt = 0; attempt < 20; ++attempt) {
      resp = Post("/v1/orgs/12/generations/501/chunks", body);
      if (resp.status != 503) break;
    }
    return resp;
  };
  r = post_until_acknowledged(R"({"seq": 0, "data": "kept"})");
  EXPECT_EQ(r.status, 202) << r.body;
  r = post_until_acknowledged(R"({"seq": 1, "data": "also"})");
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Stream().size(), 2u) << "the retried chunk was appended twice";
  EXPECT_EQ(testing::ChunksInStream(*rc, ChunkStream()).size(), 2u) << "the replica does not have both";
}

TEST_F(IngestTest, FinishAndProgressEndToEndWithTheCompactor) {
  StartIngest();
  std::string db = testing::TempPath("sf-ingest") + ".db";
  Config cc = *config_;
  cc.database_url = "sqlite:" + db;
  cc.consumer_name = "c";
  auto store = SqlStore::Open(cc.database_url).value();
  ASSERT_TRUE(store->Migrate().ok());
  prometheus::Registry reg;
  RedisServerClock clock;
  compactor::LoopOptions lo;
  lo.block_ms = 20;
  compactor::CompactorService compactor(cc, clock, *store, reg, lo);
  std::atomic<bool> stop{false};
  EXPECT_EQ(Get("/v1/orgs/12/generations/77/progress").status, 404);
  ASSERT_EQ(Post("/v1/orgs/12/generations/77/chunks?scenario_id=3", R"({"seq": 1, "data": "b"})").status, 202);
  ASSERT_EQ(Post("/v1/orgs/12/generations/77/chunks?scenario_id=3", R"({"seq": 0, "data": "a"})").status, 202);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(compactor.RunOnce(stop).ok());
  auto p = Json(Get("/v1/orgs/12/generations/77/progress"));
  EXPECT_EQ(p["received_chunks"], 2);
  EXPECT_EQ(p["state"], "receiving");
  EXPECT_EQ(p["scenario_id"], 3);
  EXPECT_TRUE(p["total_chunks"].is_null());
  auto f = Post("/v1/orgs/12/generations/77/finish?scenario_id=3", R"({"total_chunks": 2})");
  ASSERT_EQ(f.status, 202) << f.body;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(compactor.RunOnce(stop).ok());
  p = Json(Get("/v1/orgs/12/generations/77/progress"));
  EXPECT_EQ(p["state"], "compacted");
  EXPECT_EQ(p["percent"], 100);
  EXPECT_EQ(p["total_chunks"], 2);
  auto row = store->GetGeneration(77);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->scenario_id, 3);
  EXPECT_EQ((*row)->chunk_count, 2);
  std::remove(db.c_str());
}

TEST_F(IngestTest, StartGenerationValidatesAuthorizesAndEnqueuesGenerationRun) {
  StartIngest({{"INGEST_TOKENS", "12:tok-twelve,13:tok-thirteen"}});  // no database: starting needs none
  const std::string path = "/v1/orgs/12/generations";
  const std::vector<std::string> auth = {"Authorization: Bearer tok-twelve"};
  const std::string body =
      R"({"instruction": {"content": "Plan Q3", "source": "app", "language": "en"}, "scenario_id": 345,
          "model": "m1", "initiator": {"user": 7}})";
  EXPECT_EQ(Post(path, body).status, 401);
  EXPECT_EQ(Post(path, body, "application/json", {"Authorization: Bearer tok-thirteen"}).status, 403);
  EXPECT_EQ(Get(path, auth).status, 405);
  EXPECT_EQ(Post(path, body, "text/plain", auth).status, 415);
  EXPECT_EQ(Json(Post("/v1/orgs/x/generations", body, "application/json", auth))["error"], "invalid_id");
  for (const char* bad : {"{", "[]", R"({"instruction": {}})", R"({"instruction": {"content": ""}})",
                          R"({"instruction": {"content": "x", "language": 5}})",
                          R"({"instruction": {"content": "x"}, "scenario_id": -1})",
                          R"({"instruction": {"content": "x"}, "model": 5})",
                          R"({"instruction": {"content": "x"}, "initiator": [1]})"}) {
    auto r = Post(path, bad, "application/json", auth);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(Json(r)["error"], "invalid_generation") << bad;
    EXPECT_TRUE(Json(r)["detail"].is_string()) << bad;
  }
  EXPECT_EQ(redis_->Command({"EXISTS", "streamfleet:queue:default"})->integer, 0) << "nothing enqueued so far";

  auto r = Post(path, body, "application/json", auth);
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Json(r)["generation_id"], 1);
  EXPECT_EQ(Json(r)["task_id"], "generation-1");
  EXPECT_EQ(Json(r)["scenario_id"], 345);
  EXPECT_EQ(Json(r)["progress"], "/v1/orgs/12/generations/1/progress");
  auto second = Post(path, R"({"instruction": {"content": "again"}})", "application/json", auth);
  EXPECT_EQ(Json(second)["generation_id"], 2);
  EXPECT_EQ(redis_->Command({"GET", "streamfleet:generation_ids"})->str, "2");

  // Every shard of the queue (one stream in standard mode), in task-id order.
  std::vector<testing::QueuedGeneration> queued;
  for (const auto& shard : TaskKeys::FromConfig(*config_).QueueShards("default")) {
    auto part = testing::QueuedGenerations(*redis_, shard);
    queued.insert(queued.end(), part.begin(), part.end());
  }
  std::sort(queued.begin(), queued.end(), [](const auto& a, const auto& b) { return a.task_id < b.task_id; });
  ASSERT_EQ(queued.size(), 2u);
  EXPECT_EQ(queued[0].type, "generation.run");
  EXPECT_EQ(queued[0].task_id, "generation-1");
  ASSERT_EQ(queued[0].payload_error, "");
  // The whole payload the worker will get, round-tripped through the shared parser.
  EXPECT_EQ(nlohmann::json::parse(GenerationRunPayload(queued[0].request)), nlohmann::json::parse(R"(
      {"organization_id": 12, "generation_id": 1, "scenario_id": 345, "model": "m1", "initiator": {"user": 7},
       "instruction": {"content": "Plan Q3", "source": "app", "language": "en"}})"));
  EXPECT_EQ(queued[1].request.source, "api") << "the route's default source";
}

// POST /v1/orgs/{org}/generations read the Idempotency-Key header and then ignored it: a retry of a start
// whose answer was lost (or a 503 whose start had gone through) started a second generation and paid the
// provider twice. The key now answers with its first start's generation and starts nothing; another body
// under it is refused; another organization's same key is its own; a start that took its id and died before
// enqueueing its task is completed by the retry, once.
TEST_F(IngestTest, AStartWithAnIdempotencyKeyStartsOneGeneration) {
  StartIngest({{"INGEST_TOKENS", "12:tok-twelve,13:tok-thirteen"}});
  const std::string body = R"({"instruction": {"content": "Plan Q3", "source": "app"}, "scenario_id": 345})";
  auto start = [&](int64_t org, const std::string& b, const std::string& key) {
    return Post("/v1/orgs/" + std::to_string(org) + "/generations", b, "application/json",
                {"Authorization: Bearer " + std::string(org == 12 ? "tok-twelve" : "tok-thirteen"),
                 "Idempotency-Key: " + key});
  };
  auto queued = [&] {
    std::map<std::string, int> tasks;  // task id -> entries
    for (const auto& shard : TaskKeys::FromConfig(*config_).QueueShards("default")) {
      for (const auto& q : testing::QueuedGenerations(*redis_, shard)) ++tasks[q.task_id];
    }
    return tasks;
  };
  auto first = start(12, body, "order-7");
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(first.headers.find("Idempotent-Replayed"), std::string::npos);
  const int64_t gen = Json(first)["generation_id"];
  for (int i = 0; i < 3; ++i) {
    auto again = start(12, body, "order-7");
    ASSERT_EQ(again.status, 202) << again.body;
    EXPECT_EQ(Json(again), Json(first));
    EXPECT_NE(again.headers.find("Idempotent-Replayed: true"), std::string::npos) << again.headers;
  }
  EXPECT_EQ(queued(), (std::map<std::string, int>{{"generation-" + std::to_string(gen), 1}}));
  auto other = start(12, R"({"instruction": {"content": "Plan Q4"}})", "order-7");
  EXPECT_EQ(other.status, 409) << other.body;
  EXPECT_EQ(Json(other)["error"], "idempotency_key_reused");
  auto theirs = start(13, body, "order-7");
  ASSERT_EQ(theirs.status, 202) << theirs.body;
  EXPECT_NE(Json(theirs)["generation_id"], gen) << "another organization's key is its own";
  EXPECT_EQ(queued().size(), 2u);

  // The first request took id 100 and remembered it, then died before its task was enqueued.
  auto req = ParseGenerationRequest(12, body);
  ASSERT_TRUE(req.ok());
  req->source = "app";
  const std::string died_key = config_->key_prefix + ":org:12:start_idempotency:died";
  ASSERT_TRUE(redis_->Command({"SET", died_key, "100 " + Sha256Hex(GenerationRunPayload(*req))}).ok());
  for (int i = 0; i < 2; ++i) {
    auto retry = start(12, body, "died");
    ASSERT_EQ(retry.status, 202) << retry.body;
    EXPECT_EQ(Json(retry)["generation_id"], 100);
  }
  EXPECT_EQ(queued()["generation-100"], 1) << "enqueued by the first retry, not again by the second";

  // The generation's unique key held by another task (an app's own unique_key through the task API): the start
  // is not answered 202 for a task that is not in.
  auto other_req = ParseGenerationRequest(12, body);
  ASSERT_TRUE(other_req.ok());
  other_req->source = "app";
  ASSERT_TRUE(redis_->Command({"SET", config_->key_prefix + ":org:12:start_idempotency:taken",
                               "200 " + Sha256Hex(GenerationRunPayload(*other_req))}).ok());
  ASSERT_TRUE(redis_->Command({"SET", TaskKeys::FromConfig(*config_).Unique("generation-200"), "apps-own-task"}).ok());
  auto taken = start(12, body, "taken");
  EXPECT_EQ(taken.status, 500) << taken.body;
  EXPECT_EQ(queued().count("generation-200"), 0u);
}

TEST_F(IngestTest, AuthenticationPerOrganization) {
  StartIngest({{"INGEST_TOKENS", "12:tok-twelve,13:tok-thirteen"}});
  const std::string path = "/v1/orgs/12/generations/1/chunks";
  const std::string body = R"({"data": "x"})";
  auto none = Post(path, body);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(Json(none)["error"], "unauthorized");
  EXPECT_EQ(Post(path, body, "application/json", {"Authorization: Bearer nope"}).status, 401);
  EXPECT_EQ(Post(path, body, "application/json", {"Authorization: Bearer tok-thirteen"}).status, 403);
  EXPECT_EQ(Post(path, body, "application/json", {"Authorization: Bearer tok-twelve"}).status, 202);
  EXPECT_EQ(Stream().size(), 1u);
}

TEST_F(IngestTest, BadIdsAreRejectedBeforeTouchingRedis) {
  StartIngest();
  for (const char* p : {"/v1/orgs/abc/generations/1/chunks", "/v1/orgs/0/generations/1/chunks",
                        "/v1/orgs/1/generations/-5/chunks", "/v1/orgs/1*/generations/1/chunks",
                        "/v1/orgs/1/generations/1/chunks?scenario_id=x:y"}) {
    auto r = Post(p, R"({"data": "x"})");
    EXPECT_EQ(r.status, 400) << p;
    EXPECT_EQ(Json(r)["error"], "invalid_id") << p;
  }
  EXPECT_EQ(Post("/v1/orgs/1/generations/1/nope", "{}").status, 404);
  EXPECT_EQ(Get("/v1/orgs/1/generations/1/chunks").status, 405);
  EXPECT_EQ(Post("/v1/orgs/1/generations/1/chunks", "x", "text/plain").status, 415);
  EXPECT_EQ(Post("/v1/orgs/1/generations/1/chunks", "{\"data\": ").status, 400);
  EXPECT_EQ(Post("/v1/orgs/1/generations/1/finish", "{\"total_chunks\": 0}").status, 400);
  EXPECT_EQ(redis_->Command({"DBSIZE"})->integer, 0);
}

TEST_F(IngestTest, LimitsAnswer413AndApplyNothing) {
  StartIngest({{"INGEST_MAX_CHUNK_BYTES", "100"},
               {"INGEST_MAX_BODY_BYTES", "1000"},
               {"INGEST_MAX_GENERATION_BYTES", "150"},
               {"GENERATION_MAX_CHUNKS", "1000"}});
  auto big = Post("/v1/orgs/1/generations/1/chunks", R"({"data": ")" + std::string(101, 'x') + "\"}");
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(Json(big)["error"], "chunk_too_large");
  auto body = Post("/v1/orgs/1/generations/1/chunks", R"({"data": ")" + std::string(2000, 'x') + "\"}");
  EXPECT_EQ(body.status, 413);
  EXPECT_EQ(Post("/v1/orgs/1/generations/1/chunks", R"({"data": "x", "seq": 1000})").status, 400);
  ASSERT_EQ(Post("/v1/orgs/1/generations/2/chunks", R"({"data": ")" + std::string(100, 'a') + "\"}").status, 202);
  auto gen = Post("/v1/orgs/1/generations/2/chunks", R"({"data": ")" + std::string(60, 'b') + "\"}");
  EXPECT_EQ(gen.status, 413);
  EXPECT_EQ(Json(gen)["error"], "generation_too_large");
  EXPECT_EQ(Stream().size(), 1u);
}

TEST_F(IngestTest, SeqsTheScriptAssignsStayBelowGenerationMaxChunks) {
  // Chunks without a seq once took seqs past GENERATION_MAX_CHUNKS: answered 202, then the compactor refused
  // them and dead-lettered their whole entry, the request's valid chunks with it.
  StartIngest({{"GENERATION_MAX_CHUNKS", "10"}});
  std::string twelve, eight;
  for (int i = 0; i < 12; ++i) twelve += "{\"data\":\"c" + std::to_string(i) + " \"}\n";
  for (int i = 0; i < 8; ++i) eight += "{\"data\":\"d" + std::to_string(i) + " \"}\n";
  auto over = Post("/v1/orgs/1/generations/3/chunks", twelve, "application/x-ndjson");
  EXPECT_EQ(over.status, 413) << over.body;
  EXPECT_EQ(Json(over)["error"], "generation_too_large");
  EXPECT_NE(over.body.find("GENERATION_MAX_CHUNKS"), std::string::npos) << over.body;
  EXPECT_TRUE(Stream().empty());
  ASSERT_EQ(Post("/v1/orgs/1/generations/3/chunks", eight, "application/x-ndjson").status, 202);
  ASSERT_EQ(Post("/v1/orgs/1/generations/3/chunks", R"({"data": "d8"})").status, 202);
  ASSERT_EQ(Post("/v1/orgs/1/generations/3/chunks", R"({"data": "d9"})").status, 202);  // seq 9: the last one
  auto single = Post("/v1/orgs/1/generations/3/chunks", R"({"data": "d10"})");
  EXPECT_EQ(single.status, 413) << single.body;
  EXPECT_EQ(Json(single)["error"], "generation_too_large");
  auto chunks = Stream();
  ASSERT_EQ(chunks.size(), 10u);
  for (size_t i = 0; i < chunks.size(); ++i) EXPECT_EQ(chunks[i].seq(), static_cast<int64_t>(i));
  EXPECT_EQ(Post("/v1/orgs/1/generations/3/finish", R"({"total_chunks": 10})").status, 202);
}

TEST_F(IngestTest, ScenarioCannotChangeWithinAGeneration) {
  StartIngest();
  ASSERT_EQ(Post("/v1/orgs/1/generations/9/chunks?scenario_id=4", R"({"data": "a"})").status, 202);
  auto r = Post("/v1/orgs/1/generations/9/chunks?scenario_id=5", R"({"data": "b"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Post("/v1/orgs/1/generations/9/chunks", R"({"data": "c"})").status, 409);
  EXPECT_EQ(Stream().size(), 1u);
}

TEST_F(IngestTest, BackpressureAnswers503WithRetryAfter) {
  StartIngest({{"INGEST_BACKPRESSURE_LAG", "5"}});
  ASSERT_TRUE(EnsureGroup(*redis_, ChunkStream(), "compactor").ok());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(Post("/v1/orgs/1/generations/1/chunks", R"({"data": "x"})").status, 202);
  HttpResponse r;
  testing::WaitUntil([&] {  // the lag is sampled: some posts may still be accepted
    r = Post("/v1/orgs/1/generations/1/chunks", R"({"data": "x"})");
    return r.status == 503;
  });
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Json(r)["error"], "backpressure");
  EXPECT_NE(r.headers.find("Retry-After: 1"), std::string::npos) << r.headers;
  // The group catches up: accepted again.
  auto read = redis_->Command({"XREADGROUP", "GROUP", "compactor", "c", "COUNT", "1000", "STREAMS",
                               ChunkStream(), ">"});
  ASSERT_TRUE(read.ok());
  testing::WaitUntil([&] {
    r = Post("/v1/orgs/1/generations/1/chunks", R"({"data": "x"})");
    return r.status == 202;
  });
  EXPECT_EQ(r.status, 202);
}

TEST_F(IngestTest, RedisDownAnswers503AndAcknowledgesNothingUnwritten) {
  if (server_->cluster()) GTEST_SKIP() << "the cluster's outage is a failover: redis_cluster_test";
  StartIngest();
  ASSERT_EQ(Post("/v1/orgs/1/generations/1/chunks", R"({"data": "before"})").status, 202);
  server_->server()->Kill();
  auto r = Post("/v1/orgs/1/generations/1/chunks", R"({"data": "during"})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Json(r)["error"], "redis_unavailable");
  server_->server()->Start();  // an empty server: "before" was not persisted (no AOF in this test)
  redis_ = RedisClient::Connect(server_->config()).value();
  HttpResponse after;
  testing::WaitUntil([&] {
    after = Post("/v1/orgs/1/generations/1/chunks", R"({"data": "after"})");
    return after.status == 202;
  });
  EXPECT_EQ(after.status, 202);
  auto s = Stream();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].data(), "after") << "the 503'd chunk must not have been written";
  EXPECT_EQ(service_->redis_health().outages(), 1) << "the failed write and the sampler saw one outage";
  EXPECT_TRUE(service_->redis_health().up());
}

// GET /v1/orgs/{org}/generations/{gen}: the compacted row, cache-aside (Redis, then this host's files, then the
// database), invalidated by a re-finalization.
TEST_F(IngestTest, GenerationEndpointServesTheRowThroughTheCacheAndReFinalizationInvalidates) {
  std::string db = testing::TempPath("sf-ingest-gen") + ".db";
  std::string cache_dir = testing::TempPath("sf-ingest-cache");
  auto store = SqlStore::Open("sqlite:" + db).value();
  ASSERT_TRUE(store->Migrate().ok());
  StartIngest({{"INGEST_TOKENS", "12:tok-twelve,13:tok-thirteen"}, {"IR_CACHE_DIR", cache_dir}}, store.get());
  Config cc = *config_;
  cc.database_url = "sqlite:" + db;
  cc.consumer_name = "c";
  prometheus::Registry reg;
  RedisServerClock clock;
  compactor::LoopOptions lo;
  lo.block_ms = 20;
  compactor::CompactorService compactor(cc, clock, *store, reg, lo);
  std::atomic<bool> stop{false};
  const std::vector<std::string> auth = {"Authorization: Bearer tok-twelve"};
  auto post = [&](const std::string& path, const std::string& body) {
    return Post(path, body, "application/json", auth).status;
  };

  EXPECT_EQ(Get("/v1/orgs/12/generations/80").status, 401);
  EXPECT_EQ(Get("/v1/orgs/12/generations/80", {"Authorization: Bearer tok-thirteen"}).status, 403);
  auto missing = Get("/v1/orgs/12/generations/80", auth);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Json(missing)["error"], "not_found");
  EXPECT_EQ(Post("/v1/orgs/12/generations/80", "{}", "application/json", auth).status, 405);
  EXPECT_EQ(Get("/v1/orgs/12/generations/x1", auth).status, 400);

  ASSERT_EQ(post("/v1/orgs/12/generations/80/chunks", R"({"seq": 0, "data": "{\"answer\": "})"), 202);
  ASSERT_EQ(post("/v1/orgs/12/generations/80/chunks", R"({"seq": 1, "data": "42}"})"), 202);
  ASSERT_EQ(post("/v1/orgs/12/generations/80/finish", R"({"total_chunks": 2})"), 202);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(compactor.RunOnce(stop).ok());

  auto r = Get("/v1/orgs/12/generations/80", auth);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.headers.find("X-Cache: origin"), std::string::npos) << r.headers;
  auto j = Json(r);
  EXPECT_EQ(j["llm_response"]["answer"], 42);
  EXPECT_EQ(j["chunk_count"], 2);
  EXPECT_EQ(j["metadata"]["chunk_count"], 2);
  EXPECT_TRUE(j["compacted_at"].is_string());
  r = Get("/v1/orgs/12/generations/80", auth);
  EXPECT_NE(r.headers.find("X-Cache: redis"), std::string::npos) << r.headers;
  EXPECT_EQ(Json(r), j);
  // The same generation id asked for by another organization is not found (and not served from the cache).
  EXPECT_EQ(Get("/v1/orgs/13/generations/80", {"Authorization: Bearer tok-thirteen"}).status, 404);
  {
    // The key is 32 bits of a hash (ir_cache:generation_{hash8}): another organization's generation whose key
    // is the same (by chance, or searched for: about 2^32 hashes) was served as this one. Its entry, planted
    // under this key, is never served: the row is, and the entry is left to its generation.
    const std::string key = "ir_cache:generation_" + Sha256Hex("12:80").substr(0, 8);
    ASSERT_TRUE(redis_->Command({"EXISTS", key})->integer == 1) << key;
    GenerationRow other;
    other.id = 4242;
    other.organization_id = 13;
    other.llm_response = R"({"secret": "of organization 13"})";
    other.metadata = R"({"organization_id": 12, "generation_id": 80})";
    other.chunk_count = 7;
    ASSERT_TRUE(redis_->Command({"SET", key, GenerationCacheValue(other)}).ok());
    auto collided = Get("/v1/orgs/12/generations/80", auth);
    ASSERT_EQ(collided.status, 200);
    EXPECT_EQ(Json(collided), j) << collided.body;
    EXPECT_EQ(collided.body.find("secret"), std::string::npos);
    EXPECT_NE(collided.headers.find("X-Cache: origin"), std::string::npos) << collided.headers;
    EXPECT_TRUE(GenerationCacheValueIs(GenerationCacheValue(other), 13, 4242));
    EXPECT_FALSE(GenerationCacheValueIs(GenerationCacheValue(other), 12, 80)) << "the ids inside metadata are not the row's";
    EXPECT_FALSE(GenerationCacheValueIs(GenerationCacheValue(other), 1, 4242));
    EXPECT_FALSE(GenerationCacheValueIs(GenerationCacheValue(other), 13, 424)) << "a prefix of the id";
    ASSERT_TRUE(redis_->Command({"DEL", key}).ok());
  }

  // A late chunk and a new total re-finalize the generation: the next GET sees the new row.
  ASSERT_EQ(post("/v1/orgs/12/generations/80/chunks", R"({"seq": 2, "data": " "})"), 202);
  ASSERT_EQ(post("/v1/orgs/12/generations/80/finish", R"({"total_chunks": 3})"), 202);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(compactor.RunOnce(stop).ok());
  ASSERT_EQ((*store->GetGeneration(80))->chunk_count, 3);
  r = Get("/v1/orgs/12/generations/80", auth);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("X-Cache: origin"), std::string::npos) << r.headers;
  EXPECT_EQ(Json(r)["chunk_count"], 3);

  // Without a database the route says so instead of failing obscurely.
  service_->Stop();
  StartIngest();
  EXPECT_EQ(Get("/v1/orgs/12/generations/80").status, 503);
  std::remove(db.c_str());
  std::filesystem::remove_all(cache_dir);
}

// GET .../generations/{gen} answers a row as one write that stays in memory until the client's socket has
// taken all of it, and nothing bounded what answers nobody reads held (200 connections of one organization
// asking for a 64 MiB row: 12.8 GB). With INGEST_MAX_QUEUED_ANSWER_BYTES at 20 MiB and rows of 8 MiB (loopback's
// socket buffers take about 4 MiB of one), clients that read nothing: an organization's second row is past its
// half (429), a third organization's row past the whole (503); other requests are served meanwhile, and once
// those clients close, the row is served again.
TEST_F(IngestTest, AnswersClientsDoNotReadAreBoundedAndOtherRequestsServed) {
  std::string db = testing::TempPath("sf-ingest-unread") + ".db";
  auto store = SqlStore::Open("sqlite:" + db).value();
  ASSERT_TRUE(store->Migrate().ok());
  const std::string text(8 << 20, 'x');
  for (int64_t org : {12, 13, 14}) {
    GenerationWrite w;
    w.id = 900 + org;
    w.organization_id = org;
    w.llm_response = "\"" + text + "\"";
    w.chunk_count = 1;
    w.compacted_at = "2026-12-01T00:00:00.000Z";
    w.finalize_id = "unread-" + std::to_string(org);
    ASSERT_TRUE(store->UpsertGeneration(w).ok());
  }
  StartIngest({{"INGEST_MAX_QUEUED_ANSWER_BYTES", std::to_string(20 << 20)}, {"IR_CACHE_TTL", "0"}}, store.get());
  auto row = [](int64_t org) { return "/v1/orgs/" + std::to_string(org) + "/generations/" + std::to_string(900 + org); };
  // Asks for the organization's row and reads the answer's head only: the rest waits in the server.
  auto ask = [&](testing::RawConnection& c, int64_t org) {
    EXPECT_TRUE(c.Send("GET " + row(org) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    return c.ReadUntil([](const std::string& got) { return got.find("\r\n\r\n") != std::string::npos; }, 10000);
  };
  auto first = std::make_unique<testing::RawConnection>(service_->port());
  auto other = std::make_unique<testing::RawConnection>(service_->port());
  testing::RawConnection second(service_->port()), third(service_->port());
  ASSERT_EQ(testing::StatusOf(ask(*first, 12)), 200);
  std::string refused = ask(second, 12);
  EXPECT_EQ(testing::StatusOf(refused), 429) << refused.substr(0, 400);
  EXPECT_NE(refused.find("Retry-After: 5"), std::string::npos) << refused.substr(0, 400);
  ASSERT_EQ(testing::StatusOf(ask(*other, 13)), 200) << "another organization's row, within the whole";
  std::string full = testing::RawExchange(service_->port(), "GET " + row(14) + " HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(testing::StatusOf(full), 503) << full.substr(0, 400);
  EXPECT_NE(full.find("answer_budget_exhausted"), std::string::npos) << full.substr(0, 400);
  EXPECT_NE(full.find("Retry-After: 5"), std::string::npos) << full.substr(0, 400);
  EXPECT_EQ(Post("/v1/orgs/14/generations/55/chunks", R"({"data": "still served"})").status, 202);
  EXPECT_EQ(Get("/v1/orgs/14/generations/55/progress").status, 200);

  first.reset();  // the clients leave: what their answers held is released once the server sees them gone
  other.reset();
  HttpResponse again;
  EXPECT_TRUE(testing::WaitUntil([&] {
    again = Get(row(14));
    return again.status == 200;
  }, 10000)) << again.status << " " << again.body.substr(0, 400);
  EXPECT_GT(again.body.size(), text.size());
  std::remove(db.c_str());
}

// Found by fuzz/fuzz_route: the 400 body quotes the bad id, and a percent-encoded byte that is not UTF-8
// made serializing it throw, so the client got a 500 "internal" instead of a 400 "invalid_id".
TEST_F(IngestTest, BadIdThatIsNotUtf8IsA400WithJsonBody) {
  StartIngest();
  for (const char* p : {"/v1/orgs/%8C/generations/1/chunks", "/v1/orgs/1/generations/%FF%FE/progress"}) {
    auto r = std::string_view(p).ends_with("chunks") ? Post(p, R"({"data": "x"})") : Get(p);
    EXPECT_EQ(r.status, 400) << p;
    auto j = Json(r);
    EXPECT_EQ(j["error"], "invalid_id") << p;
    EXPECT_NE(j["detail"].get<std::string>().find("\xEF\xBF\xBD"), std::string::npos) << j.dump();
  }
  auto unknown = Get("/v1/%FF");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(Json(unknown)["error"], "no_route") << "not a missing task or generation: a route ingest lacks";
}

}  // namespace
}  // namespace streamfleet::ingest
