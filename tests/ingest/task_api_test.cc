// ingest's HTTP task API (ingest/task_api.h, docs/task-api.md) against a real redis-server, through a real
// HTTP client, with an in-process queue-worker running what it enqueues: tasks run, delays wait, unique keys
// dedupe, cancelled tasks never run, the status round-trips, and bad requests, tokens and a Redis outage get
// their answers.
#include <gtest/gtest.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "ingest/ingest_service.h"
#include "queue-worker/worker_service.h"
#include "streamfleet/taskqueue/task_keys.h"
#include "support/http_client.h"
#include "support/map_env.h"
#include "support/redis_suite.h"

namespace streamfleet::ingest {
namespace {

using nlohmann::json;
using testing::HttpRequest;
using testing::HttpResponse;

class TaskApiTest : public testing::RedisSuite<> {
 protected:
  void TearDown() override {
    if (service_) service_->Stop();
  }
  void Start(std::map<std::string, std::string> extra = {}, bool with_worker = true) {
    std::map<std::string, std::string> env = server_->env();
    env.insert({{"INGEST_LISTEN", "127.0.0.1:0"}, {"INGEST_THREADS", "4"}, {"REDIS_TIMEOUT", "1s"},
                {"QUEUES", "default:1,low:1"}, {"TASK_MAX_PAYLOAD_BYTES", "1000"}});
    for (auto& [k, v] : extra) env[k] = v;
    auto c = LoadConfig(testing::MapEnv(env), "127.0.0.1:0");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    config_ = std::make_unique<Config>(*c);
    service_ = std::make_unique<IngestService>(*config_, registry_);
    ASSERT_TRUE(service_->Start().ok());
    if (!with_worker) return;
    handlers_.Register("record", [this](worker::TaskContext& ctx) {
      std::lock_guard<std::mutex> l(mu_);
      ran_.insert(ctx.task.id());
      ctx.result = "done";
      return Status::Ok();
    });
    worker_ = std::make_unique<worker::WorkerService>(*config_, clock_, handlers_, registry_);
    ASSERT_TRUE(worker_->EnsureGroups(*redis_).ok());
  }
  HttpResponse Call(const std::string& method, const std::string& path, const std::string& body = "",
                    std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(service_->port()) + path;
    r.body = body;
    if (!body.empty()) headers.push_back("Content-Type: application/json");
    r.headers = std::move(headers);
    return testing::Send(r);
  }
  HttpResponse Post(const std::string& path, const json& body, std::vector<std::string> headers = {}) {
    return Call("POST", path, body.dump(), std::move(headers));
  }
  static json Body(const HttpResponse& r) { return json::parse(r.body, nullptr, false); }
  // Runs every task waiting in the streams, one poll at a time.
  int RunAll() {
    int ran = 0;
    for (;;) {
      auto r = worker_->PollOnce(*redis_, "w", 10);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok() || *r == 0) return ran;
      ran += *r;
    }
  }
  bool Ran(const std::string& id) {
    std::lock_guard<std::mutex> l(mu_);
    return ran_.count(id) > 0;
  }
  int64_t Len(const std::string& key, const char* cmd = "XLEN") { return redis_->Command({cmd, key}).value().AsInt(); }

  TaskKeys keys_{"streamfleet"};
  std::unique_ptr<Config> config_;
  prometheus::Registry registry_;
  std::unique_ptr<IngestService> service_;
  ManualClock clock_{WallClockMs()};
  worker::HandlerRegistry handlers_;
  std::unique_ptr<worker::WorkerService> worker_;
  std::mutex mu_;
  std::set<std::string> ran_;
};

TEST_F(TaskApiTest, AnEnqueuedTaskRunsAndItsStatusRoundTrips) {
  Start();
  auto r = Post("/v1/tasks", {{"type", "record"}, {"payload", {{"user", 7}}}});
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = Body(r)["task_id"];
  EXPECT_EQ(Body(r)["state"], "pending");

  auto pending = Body(Call("GET", "/v1/tasks/" + id));
  EXPECT_EQ(pending["state"], "pending");
  EXPECT_EQ(pending["type"], "record");
  EXPECT_EQ(pending["queue"], "default");
  EXPECT_TRUE(pending["enqueued_at_ms"].is_number());

  EXPECT_EQ(RunAll(), 1);
  EXPECT_TRUE(Ran(id));
  auto done = Call("GET", "/v1/tasks/" + id);
  ASSERT_EQ(done.status, 200);
  EXPECT_EQ(Body(done)["state"], "succeeded");
  EXPECT_EQ(Body(done)["result"], "done");
  EXPECT_EQ(Body(done)["attempts"], 1);
  EXPECT_TRUE(Body(done)["started_at_ms"].is_number());
  EXPECT_TRUE(Body(done)["finished_at_ms"].is_number());

  EXPECT_EQ(Call("GET", "/v1/tasks/nope").status, 404);
}

// A handler's text is stored as it came (a push handler's response body, cut at 64 KiB possibly inside a
// character); the status answer replaces the bytes that are not UTF-8 instead of failing with a 500.
TEST_F(TaskApiTest, AStatusRecordThatIsNotUtf8IsServedWithReplacementCharacters) {
  Start({}, false);
  const std::string key = TaskKeys::FromConfig(*config_).Status("not-utf8");
  ASSERT_TRUE(redis_->Command({"HSET", key, "state", "succeeded", "result", "\xff\xfe ok", "error", "cut \xc3",
                               "attempts", "1"})
                  .ok());
  auto r = Call("GET", "/v1/tasks/not-utf8");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = Body(r);
  ASSERT_FALSE(j.is_discarded()) << "not JSON: " << r.body;
  EXPECT_EQ(j["task_id"], "not-utf8");
  EXPECT_EQ(j["state"], "succeeded");
  EXPECT_EQ(j["result"], "\xef\xbf\xbd\xef\xbf\xbd ok");
  EXPECT_EQ(j["error"], "cut \xef\xbf\xbd");
  EXPECT_EQ(j["attempts"], 1);
}

TEST_F(TaskApiTest, DelayedTasksWaitInTheScheduledSetAndUniqueKeysDedupe) {
  Start();
  auto delayed = Post("/v1/tasks", {{"type", "record"}, {"delay", "60s"}, {"queue", "low"}});
  ASSERT_EQ(delayed.status, 202) << delayed.body;
  EXPECT_EQ(Body(delayed)["state"], "scheduled");
  auto at = Post("/v1/tasks", {{"type", "record"}, {"run_at", WallClockMs() / 1000 + 3600}});
  EXPECT_EQ(Body(at)["state"], "scheduled");
  EXPECT_EQ(Len(keys_.Scheduled(), "ZCARD"), 2);
  EXPECT_EQ(RunAll(), 0) << "nothing is due";

  json unique = {{"type", "record"}, {"unique_key", "report-7"}, {"unique_for", 600}};
  auto first = Post("/v1/tasks", unique);
  ASSERT_EQ(first.status, 202) << first.body;
  auto second = Post("/v1/tasks", unique);
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(Body(second)["duplicate"], true);
  EXPECT_EQ(Body(second)["task_id"], Body(first)["task_id"]) << "the holder's id";
  EXPECT_LE(redis_->Command({"TTL", keys_.Unique("report-7")}).value().AsInt(), 600);
  EXPECT_EQ(RunAll(), 1);
  // A generation's own unique key ("generation-{id}", ids are predictable) is not for the taking: held, that
  // generation's start would find its task's key taken and fail.
  auto reserved = Post("/v1/tasks", {{"type", "record"}, {"unique_key", "generation-61"}});
  EXPECT_EQ(reserved.status, 400) << reserved.body;
  EXPECT_EQ(Body(reserved)["error"], "invalid_task");
  EXPECT_EQ(redis_->Command({"EXISTS", keys_.Unique("generation-61")}).value().AsInt(), 0);
}

TEST_F(TaskApiTest, ABatchEnqueuesEveryTaskOrNone) {
  Start();
  json tasks = json::array();
  for (int i = 0; i < 5; ++i) tasks.push_back({{"type", "record"}, {"payload", {{"i", i}}}});
  tasks.push_back({{"type", "record"}, {"unique_key", "batch-u"}});
  auto r = Post("/v1/tasks:batch", {{"tasks", tasks}});
  ASSERT_EQ(r.status, 202) << r.body;
  const json answer = Body(r);  // kept: a range-for over a temporary's member would dangle
  ASSERT_EQ(answer["tasks"].size(), 6u);
  EXPECT_EQ(RunAll(), 6);
  for (const auto& t : answer["tasks"]) EXPECT_TRUE(Ran(t["task_id"]));

  tasks.push_back({{"type", "record"}, {"queue", "nobody-reads-this"}});
  auto bad = Post("/v1/tasks:batch", {{"tasks", tasks}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Body(bad)["error"], "unknown_queue");
  EXPECT_NE(Body(bad)["detail"].get<std::string>().find("tasks[6]"), std::string::npos) << bad.body;
  EXPECT_EQ(RunAll(), 0) << "nothing of a refused batch was enqueued";

  json too_many = json::array();
  for (size_t i = 0; i <= TaskApi::kMaxBatch; ++i) too_many.push_back({{"type", "record"}});
  EXPECT_EQ(Post("/v1/tasks:batch", {{"tasks", too_many}}).status, 400);
}

TEST_F(TaskApiTest, ACancelledTaskNeverRunsAndAStartedOneCannotBeCancelled) {
  Start();
  std::string keep = Body(Post("/v1/tasks", {{"type", "record"}}))["task_id"];
  std::string drop = Body(Post("/v1/tasks", {{"type", "record"}}))["task_id"];
  auto c = Call("DELETE", "/v1/tasks/" + drop);
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(Body(c)["previous_state"], "pending");
  EXPECT_EQ(Body(Call("GET", "/v1/tasks/" + drop))["state"], "cancelled");
  EXPECT_EQ(Call("DELETE", "/v1/tasks/" + drop).status, 200) << "cancelling again changes nothing";

  EXPECT_EQ(RunAll(), 1);
  EXPECT_TRUE(Ran(keep));
  EXPECT_FALSE(Ran(drop));
  EXPECT_EQ(Body(Call("GET", "/v1/tasks/" + drop))["state"], "cancelled");

  auto late = Call("DELETE", "/v1/tasks/" + keep);
  EXPECT_EQ(late.status, 409) << late.body;
  EXPECT_EQ(Body(late)["state"], "succeeded");
  EXPECT_EQ(Call("DELETE", "/v1/tasks/nope").status, 404);
}

TEST_F(TaskApiTest, BadRequestsGetClearErrorsAndEnqueueNothing) {
  Start();
  struct Case {
    std::string body;
    int status;
    std::string error;
  };
  std::vector<Case> cases = {
      {R"({"type": "record", "queue": "nobody"})", 400, "unknown_queue"},
      {R"({"type": "record", "queue": "Bad Name"})", 400, "invalid_queue"},
      {R"({"payload": {}})", 400, "invalid_task"},
      {R"({"type": ""})", 400, "invalid_task"},
      {R"({"type": "record", "priority": 3})", 400, "invalid_task"},
      {R"({"type": "record", "delay": "soon"})", 400, "invalid_task"},
      {R"({"type": "record", "delay": 5, "run_at": 5})", 400, "invalid_task"},
      // Past int64 milliseconds: refused before the conversion, which was undefined behaviour (UBSan's
      // float-cast-overflow), as is a negative time.
      {R"({"type": "record", "run_at": 1e300})", 400, "invalid_task"},
      {R"({"type": "record", "run_at": -1e300})", 400, "invalid_task"},
      {R"({"type": "record", "run_at": 9.3e15})", 400, "invalid_task"},
      {R"({"type": "record", "unique_for": 60})", 400, "invalid_task"},
      {R"({"type": "record", "payload": ")" + std::string(2000, 'x') + R"("})", 413, "payload_too_large"},
      {R"({"type": "record",)", 400, "invalid_json"},
      {std::string(200, '[') , 400, "invalid_json"},
      {R"([1, 2])", 400, "invalid_task"},
  };
  for (const Case& c : cases) {
    auto r = Call("POST", "/v1/tasks", c.body);
    EXPECT_EQ(r.status, c.status) << c.body.substr(0, 80) << " -> " << r.body;
    EXPECT_EQ(Body(r)["error"], c.error) << c.body.substr(0, 80);
  }
  auto wrong_type = Call("POST", "/v1/tasks", "x", {"Content-Type: text/plain"});
  EXPECT_EQ(wrong_type.status, 415);
  EXPECT_EQ(Call("PUT", "/v1/tasks/abc", "{}").status, 405);
  EXPECT_EQ(Call("GET", "/v1/tasks").status, 405);
  EXPECT_EQ(Len(keys_.Queue("default")), 0);
  EXPECT_EQ(Len(keys_.Scheduled(), "ZCARD"), 0);
}

TEST_F(TaskApiTest, TokensHaveScopesAndTheChunkTokensAreNotTaskTokens) {
  Start({{"INGEST_TOKENS", "12:chunk-token"}, {"TASK_API_TOKENS", "writer:enqueue,reader:read,both:enqueue+read"}});
  json task = {{"type", "record"}};
  EXPECT_EQ(Post("/v1/tasks", task).status, 401);
  EXPECT_EQ(Post("/v1/tasks", task, {"Authorization: Bearer chunk-token"}).status, 401);
  EXPECT_EQ(Post("/v1/tasks", task, {"Authorization: Bearer reader"}).status, 403);
  auto ok = Post("/v1/tasks", task, {"Authorization: Bearer writer"});
  ASSERT_EQ(ok.status, 202) << ok.body;
  std::string id = Body(ok)["task_id"];
  EXPECT_EQ(Call("GET", "/v1/tasks/" + id, "", {"Authorization: Bearer writer"}).status, 403);
  EXPECT_EQ(Call("GET", "/v1/tasks/" + id, "", {"Authorization: Bearer reader"}).status, 200);
  EXPECT_EQ(Call("DELETE", "/v1/tasks/" + id, "", {"Authorization: Bearer reader"}).status, 403);
  EXPECT_EQ(Call("DELETE", "/v1/tasks/" + id, "", {"Authorization: Bearer both"}).status, 200);
}

TEST_F(TaskApiTest, WithChunkTokensButNoTaskTokensTheTaskApiIsOff) {
  Start({{"INGEST_TOKENS", "12:chunk-token"}});
  auto r = Post("/v1/tasks", {{"type", "record"}}, {"Authorization: Bearer chunk-token"});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Body(r)["error"], "task_api_disabled");
}

TEST_F(TaskApiTest, RedisDownIs503WithRetryAfter) {
  Start({{"REDIS_URL", "redis://127.0.0.1:1"}, {"REDIS_TIMEOUT", "200ms"}}, false);
  auto r = Post("/v1/tasks", {{"type", "record"}});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(Body(r)["error"], "redis_unavailable");
  EXPECT_NE(r.headers.find("Retry-After: 1"), std::string::npos) << r.headers;
  EXPECT_EQ(Call("GET", "/v1/tasks/abc").status, 503);
}

}  // namespace
}  // namespace streamfleet::ingest
