// The built-in task types that talk to the outside: webhook (against a local HTTP server), events routed to
// a webhook, generation_chunks.purge (also archiving to s3rver) and hash.sync (on SQLite and PostgreSQL), each
// against a real redis-server.
#include <gtest/gtest.h>

#include <cstdlib>

#include <deque>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "queue-worker/event_forwarder.h"
#include "queue-worker/store_tasks.h"
#include "streamfleet/base/time.h"
#include "queue-worker/push_handlers.h"
#include "queue-worker/webhook.h"
#include "streamfleet/http/http_server.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/base/text.h"
#include "streamfleet/v1/event.pb.h"
#include "streamfleet/v1/task.pb.h"
#include "streamfleet/artifacts/chunk_archive.h"
#include "support/map_env.h"
#include "support/s3_server.h"
#include "support/sql_database.h"
#include "worker/worker_fixture.h"

namespace streamfleet::worker {
namespace {

// A webhook receiver: answers each path with its scripted statuses in turn (the last one repeats) and
// records every request.
class FakeReceiver {
 public:
  struct Request {
    std::string path, body, content_type, custom, idempotency_key, timestamp, signature;
  };
  FakeReceiver() {
    server_ = HttpServer::Start("127.0.0.1:0", 4, [this](HttpExchange& x) { Serve(x); }).value();
  }
  ~FakeReceiver() { server_->Stop(); }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  void Script(const std::string& path, std::deque<int> statuses) {
    std::lock_guard<std::mutex> l(mu_);
    script_[path] = std::move(statuses);
  }
  std::vector<Request> Received() {
    std::lock_guard<std::mutex> l(mu_);
    return received_;
  }

 private:
  void Serve(HttpExchange& x) {
    auto body = x.ReadBody(1 << 20);
    Request r{x.path(), body.ok() ? *body : "", x.Header("Content-Type").value_or(""),
              x.Header("X-Custom").value_or(""), x.Header("Idempotency-Key").value_or(""),
              x.Header("X-Streamfleet-Timestamp").value_or(""), x.Header("X-Streamfleet-Signature").value_or("")};
    int status = 200;
    {
      std::lock_guard<std::mutex> l(mu_);
      received_.push_back(r);
      auto& q = script_[r.path];
      if (!q.empty()) {
        status = q.front();
        if (q.size() > 1) q.pop_front();
      }
    }
    if (r.path == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (r.path == "/noisy") {
      // 10 KiB of an answer no one should copy whole into an error: control bytes, an escape sequence,
      // invalid UTF-8.
      static const char kNoise[] = "oops\r\n\x1b[31m\x00\x07\xff\xfe\xc2\x85 ";
      std::string body;
      while (body.size() < 10 * 1024) body.append(kNoise, sizeof kNoise - 1);
      x.Respond(status, "text/plain", body);
      return;
    }
    x.RespondJson(status, R"({"status":)" + std::to_string(status) + "}");
  }

  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  std::map<std::string, std::deque<int>> script_;
  std::vector<Request> received_;
};

class WebhookTest : public WorkerTest {
 protected:
  void SetUp() override {
    WorkerTest::SetUp();
    RegisterWebhookHandler(handlers_);
  }
  // The receiver listens on 127.0.0.1, which webhooks are refused by default: the tests open loopback.
  WorkerService& Make(std::map<std::string, std::string> extra = {}) {
    extra.insert({"WEBHOOK_ALLOW_NETS", "127.0.0.0/8"});
    return WorkerTest::Make(std::move(extra));
  }
  std::string EnqueueWebhook(const std::string& url, nlohmann::json extra = nlohmann::json::object()) {
    extra["url"] = url;
    return Enqueue("webhook", extra.dump());
  }
  // Moves due retries and runs them, `rounds` times, each a retry delay (cap 10s) later.
  void RunRetries(WorkerService& w, int rounds) {
    for (int i = 0; i < rounds; ++i) {
      clock_.Advance(20'000);
      ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
      Drain(w);
    }
  }
  FakeReceiver receiver_;
};

TEST_F(WebhookTest, PostsTheBodyWithHeadersAndAnIdempotencyKey) {
  auto& w = Make();
  std::string id = EnqueueWebhook(receiver_.Url("/ok"), {{"body", {{"a", 1}}}, {"headers", {{"X-Custom", "v"}}}});
  EXPECT_EQ(Drain(w), 1);
  EXPECT_EQ(StatusField(id, "state"), "succeeded");
  EXPECT_EQ(StatusField(id, "result"), "HTTP 200");
  auto got = receiver_.Received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/ok");
  EXPECT_EQ(nlohmann::json::parse(got[0].body), nlohmann::json({{"a", 1}}));
  EXPECT_EQ(got[0].content_type, "application/json");
  EXPECT_EQ(got[0].custom, "v");
  EXPECT_EQ(got[0].idempotency_key, id);
}

TEST_F(WebhookTest, ClientErrorIsDeadLetteredWithoutRetries) {
  receiver_.Script("/bad", {400});
  auto& w = Make();
  std::string id = EnqueueWebhook(receiver_.Url("/bad"));
  Drain(w);
  RunRetries(w, 2);
  EXPECT_EQ(StatusField(id, "state"), "dead");
  EXPECT_EQ(receiver_.Received().size(), 1u) << "a 4xx is not repeated";
  auto dlq = DeadLetters();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_NE(dlq[0].Field("reason")->find("HTTP 400"), std::string::npos) << *dlq[0].Field("reason");

  std::string ftp = EnqueueWebhook("ftp://127.0.0.1/x");
  Drain(w);
  EXPECT_EQ(StatusField(ftp, "state"), "dead") << "only http and https";
  std::string smuggle = EnqueueWebhook(receiver_.Url("/ok"), {{"headers", {{"X-A", "1\r\nX-B: 2"}}}});
  Drain(w);
  EXPECT_EQ(StatusField(smuggle, "state"), "dead") << "no header injection";
}

TEST_F(WebhookTest, ServerErrorsAndTooManyRequestsAreRetriedWithBackoff) {
  receiver_.Script("/flaky", {503, 429, 200});
  auto& w = Make();
  std::string id = EnqueueWebhook(receiver_.Url("/flaky"));
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "retry_scheduled");
  EXPECT_NE(StatusField(id, "error").find("HTTP 503"), std::string::npos) << StatusField(id, "error");
  RunRetries(w, 1);
  EXPECT_NE(StatusField(id, "error").find("HTTP 429"), std::string::npos) << StatusField(id, "error");
  RunRetries(w, 1);
  EXPECT_EQ(StatusField(id, "state"), "succeeded");
  EXPECT_EQ(StatusField(id, "attempts"), "3");
  EXPECT_EQ(receiver_.Received().size(), 3u);
}

TEST_F(WebhookTest, ConnectErrorsAndTimeoutsAreRetried) {
  auto& w = Make();
  std::string refused = EnqueueWebhook("http://127.0.0.1:" + std::to_string(testing::FreePort()) + "/x");
  std::string slow = EnqueueWebhook(receiver_.Url("/slow"), {{"timeout_ms", 100}});
  Drain(w);
  EXPECT_EQ(StatusField(refused, "state"), "retry_scheduled");
  EXPECT_EQ(StatusField(slow, "state"), "retry_scheduled");
  EXPECT_NE(StatusField(slow, "error").find("timed out"), std::string::npos) << StatusField(slow, "error");
}

TEST_F(WebhookTest, LoopbackIsRefusedUnlessAllowed) {
  auto& closed = WorkerTest::Make();  // no WEBHOOK_ALLOW_NETS
  const std::string url = receiver_.Url("/ok");
  std::string by_ip = EnqueueWebhook(url);
  // The check is on the address connected to, not on the URL's text: a name resolving to loopback is refused.
  std::string by_name = EnqueueWebhook("http://localhost:" + url.substr(url.rfind(':') + 1));
  Drain(closed);
  EXPECT_TRUE(receiver_.Received().empty());
  EXPECT_EQ(DeadLetters().size(), 2u) << "dead-lettered at once, not retried";
  for (const std::string& id : {by_ip, by_name}) {
    EXPECT_EQ(StatusField(id, "state"), "dead");
    EXPECT_NE(StatusField(id, "error").find("(loopback), refused unless WEBHOOK_ALLOW_NETS"), std::string::npos)
        << StatusField(id, "error");
  }
  EXPECT_NE(StatusField(by_ip, "error").find("127.0.0.1 is in 127.0.0.0/8"), std::string::npos);

  auto& open = Make();  // WEBHOOK_ALLOW_NETS=127.0.0.0/8
  std::string allowed = EnqueueWebhook(url);
  Drain(open);
  EXPECT_EQ(StatusField(allowed, "state"), "succeeded") << StatusField(allowed, "error");
  EXPECT_EQ(receiver_.Received().size(), 1u);
}

TEST_F(WebhookTest, CloudMetadataIsRefusedEvenWhenWideNetsAreAllowed) {
  // A net wider than the metadata address does not open it: only naming 169.254.169.254 itself would.
  auto& w = Make({{"WEBHOOK_ALLOW_NETS", "0.0.0.0/0,169.254.0.0/16"}});
  std::string id = EnqueueWebhook("http://169.254.169.254/latest/meta-data/iam/", {{"timeout_ms", 300}});
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "dead") << StatusField(id, "error");
  EXPECT_NE(StatusField(id, "error").find("169.254.169.254 is in 169.254.169.254/32 (cloud metadata)"),
            std::string::npos)
      << StatusField(id, "error");
  EXPECT_EQ(DeadLetters().size(), 1u);
}

// A proxy from the worker's environment (http_proxy, common in corporate clusters) is not used: the
// destination check saw only the proxy's address, and the proxy fetched a refused destination for the worker.
TEST_F(WebhookTest, AProxyFromTheEnvironmentDoesNotBypassTheDestinationCheck) {
  auto& w = Make();  // WEBHOOK_ALLOW_NETS=127.0.0.0/8: the "proxy" (the receiver) is an allowed address
  const std::string url = receiver_.Url("/");
  struct Env {
    explicit Env(const std::string& proxy) {
      setenv("http_proxy", proxy.c_str(), 1);
      setenv("HTTP_PROXY", proxy.c_str(), 1);
    }
    ~Env() {
      unsetenv("http_proxy");
      unsetenv("HTTP_PROXY");
    }
  } env(url);
  std::string id = EnqueueWebhook("http://169.254.169.254/latest/meta-data/", {{"timeout_ms", 300}});
  Drain(w);
  EXPECT_TRUE(receiver_.Received().empty()) << "the proxy was asked to fetch it";
  EXPECT_EQ(StatusField(id, "state"), "dead") << StatusField(id, "error");
  EXPECT_NE(StatusField(id, "error").find("cloud metadata"), std::string::npos) << StatusField(id, "error");
}

TEST_F(WebhookTest, ADenyRuleBeatsAnAllowRule) {
  // Deny narrower than allow, and deny wider than allow: the deny rule wins both times.
  const std::map<std::string, std::string> configs[] = {
      {{"WEBHOOK_ALLOW_NETS", "127.0.0.0/8"}, {"WEBHOOK_DENY_NETS", "127.0.0.1/32"}},
      {{"WEBHOOK_ALLOW_NETS", "127.0.0.1"}, {"WEBHOOK_DENY_NETS", "10.0.0.0/8, 127.0.0.0/8"}},
  };
  for (const auto& config : configs) {
    auto& w = Make(config);
    std::string id = EnqueueWebhook(receiver_.Url("/ok"));
    Drain(w);
    EXPECT_EQ(StatusField(id, "state"), "dead");
    EXPECT_NE(StatusField(id, "error").find("127.0.0.1 is in WEBHOOK_DENY_NETS net 127.0.0."), std::string::npos)
        << StatusField(id, "error");
  }
  EXPECT_TRUE(receiver_.Received().empty());
}

TEST_F(WebhookTest, PayloadTimeoutIsCappedAtTheMaximum) {
  auto& w = Make({{"WEBHOOK_MAX_TIMEOUT", "150ms"}});
  std::string id = EnqueueWebhook(receiver_.Url("/slow"), {{"timeout_ms", 600'000}});  // /slow takes 500ms
  std::string huge = EnqueueWebhook(receiver_.Url("/slow"), {{"timeout_ms", 18446744073709551615ULL}});
  Drain(w);
  for (const std::string& t : {id, huge}) {
    EXPECT_EQ(StatusField(t, "state"), "retry_scheduled");
    EXPECT_NE(StatusField(t, "error").find("timed out after 150ms"), std::string::npos) << StatusField(t, "error");
  }
}

TEST_F(WebhookTest, ErrorQuotesABoundedSanitizedExcerptOfTheAnswer) {
  receiver_.Script("/noisy", {500});
  auto& w = Make();
  std::string id = EnqueueWebhook(receiver_.Url("/noisy"));
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "retry_scheduled");
  const std::string error = StatusField(id, "error");
  EXPECT_NE(error.find("HTTP 500: oops"), std::string::npos) << error;
  EXPECT_LT(error.size(), 300u) << "at most 200 bytes of a 10 KiB body";
  EXPECT_FALSE(FirstInvalidUtf8(error).has_value());
  for (unsigned char ch : error) EXPECT_TRUE(ch >= 0x20 && ch != 0x7f) << "control byte " << int(ch);
  EXPECT_EQ(error.find("\xc2\x85"), std::string::npos) << "no C1 control (NEL) either";
}

// End to end: an event as the compactor XADDs it becomes one webhook POST, also when the forwarder dies
// between enqueueing and acking (the redelivered event finds its unique key taken).
TEST_F(WebhookTest, CompactedEventsArePostedToTheEventsWebhookOnce) {
  auto& w = Make({{"EVENTS_WEBHOOK_URL", receiver_.Url("/events")}, {"TASK_SIGNING_SECRET", "s3cret"}});
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());  // creates the "webhooks" group at the stream's end
  std::string events = KeySchema::FromConfig(*configs_.back()).EventsStream();
  auto publish = [&](int64_t gen) {
    v1::Event ev;
    auto* gc = ev.mutable_generation_compacted();
    gc->set_organization_id(7);
    gc->set_generation_id(gen);
    gc->set_chunk_count(3);
    gc->set_trigger("complete");
    gc->set_json_valid(true);
    return redis_->Command({"XADD", events, "*", "type", "generation.compacted", "e", ev.SerializeAsString()})->str;
  };
  publish(100);
  ASSERT_TRUE(redis_->Command({"XADD", events, "*", "type", "bogus", "e", "\xff"}).ok());
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(QueueLen("default"), 1) << "the bogus event is skipped";
  // The task names the URL instead of holding it: a hook URL often carries its token, and a payload is shown
  // by dead letters, the admin UI and task records.
  for (const auto& q : keys_.QueueShards("default")) {
    for (const auto& e : ParseEntries(q, *redis_->Command({"XRANGE", q, "-", "+"}))) {
      v1::TaskEnvelope t;
      ASSERT_TRUE(t.ParseFromString(*e.Field("e")));
      EXPECT_EQ(t.payload().find("/events"), std::string::npos) << t.payload();
      EXPECT_NE(t.payload().find("EVENTS_WEBHOOK_URL"), std::string::npos) << t.payload();
    }
  }

  // A forwarder reads event 101, enqueues its task and dies before XACK.
  std::string second = publish(101);
  ASSERT_EQ(ParseStreamReply(*redis_->Command({"XREADGROUP", "GROUP", "webhooks", "dead", "COUNT", "1", "STREAMS",
                                               events, ">"})).size(), 1u);
  EnqueueOptions o;
  o.unique_key = "event:" + second;
  Enqueue("webhook", nlohmann::json({{"url", receiver_.Url("/events")}, {"body", {{"generation_id", 101}}}}).dump(), o);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // VISIBILITY_TIMEOUT 200ms
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(QueueLen("default"), 2) << "the redelivered event enqueued nothing";
  EXPECT_EQ(GetStreamStats(*redis_, events)->groups[0].pending, 0);

  EXPECT_EQ(Drain(w), 2);
  auto got = receiver_.Received();
  ASSERT_EQ(got.size(), 2u);
  // By generation, not by arrival: on a sharded queue (cluster mode) the two tasks sit on different shards.
  auto first = nlohmann::json::parse(got[0].body);
  auto second_body = nlohmann::json::parse(got[1].body);
  if (first["generation_id"] != 100) std::swap(first, second_body);
  EXPECT_EQ(first["type"], "generation.compacted");
  EXPECT_EQ(first["organization_id"], 7);
  EXPECT_EQ(first["generation_id"], 100);
  EXPECT_EQ(first["trigger"], "complete");
  EXPECT_EQ(second_body["generation_id"], 101);
  // The forwarded event is signed as a push handler's request is (it was unsigned).
  for (const auto& r : got) {
    if (nlohmann::json::parse(r.body)["generation_id"] != 100) continue;
    ASSERT_FALSE(r.timestamp.empty());
    EXPECT_EQ(r.signature, PushSignature("s3cret", r.timestamp, r.body));
  }
  // Any enqueuer can write a task with url_from: without the forwarder's attestation it is neither signed nor
  // sent (it would have been a correctly signed fake event).
  std::string forged = Enqueue("webhook", nlohmann::json({{"url_from", "EVENTS_WEBHOOK_URL"},
                                                          {"body", {{"type", "generation.compacted"}}}}).dump());
  Drain(w);
  EXPECT_EQ(StatusField(forged, "state"), "dead");
  EXPECT_NE(StatusField(forged, "error").find("did not make"), std::string::npos) << StatusField(forged, "error");
  EXPECT_EQ(receiver_.Received().size(), 2u);
}

// A compacted event with this generation id, XADDed as the compactor does (without trimming).
std::string PublishCompacted(RedisClient& redis, const std::string& events, int64_t gen) {
  v1::Event ev;
  auto* gc = ev.mutable_generation_compacted();
  gc->set_organization_id(7);
  gc->set_generation_id(gen);
  gc->set_chunk_count(3);
  return redis.Command({"XADD", events, "*", "type", "generation.compacted", "e", ev.SerializeAsString()})->str;
}

// A round forwards batch after batch until the stream is drained or its time budget is spent (before, 100
// events a round, about 400 a second: a fleet compacting more than that fell further behind until the
// stream's MAXLEN trimmed what it had not read). With a budget no machine reaches, one round takes the whole
// backlog of 1 200 in batches of 500; the housekeeper's rounds (200 ms each) drain it too.
TEST_F(WebhookTest, ARoundForwardsABacklogOfManyBatches) {
  auto& w = Make({{"EVENTS_WEBHOOK_URL", receiver_.Url("/events")}});
  const Config& config = *configs_.back();
  const std::string events = KeySchema::FromConfig(config).EventsStream();
  worker::EventForwarder forwarder(config, TaskKeys::FromConfig(config));
  worker::EventForwarder::Round round;
  ASSERT_TRUE(forwarder.ForwardOnce(*redis_, "hk", clock_.NowMs(), 500, round).ok());  // the group
  for (int i = 0; i < 1200; ++i) PublishCompacted(*redis_, events, 1000 + i);
  ASSERT_TRUE(forwarder.ForwardOnce(*redis_, "hk", clock_.NowMs(), 500, round, /*budget_ms=*/600'000).ok());
  EXPECT_EQ(round.forwarded, 1200);
  EXPECT_EQ(QueueLen("default"), 1200);

  for (int i = 0; i < 1200; ++i) PublishCompacted(*redis_, events, 3000 + i);
  for (int r = 0; r < 50 && QueueLen("default") < 2400; ++r) ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(QueueLen("default"), 2400);
  auto stats = GetStreamStats(*redis_, events);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->groups[0].pending, 0) << "every event acked";
}

// Events the stream's trimming removed before the forwarder read them are counted as lost (and logged), once
// fleet-wide whichever worker sees the gap first; the ones still there are forwarded, and a later round counts
// nothing again.
TEST_F(WebhookTest, EventsTrimmedBeforeTheForwarderReadThemAreCountedOnceAsLost) {
  Make({{"EVENTS_WEBHOOK_URL", receiver_.Url("/events")}});
  const Config& config = *configs_.back();
  const TaskKeys keys = TaskKeys::FromConfig(config);
  const std::string events = KeySchema::FromConfig(config).EventsStream();
  worker::EventForwarder a(config, keys), b(config, keys);
  auto round = [&](worker::EventForwarder& f) {
    worker::EventForwarder::Round r;
    Status s = f.ForwardOnce(*redis_, "hk", clock_.NowMs(), 100, r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  };
  EXPECT_EQ(round(a).lost, 0);  // makes the group, on a new stream
  // Trimmed before the group's first read (Redis does not count that group's reads yet), then after reads.
  for (int trimmed_after_reads : {0, 1}) {
    for (int i = 0; i < 10; ++i) PublishCompacted(*redis_, events, 100 + i);
    ASSERT_TRUE(redis_->Command({"XTRIM", events, "MAXLEN", "4"}).ok());
    EXPECT_EQ(round(b).lost + round(a).lost, 6) << trimmed_after_reads;
    for (int i = 0; i < 3; ++i) PublishCompacted(*redis_, events, 200 + i);
    auto later = round(a);
    EXPECT_EQ(later.lost + round(b).lost, 0) << "counted once";
    EXPECT_EQ(later.forwarded, 3);
  }
  EXPECT_EQ(QueueLen("default"), 14);
}

// A round counts an event once its XACK lands: one whose ack fails (here the connection's ACL user may not
// XACK) is delivered again, and counted then, not twice; its redelivery enqueues nothing new (the unique key).
TEST_F(WebhookTest, AnEventIsCountedOnceItsAckLands) {
  if (ClusterRun()) GTEST_SKIP() << "the ACL user is set on one server";
  Make({{"EVENTS_WEBHOOK_URL", receiver_.Url("/events")}});
  const Config& config = *configs_.back();
  const std::string events = KeySchema::FromConfig(config).EventsStream();
  worker::EventForwarder forwarder(config, TaskKeys::FromConfig(config));
  worker::EventForwarder::Round created;
  ASSERT_TRUE(forwarder.ForwardOnce(*redis_, "hk", clock_.NowMs(), 100, created).ok());  // the group
  for (int i = 0; i < 5; ++i) PublishCompacted(*redis_, events, 500 + i);
  ASSERT_TRUE(redis_->Command({"XADD", events, "*", "type", "bogus", "e", "\xff"}).ok());

  ASSERT_TRUE(redis_->Command({"ACL", "SETUSER", "noack", "on", "nopass", "~*", "&*", "+@all", "-xack"}).ok());
  struct DropUser {  // the server outlives this test: the user must go whatever fails below
    RedisClient& redis;
    ~DropUser() { (void)redis.Command({"ACL", "DELUSER", "noack"}); }
  } drop_user{*redis_};
  RedisConfig as_noack = RedisConfigForTest();
  as_noack.username = "noack";
  as_noack.password = "any";
  auto noack = RedisClient::Connect(as_noack);
  ASSERT_TRUE(noack.ok()) << noack.status().ToString();
  worker::EventForwarder::Round unacked;
  Status refused = forwarder.ForwardOnce(**noack, "hk", clock_.NowMs(), 100, unacked);
  EXPECT_NE(refused.message().find("NOPERM"), std::string::npos) << refused.ToString();
  EXPECT_EQ(unacked.forwarded, 0);
  EXPECT_EQ(unacked.skipped, 0);
  EXPECT_EQ(QueueLen("default"), 5) << "the tasks went in before the ack failed";

  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // VISIBILITY_TIMEOUT 200ms
  worker::EventForwarder::Round again;
  ASSERT_TRUE(forwarder.ForwardOnce(*redis_, "hk", clock_.NowMs(), 100, again).ok());
  EXPECT_EQ(again.forwarded, 5);
  EXPECT_EQ(again.skipped, 1);
  EXPECT_EQ(QueueLen("default"), 5) << "the redelivery enqueued nothing new";
  EXPECT_EQ(GetStreamStats(*redis_, events)->groups[0].pending, 0);
}

class StoreTaskTest : public WorkerTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    WorkerTest::SetUp();
    std::string url = testing::FreshDatabaseUrl(GetParam(), "sf-worker-store", &path_);
    if (url.empty()) GTEST_FAIL() << "STREAMFLEET_TEST_PG_URL is not set (scripts/test.sh sets it)";
    store_ = SqlStore::Open(url).value();
    ASSERT_TRUE(store_->Migrate().ok());
    RegisterStoreHandlers(handlers_, store_.get(), archive_.get(), clock_);
  }
  void TearDown() override {
    store_.reset();
    if (!path_.empty()) {
      for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
    }
  }
  std::string path_;
  std::unique_ptr<SqlStore> store_;
  std::unique_ptr<ObjectStore> archive_;  // ARTIFACT_STORE: set by ChunkArchiveTaskTest
};

// Rows of one generation, failing the test (not throwing) when the store answers an error.
size_t ChunkCount(SqlStore& store, int64_t generation) {
  auto rows = store.GetChunks(generation);
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  return rows.ok() ? rows->size() : 0;
}

TEST_P(StoreTaskTest, PurgeDeletesChunkRowsOlderThanTheRetention) {
  clock_.Set(WallClockMs());
  ASSERT_TRUE(store_->UpsertChunks({{70, 1, 0, 0, "a"}, {70, 1, 0, 1, "b"}}).ok());
  auto& w = Make();
  std::string id = Enqueue("generation_chunks.purge", R"({"older_than": "1h"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "succeeded") << StatusField(id, "error");
  EXPECT_EQ(ChunkCount(*store_, 70), 2u);
  clock_.Advance(2 * 3'600'000);
  id = Enqueue("generation_chunks.purge", R"({"older_than": "1h"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "result").rfind("2 chunk rows", 0), 0u) << StatusField(id, "result");
  EXPECT_EQ(ChunkCount(*store_, 70), 0u);

  ASSERT_TRUE(store_->UpsertChunks({{71, 1, 0, 0, "a"}}).ok());
  clock_.Advance(6 * 24 * 3'600'000LL);
  Enqueue("generation_chunks.purge");  // CHUNK_RETENTION 168h: six days is not old enough
  Drain(w);
  EXPECT_EQ(ChunkCount(*store_, 71), 1u);
  clock_.Advance(2 * 24 * 3'600'000LL);
  Enqueue("generation_chunks.purge", R"({"older_than": "7d"})");
  Drain(w);
  EXPECT_EQ(ChunkCount(*store_, 71), 0u);
  id = Enqueue("generation_chunks.purge", R"({"older_than": "soon"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "dead");
  // Days past int64 milliseconds: refused. The days once went through hours x 24, which wrapped to about
  // 9.6 hours: rows older than that were deleted instead of kept.
  EXPECT_FALSE(ParseRetentionMs("213503982335d").ok());
  EXPECT_EQ(*ParseRetentionMs("7d"), 7 * 86'400'000LL);
  EXPECT_EQ(*ParseRetentionMs("90m"), 90 * 60'000LL);
}

TEST_P(StoreTaskTest, HashSyncUpsertsMatchingHashesIdempotently) {
  ASSERT_TRUE(redis_->Command({"HSET", "progress:1", "received", "3", "total", "10"}).ok());
  ASSERT_TRUE(redis_->Command({"HSET", "progress:2", "received", "1"}).ok());
  ASSERT_TRUE(redis_->Command({"SET", "progress:plain", "not a hash"}).ok());
  ASSERT_TRUE(redis_->Command({"HSET", "other:1", "x", "1"}).ok());
  for (int i = 0; i < 250; ++i) {  // several SCAN pages
    ASSERT_TRUE(redis_->Command({"HSET", "progress:bulk:" + std::to_string(i), "i", std::to_string(i)}).ok());
  }
  auto& w = Make();
  std::string id = Enqueue("hash.sync", R"({"pattern": "progress:*", "table": "redis_hash_snapshots"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "result"), "252 hashes synced to redis_hash_snapshots");
  auto one = store_->GetHashSnapshot("progress:1");
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ(nlohmann::json::parse(**one), nlohmann::json({{"received", "3"}, {"total", "10"}}));
  EXPECT_EQ(nlohmann::json::parse(**store_->GetHashSnapshot("progress:bulk:249"))["i"], "249");
  EXPECT_FALSE(store_->GetHashSnapshot("other:1")->has_value());
  EXPECT_FALSE(store_->GetHashSnapshot("progress:plain")->has_value());

  ASSERT_TRUE(redis_->Command({"HSET", "progress:1", "received", "4"}).ok());
  id = Enqueue("hash.sync", R"({"pattern": "progress:*"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "succeeded");
  EXPECT_EQ(nlohmann::json::parse(**store_->GetHashSnapshot("progress:1"))["received"], "4");

  // A NUL byte in a hash (jsonb refuses U+0000: the whole batch failed, every run, on PostgreSQL only).
  ASSERT_TRUE(redis_->Command({"HSET", "progress:nul", "note", std::string("a\0b", 3)}).ok());
  id = Enqueue("hash.sync", R"({"pattern": "progress:*"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "succeeded") << StatusField(id, "error");
  auto nul = store_->GetHashSnapshot("progress:nul");
  ASSERT_TRUE(nul.ok() && nul->has_value());
  EXPECT_EQ(nlohmann::json::parse(**nul)["note"], "a\xEF\xBF\xBD" "b");
  // A key that is not UTF-8 cannot be a row's key: skipped and counted, the others synced.
  ASSERT_TRUE(redis_->Command({"HSET", std::string("progress:\xff", 10), "x", "1"}).ok());
  id = Enqueue("hash.sync", R"({"pattern": "progress:*"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "succeeded") << StatusField(id, "error");
  EXPECT_NE(StatusField(id, "result").find("1 skipped"), std::string::npos) << StatusField(id, "result");

  id = Enqueue("hash.sync", R"({"pattern": "progress:*", "table": "scenario_generations; DROP TABLE x"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "dead") << "only the snapshot table is writable";
}

// generation_chunks.purge with an object store (s3rver): each generation's rows are archived, then deleted.
class ChunkArchiveTaskTest : public StoreTaskTest {
 protected:
  static void SetUpTestSuite() {
    StoreTaskTest::SetUpTestSuite();
    s3_ = new testing::S3Server();
  }
  static void TearDownTestSuite() {
    delete s3_;
    s3_ = nullptr;
    StoreTaskTest::TearDownTestSuite();
  }
  void SetUp() override {
    // A prefix of its own per backend: both share the one bucket.
    config_ = LoadConfig(testing::MapEnv(s3_->env("archive-" + GetParam())), "127.0.0.1:0").value();
    archive_ = OpenObjectStore(config_);
    ASSERT_NE(archive_, nullptr);
    StoreTaskTest::SetUp();
  }
  std::vector<ChunkRow> Archived(int64_t generation) {
    auto rows = LoadChunkArchive(*archive_, generation, ChunkArchiveMaxBytes(config_));
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? *rows : std::vector<ChunkRow>{};
  }
  static std::vector<std::pair<int64_t, std::string>> SeqData(const std::vector<ChunkRow>& rows) {
    std::vector<std::pair<int64_t, std::string>> out;
    for (const auto& r : rows) out.emplace_back(r.seq, r.data);
    return out;
  }
  Config config_;
  static inline testing::S3Server* s3_ = nullptr;
};

TEST_P(ChunkArchiveTaskTest, PurgeArchivesEachGenerationBeforeDeletingItsRows) {
  clock_.Set(WallClockMs());
  // Bytes that are not UTF-8 survive: the archive keeps data base64 like the table.
  const std::string binary("\xff\x00\xfe{", 4);
  ASSERT_TRUE(store_->UpsertChunks({{80, 2, 5, 0, "{\"a\": "}, {80, 2, 5, 1, binary}, {80, 2, 5, 2, "1}"}}).ok());
  ASSERT_TRUE(store_->UpsertChunks({{81, 3, 0, 0, "only"}}).ok());
  auto& w = Make();
  clock_.Advance(2 * 3'600'000);
  std::string id = Enqueue("generation_chunks.purge", R"({"older_than": "1h"})");
  Drain(w);
  ASSERT_EQ(StatusField(id, "state"), "succeeded") << StatusField(id, "error");
  EXPECT_EQ(StatusField(id, "result").rfind("4 chunk rows created before", 0), 0u) << StatusField(id, "result");
  EXPECT_NE(StatusField(id, "result").find("of 2 generations archived to s3://art/archive-"), std::string::npos);
  EXPECT_EQ(ChunkCount(*store_, 80), 0u);
  EXPECT_EQ(ChunkCount(*store_, 81), 0u);
  auto a80 = Archived(80);
  EXPECT_EQ(SeqData(a80), (std::vector<std::pair<int64_t, std::string>>{{0, "{\"a\": "}, {1, binary}, {2, "1}"}}));
  ASSERT_EQ(a80.size(), 3u);
  EXPECT_EQ(a80[1].organization_id, 2);
  EXPECT_EQ(a80[1].scenario_id, 5);
  auto a81 = Archived(81);
  ASSERT_EQ(a81.size(), 1u);
  EXPECT_EQ(a81[0].organization_id, 3);
  EXPECT_EQ(a81[0].scenario_id, 0);

  // More rows of the same generation later (a replay, a late chunk): added to its archive, which keeps what it
  // had (seq 0 archived before keeps its data).
  ASSERT_TRUE(store_->UpsertChunks({{80, 2, 5, 0, "other"}, {80, 2, 5, 3, " "}}).ok());
  clock_.Advance(2 * 3'600'000);
  id = Enqueue("generation_chunks.purge", R"({"older_than": "1h"})");
  Drain(w);
  ASSERT_EQ(StatusField(id, "state"), "succeeded") << StatusField(id, "error");
  EXPECT_EQ(ChunkCount(*store_, 80), 0u);
  EXPECT_EQ(SeqData(Archived(80)),
            (std::vector<std::pair<int64_t, std::string>>{{0, "{\"a\": "}, {1, binary}, {2, "1}"}, {3, " "}}));

  // The store goes away: nothing is deleted, the task is retried, and once the store is back the rows go.
  ASSERT_TRUE(store_->UpsertChunks({{82, 2, 0, 0, "kept"}}).ok());
  clock_.Advance(2 * 3'600'000);
  s3_->Kill();
  id = Enqueue("generation_chunks.purge", R"({"older_than": "1h"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "retry_scheduled") << StatusField(id, "error");
  EXPECT_EQ(ChunkCount(*store_, 82), 1u);
  s3_->Start();
  clock_.Advance(60'000);
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "succeeded") << StatusField(id, "error");
  EXPECT_EQ(ChunkCount(*store_, 82), 0u);
  EXPECT_EQ(Archived(82).size(), 1u);

  // An archive object that is not an archive is never overwritten: its generation's rows stay, the others go.
  ASSERT_TRUE(archive_->Put(ChunkArchiveKey(83), "not zstd").ok());
  ASSERT_TRUE(store_->UpsertChunks({{83, 2, 0, 0, "x"}, {84, 2, 0, 0, "y"}}).ok());
  clock_.Advance(2 * 3'600'000);
  id = Enqueue("generation_chunks.purge", R"({"older_than": "1h"})");
  Drain(w);
  ASSERT_EQ(StatusField(id, "state"), "succeeded") << StatusField(id, "error");
  EXPECT_NE(StatusField(id, "result").find("1 generations kept in the table (generation 83"), std::string::npos)
      << StatusField(id, "result");
  EXPECT_EQ(ChunkCount(*store_, 83), 1u);
  EXPECT_EQ(ChunkCount(*store_, 84), 0u);
  EXPECT_EQ(*archive_->Get(ChunkArchiveKey(83), 100), "not zstd");

  // "archive": false purges as without a store.
  ASSERT_TRUE(store_->UpsertChunks({{85, 2, 0, 0, "z"}}).ok());
  clock_.Advance(2 * 3'600'000);
  id = Enqueue("generation_chunks.purge", R"({"older_than": "1h", "archive": false})");
  Drain(w);
  ASSERT_EQ(StatusField(id, "state"), "succeeded") << StatusField(id, "error");
  EXPECT_EQ(ChunkCount(*store_, 85), 0u);
  EXPECT_EQ(archive_->Get(ChunkArchiveKey(85), 100).status().code(), StatusCode::kNotFound);
  id = Enqueue("generation_chunks.purge", R"({"archive": "yes"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "dead");
}

TEST_P(StoreTaskTest, PurgeRefusesToArchiveWithoutAStore) {
  auto& w = Make();
  std::string id = Enqueue("generation_chunks.purge", R"({"archive": true})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "dead");
  EXPECT_NE(StatusField(id, "error").find("needs ARTIFACT_STORE"), std::string::npos) << StatusField(id, "error");
}

INSTANTIATE_TEST_SUITE_P(Backends, ChunkArchiveTaskTest, ::testing::Values("sqlite", "postgresql"));
INSTANTIATE_TEST_SUITE_P(Backends, StoreTaskTest, ::testing::Values("sqlite", "postgresql"));

TEST(RetentionParseTest, DaysHoursAndErrors) {
  EXPECT_EQ(*ParseRetentionMs("7d"), 7 * 24 * 3'600'000LL);
  EXPECT_EQ(*ParseRetentionMs("12h"), 12 * 3'600'000LL);
  EXPECT_EQ(*ParseRetentionMs("90"), 90'000);
  EXPECT_FALSE(ParseRetentionMs("0d").ok());
  EXPECT_FALSE(ParseRetentionMs("d").ok());
  EXPECT_FALSE(ParseRetentionMs("soon").ok());
}

}  // namespace
}  // namespace streamfleet::worker
