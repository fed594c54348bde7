// Crash-proof and unambiguous chunk input (the tenant-isolation issue, parts 2-4): deep JSON, duplicate
// keys, a seq resent with other data, a smaller second total, retries that must not count twice, and
// Idempotency-Key under a stalled Redis. Real redis-server, real ingest over HTTP.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "ingest/ingest_service.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/v1/chunk.pb.h"
#include "support/http_client.h"
#include "support/map_env.h"
#include "support/raw_http.h"
#include "streamfleet/testing/chunk_envelope.h"
#include "streamfleet/testing/redis_server.h"
#include "support/redis_suite.h"
#include "support/wait.h"

namespace streamfleet::ingest {
namespace {

using testing::HttpRequest;
using testing::HttpResponse;

std::string Deep(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

class IngestInputTest : public testing::RedisSuite<> {
 protected:
  void TearDown() override {
    if (service_) service_->Stop();
  }
  void StartIngest(std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env = server_->env();
    env.insert({{"INGEST_LISTEN", "127.0.0.1:0"}, {"CHUNK_STREAMS", "1"}, {"INGEST_THREADS", "4"}});
    for (auto& [k, v] : extra) env[k] = v;
    auto c = LoadConfig(testing::MapEnv(env), "127.0.0.1:0");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    config_ = std::make_unique<Config>(*c);
    service_ = std::make_unique<IngestService>(*config_, registry_, nullptr);
    ASSERT_TRUE(service_->Start().ok());
  }
  HttpResponse Post(const std::string& path, const std::string& body, const std::string& type = "application/json",
                    std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.method = "POST";
    r.url = "http://127.0.0.1:" + std::to_string(service_->port()) + path;
    r.body = body;
    headers.push_back("Content-Type: " + type);
    r.headers = std::move(headers);
    return testing::Send(r);
  }
  std::vector<v1::ChunkEnvelope> Stream() {
    KeySchema keys = KeySchema::FromConfig(*config_);
    std::vector<v1::ChunkEnvelope> out;
    for (int s = 0; s < keys.chunk_streams(); ++s) {
      int undecodable = 0;
      for (auto& env : testing::ChunksInStream(*redis_, keys.ChunkStream(s), &undecodable)) out.push_back(env);
      EXPECT_EQ(undecodable, 0);
    }
    return out;
  }
  static std::string Error(const HttpResponse& r) {
    return nlohmann::json::parse(r.body, nullptr, false).value("error", "");
  }
  bool Alive() { return Post("/v1/orgs/1/generations/999/chunks", R"({"data": "still here"})").status == 202; }

  std::unique_ptr<Config> config_;
  prometheus::Registry registry_;
  std::unique_ptr<IngestService> service_;
};

// An initiator nested ~70,000 levels deep killed ingest with SIGSEGV; every JSON entry point now answers 400.
TEST_F(IngestInputTest, DeeplyNestedJsonIsA400OnEveryRoute) {
  StartIngest();
  auto start = Post("/v1/orgs/12/generations",
                    R"({"instruction": {"content": "x"}, "initiator": {"a": )" + Deep(70000) + "}}");
  EXPECT_EQ(start.status, 400) << start.body;
  EXPECT_NE(start.body.find("deeper than"), std::string::npos) << start.body;
  EXPECT_EQ(Post("/v1/orgs/12/generations/1/chunks", R"({"data": "x", "meta": )" + Deep(100000) + "}").status, 400);
  // (a finish body is at most 64 KiB: 10,000 levels fit)
  EXPECT_EQ(Post("/v1/orgs/12/generations/1/finish", R"({"total_chunks": 1, "x": )" + Deep(10000) + "}").status, 400);
  auto nd = Post("/v1/orgs/12/generations/1/chunks", "{\"data\": \"ok\"}\n{\"data\": " + Deep(100000) + "}\n",
                 "application/x-ndjson");
  EXPECT_EQ(nd.status, 400) << nd.body;
  EXPECT_EQ(nlohmann::json::parse(nd.body)["accepted"], 1) << "the line before the bad one is kept";
  auto sse = Post("/v1/orgs/12/generations/2/chunks", "data: " + Deep(100000) + "\n\n", "text/event-stream");
  EXPECT_EQ(sse.status, 400) << sse.body;
  EXPECT_TRUE(Alive());
}

TEST_F(IngestInputTest, DuplicateJsonKeysAreRefused) {
  StartIngest();
  auto r = Post("/v1/orgs/12/generations/3/chunks", R"({"seq": 0, "seq": 5, "data": "x"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("duplicate key"), std::string::npos) << r.body;
  EXPECT_EQ(Post("/v1/orgs/12/generations/3/finish", R"({"total_chunks": 1, "total_chunks": 2})").status, 400);
  EXPECT_TRUE(Stream().empty());
}

// A client seq is a promise: the same seq with the same data is a retry (accepted, appended once), with
// other data it is ambiguous and refused.
TEST_F(IngestInputTest, SameSeqWithOtherDataIsAConflictAndWithTheSameDataAnIdempotentRetry) {
  StartIngest();
  ASSERT_EQ(Post("/v1/orgs/12/generations/4/chunks", R"({"seq": 0, "data": "one"})").status, 202);
  auto retry = Post("/v1/orgs/12/generations/4/chunks", R"({"seq": 0, "data": "one"})");
  EXPECT_EQ(retry.status, 202) << retry.body;
  auto other = Post("/v1/orgs/12/generations/4/chunks", R"({"seq": 0, "data": "two"})");
  EXPECT_EQ(other.status, 409) << other.body;
  EXPECT_EQ(Error(other), "seq_conflict");
  EXPECT_NE(other.body.find("seq 0 was already received"), std::string::npos) << other.body;
  auto nd = Post("/v1/orgs/12/generations/4/chunks", "{\"seq\": 1, \"data\": \"a\"}\n{\"seq\": 1, \"data\": \"b\"}\n",
                 "application/x-ndjson");
  EXPECT_EQ(nd.status, 409) << "the same seq twice in one batch with different data";
  ASSERT_EQ(Stream().size(), 1u);
  EXPECT_EQ(Stream()[0].data(), "one");
}

// 63 x 1 MiB plus one resend made a 64 MiB generation impossible to finish: a retry counted twice.
TEST_F(IngestInputTest, OnlyNewDataCountsTowardTheGenerationByteLimit) {
  StartIngest({{"INGEST_MAX_GENERATION_BYTES", "1000"}});
  std::string six(600, 'x'), three(300, 'y');
  ASSERT_EQ(Post("/v1/orgs/12/generations/5/chunks", nlohmann::json{{"seq", 0}, {"data", six}}.dump()).status, 202);
  ASSERT_EQ(Post("/v1/orgs/12/generations/5/chunks", nlohmann::json{{"seq", 0}, {"data", six}}.dump()).status, 202);
  EXPECT_EQ(Post("/v1/orgs/12/generations/5/chunks", nlohmann::json{{"seq", 1}, {"data", three}}.dump()).status, 202);
  auto over = Post("/v1/orgs/12/generations/5/chunks", nlohmann::json{{"seq", 2}, {"data", three}}.dump());
  EXPECT_EQ(over.status, 413) << over.body;
  auto ctl = redis_->Command({"HGET", KeySchema::FromConfig(*config_).ControlKey({12, 0, 5}), "ingested_bytes"});
  EXPECT_EQ(ctl->AsInt(), 900);
}

TEST_F(IngestInputTest, ASecondFinishWithASmallerTotalIsRefused) {
  StartIngest();
  ASSERT_EQ(Post("/v1/orgs/12/generations/6/finish", R"({"total_chunks": 3})").status, 202);
  EXPECT_EQ(Post("/v1/orgs/12/generations/6/finish", R"({"total_chunks": 3})").status, 202) << "a retry";
  auto smaller = Post("/v1/orgs/12/generations/6/finish", R"({"total_chunks": 2})");
  EXPECT_EQ(smaller.status, 409);
  EXPECT_EQ(Error(smaller), "total_conflict");
  EXPECT_EQ(Post("/v1/orgs/12/generations/6/finish", R"({"total_chunks": 4})").status, 202) << "it grew: allowed";
  auto s = Stream();
  ASSERT_EQ(s.size(), 2u) << "the retried finish is not appended again";
  EXPECT_EQ(s[0].total_chunks(), 3);
  EXPECT_EQ(s[1].total_chunks(), 4);
}

// A finish below the seqs already handed out: the chunks past its total were assembled anyway, and each later
// batch of the generation queued its finalization again (its first `total` bits stay set).
TEST_F(IngestInputTest, AFinishBelowTheChunksAlreadyGivenSeqsIsRefused) {
  StartIngest();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Post("/v1/orgs/12/generations/7/chunks", R"({"data": "x"})").status, 202);
  }
  auto below = Post("/v1/orgs/12/generations/7/finish", R"({"total_chunks": 2})");
  EXPECT_EQ(below.status, 409) << below.body;
  EXPECT_EQ(Error(below), "total_conflict");
  EXPECT_NE(below.body.find("3 chunks already given seqs"), std::string::npos) << below.body;
  EXPECT_EQ(Post("/v1/orgs/12/generations/7/finish", R"({"total_chunks": 3})").status, 202);
  // Its retry after more chunks were given seqs is still a retry (skipped), not a conflict.
  ASSERT_EQ(Post("/v1/orgs/12/generations/7/chunks", R"({"data": "late"})").status, 202);
  EXPECT_EQ(Post("/v1/orgs/12/generations/7/finish", R"({"total_chunks": 3})").status, 202);
}

TEST_F(IngestInputTest, IdempotencyKeyReplaysTheFirstAnswerForEveryBodyType) {
  StartIngest();
  const std::vector<std::string> key = {"Idempotency-Key: req-1"};
  auto a = Post("/v1/orgs/12/generations/7/chunks", R"({"data": "one"})", "application/json", key);
  auto b = Post("/v1/orgs/12/generations/7/chunks", R"({"data": "one"})", "application/json", key);
  ASSERT_EQ(a.status, 202);
  ASSERT_EQ(b.status, 202);
  EXPECT_EQ(a.body, b.body);
  ASSERT_EQ(Post("/v1/orgs/12/generations/7/chunks", R"({"data": "two"})").status, 202);
  const std::string nd = "{\"data\": \"three\"}\n{\"data\": \"four\"}\n";
  const std::vector<std::string> key2 = {"Idempotency-Key: req-2"};
  auto c = Post("/v1/orgs/12/generations/7/chunks", nd, "application/x-ndjson", key2);
  auto d = Post("/v1/orgs/12/generations/7/chunks", nd, "application/x-ndjson", key2);
  EXPECT_EQ(c.body, d.body);
  const std::string sse = "data: {\"choices\":[{\"delta\":{\"content\":\"five\"}}]}\n\ndata: [DONE]\n\n";
  const std::vector<std::string> key3 = {"Idempotency-Key: req-3"};
  auto e = Post("/v1/orgs/12/generations/7/chunks", sse, "text/event-stream", key3);
  auto f = Post("/v1/orgs/12/generations/7/chunks", sse, "text/event-stream", key3);
  EXPECT_EQ(e.status, 202) << e.body;
  EXPECT_EQ(e.body, f.body);
  std::vector<std::string> data;
  int finishes = 0;
  for (const auto& env : Stream()) {
    if (env.kind() == v1::ChunkEnvelope::FINISH) {
      ++finishes;
    } else {
      data.push_back(env.data());
    }
  }
  EXPECT_EQ(data, (std::vector<std::string>{"one", "two", "three", "four", "five"}));
  EXPECT_EQ(finishes, 1);
  for (const char* bad : {"Idempotency-Key: has space", "Idempotency-Key: k#1"}) {
    EXPECT_EQ(Post("/v1/orgs/12/generations/7/chunks", R"({"data": "x"})", "application/json", {bad}).status, 400)
        << bad;
  }
  auto reused = Post("/v1/orgs/12/generations/7/chunks", R"({"data": "not one"})", "application/json", key);
  EXPECT_EQ(reused.status, 409) << reused.body;
  EXPECT_EQ(Error(reused), "idempotency_key_reused");
}

// Found in review: an upload cut off mid-batch flushed the lines before the cut under the batch's key, and
// the retry with the whole body was answered from that key without appending the rest.
TEST_F(IngestInputTest, ARetriedUploadAfterAPartialOneAppendsExactlyTheMissingLines) {
  StartIngest();
  const std::vector<std::string> key = {"Idempotency-Key: upload-1"};
  auto cut = Post("/v1/orgs/12/generations/9/chunks", "{\"data\": \"a\"}\n{\"data\": \"b\"}\n{\"data\": \n",
                  "application/x-ndjson", key);
  ASSERT_EQ(cut.status, 400) << cut.body;
  EXPECT_EQ(nlohmann::json::parse(cut.body)["accepted"], 2);
  const std::string whole = "{\"data\": \"a\"}\n{\"data\": \"b\"}\n{\"data\": \"c\"}\n";
  auto retry = Post("/v1/orgs/12/generations/9/chunks", whole, "application/x-ndjson", key);
  ASSERT_EQ(retry.status, 202) << retry.body;
  EXPECT_EQ(nlohmann::json::parse(retry.body)["accepted"], 3);
  EXPECT_EQ(nlohmann::json::parse(retry.body)["last_seq"], 2);
  auto again = Post("/v1/orgs/12/generations/9/chunks", whole, "application/x-ndjson", key);
  EXPECT_EQ(again.body, retry.body);
  std::vector<std::string> data;
  for (const auto& env : Stream()) data.push_back(env.data() + "@" + std::to_string(env.seq()));
  EXPECT_EQ(data, (std::vector<std::string>{"a@0", "b@1", "c@2"}));
}

// The kubelet's probes while every worker thread holds a streamed upload: they are answered on the HTTP loop
// at once. On the pool they waited behind the uploads, timed out, and the busiest pod was restarted.
TEST_F(IngestInputTest, ProbesAreAnsweredWhileEveryWorkerThreadHoldsAStreamedUpload) {
  StartIngest({{"INGEST_THREADS", "1"}});
  testing::RawConnection upload(service_->port());
  ASSERT_TRUE(upload.Send("POST /v1/orgs/12/generations/31/chunks HTTP/1.1\r\nHost: x\r\n"
                          "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "e\r\n{\"data\": \"a\"}\n\r\n"));
  // The one thread holds the upload (its lines are written in batches, so nothing shows in Redis yet): a
  // request that needs a thread waits.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string progress = "GET /v1/orgs/12/generations/31/progress HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(testing::StatusOf(testing::RawExchange(service_->port(), progress, 300)), 0) << "the pool is held";
  for (const std::string probe : {"/healthz", "/readyz"}) {
    const std::string answer =
        testing::RawExchange(service_->port(), "GET " + probe + " HTTP/1.1\r\nHost: x\r\n\r\n", 2000);
    EXPECT_EQ(testing::StatusOf(answer), 200) << probe << ": " << answer;
  }
  ASSERT_TRUE(upload.Send("e\r\n{\"data\": \"b\"}\n\r\n0\r\n\r\n"));
  EXPECT_EQ(testing::StatusOf(upload.ReadResponse(3000)), 202);
  EXPECT_EQ(Stream().size(), 2u);
}

// The defect as found: with Redis stalled past the command timeout, a chunk without seq got 503 although it
// landed when Redis resumed, and the retry appended it again ("one two two").
TEST_F(IngestInputTest, RetriesWithAnIdempotencyKeyAreAppliedOnceAcrossAStalledRedis) {
  if (server_->cluster()) GTEST_SKIP() << "stalls one redis-server process";
  StartIngest({{"REDIS_TIMEOUT", "500ms"}});
  const std::vector<std::string> k1 = {"Idempotency-Key: one"}, k2 = {"Idempotency-Key: two"};
  ASSERT_EQ(Post("/v1/orgs/12/generations/8/chunks", R"({"data": "one "})", "application/json", k1).status, 202);
  server_->server()->Pause();
  auto stalled = Post("/v1/orgs/12/generations/8/chunks", R"({"data": "two"})", "application/json", k2);
  server_->server()->Resume();
  EXPECT_EQ(stalled.status, 503) << stalled.body;
  HttpResponse retry;
  testing::WaitUntil([&] {
    retry = Post("/v1/orgs/12/generations/8/chunks", R"({"data": "two"})", "application/json", k2);
    return retry.status == 202;
  });
  ASSERT_EQ(retry.status, 202) << retry.body;
  EXPECT_EQ(nlohmann::json::parse(retry.body)["last_seq"], 1);
  ASSERT_EQ(Post("/v1/orgs/12/generations/8/chunks", R"({"data": "one "})", "application/json", k1).status, 202);
  std::string text;
  for (const auto& env : Stream()) text += env.data();
  EXPECT_EQ(text, "one two");
}

}  // namespace
}  // namespace streamfleet::ingest
