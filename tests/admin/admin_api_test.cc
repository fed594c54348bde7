// The admin UI's HTTP surface against a real redis-server (and SQLite): authentication, CSRF, the task
// lists, and the actions (pause/resume, task cancel, dead-letter requeue and delete, compact now) with their
// effects read back from Redis and the database.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "admin/admin_server.h"
#include "admin/auth.h"
#include "admin/sampler.h"
#include "streamfleet/chunks/chunk_buffer.h"
#include "streamfleet/base/clock.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/base/compression.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/base/time.h"
#include "streamfleet/operations/operator_task.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/taskqueue/task_control.h"
#include "streamfleet/taskqueue/task_lifecycle.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "streamfleet/v1/chunk.pb.h"
#include "support/http_client.h"
#include "support/map_env.h"
#include "support/wait.h"
#include "streamfleet/testing/redis_server.h"

namespace streamfleet::admin {
namespace {

using nlohmann::json;
using streamfleet::testing::HttpRequest;
using streamfleet::testing::HttpResponse;
using streamfleet::testing::Send;

constexpr const char* kToken = "s3cret-admin-token";

std::string HeaderValue(const std::string& headers, const std::string& name) {
  std::string lower = headers;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string key = name;
  for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t p = lower.find("\n" + key + ":");
  if (p == std::string::npos) return "";
  size_t start = headers.find_first_not_of(' ', p + key.size() + 2);
  size_t end = headers.find('\r', start);
  return headers.substr(start, end - start);
}

// One admin server for the suite (stopping civetweb takes ~2 s); tests needing other settings start
// their own with StartAdmin.
class AdminApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new streamfleet::testing::RedisServer(); }
  static void TearDownTestSuite() {
    shared_.reset();
    store_.reset();
    shared_config_.reset();
    delete server_;
  }

  void SetUp() override {
    redis_ = RedisClient::Connect(server_->config()).value();
    ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
  }

  static StatusOr<std::unique_ptr<AdminServer>> StartAdmin(std::unique_ptr<Config>* holder,
                                                           std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env = {{"REDIS_PORT", std::to_string(server_->port())},
                                              {"CHUNK_STREAMS", "1"},
                                              {"ADMIN_TOKEN", kToken},
                                              {"ADMIN_SAMPLE_INTERVAL", "100ms"},
                                              {"GENERATION_LLEN_ALERT_THRESHOLD", "3"},
                                              {"DATABASE_URL", "sqlite:" + streamfleet::testing::TempPath("admin-test") + ".db"}};
    for (auto& [k, v] : extra) env[k] = v;
    if (env["ADMIN_TOKEN"].empty()) env.erase("ADMIN_TOKEN");
    auto c = LoadConfig(streamfleet::testing::MapEnv(env), "127.0.0.1:0");
    if (!c.ok()) return c.status();
    *holder = std::make_unique<Config>(*c);
    if (!store_) store_ = SqlStore::Open((*holder)->database_url).value();
    return AdminServer::Start(**holder, store_.get(), "127.0.0.1:0");
  }
  void Start() {
    if (!shared_) {
      auto s = StartAdmin(&shared_config_);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      shared_ = std::move(*s);
    }
    admin_ = shared_.get();
    config_ = shared_config_.get();
  }

  std::string Origin() { return "http://127.0.0.1:" + std::to_string(admin_->port()); }
  HttpResponse Get(const std::string& path, std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.url = Origin() + path;
    r.headers = std::move(headers);
    return Send(r);
  }
  HttpResponse Post(const std::string& path, const std::string& body, std::vector<std::string> headers) {
    HttpRequest r;
    r.method = "POST";
    r.url = Origin() + path;
    r.body = body;
    r.headers = std::move(headers);
    r.headers.push_back("Content-Type: application/json");
    return Send(r);
  }

  // The login form posted with this body (form-encoded), from `origin`.
  HttpResponse PostLogin(const std::string& body, const std::string& origin = "") {
    HttpRequest r;
    r.method = "POST";
    r.url = Origin() + "/login";
    r.body = body;
    r.headers = {"Content-Type: application/x-www-form-urlencoded", "Origin: " + (origin.empty() ? Origin() : origin)};
    return Send(r);
  }

  // Logs in through the form; returns "Cookie: ..." and fills csrf_.
  std::string Login() {
    HttpResponse res = PostLogin(std::string("token=") + kToken + "&next=%2Fqueues");
    EXPECT_EQ(res.status, 303);
    EXPECT_EQ(HeaderValue(res.headers, "Location"), "/queues");
    std::string set = HeaderValue(res.headers, "Set-Cookie");
    EXPECT_NE(set.find("HttpOnly"), std::string::npos);
    EXPECT_NE(set.find("SameSite=Strict"), std::string::npos);
    std::string cookie = "Cookie: " + set.substr(0, set.find(';'));
    HttpResponse s = Get("/api/session", {cookie});
    EXPECT_EQ(s.status, 200) << s.body;
    csrf_ = json::parse(s.body)["csrf"].get<std::string>();
    EXPECT_EQ(csrf_.size(), 64u);
    return cookie;
  }
  // A POST as the logged-in browser makes it: cookie, CSRF header, same Origin.
  HttpResponse BrowserPost(const std::string& cookie, const std::string& path, const json& body) {
    return Post(path, body.dump(), {cookie, "X-CSRF-Token: " + csrf_, "Origin: " + Origin()});
  }

  bool Paused(const std::string& q) {
    return redis_->Command({"SISMEMBER", TaskKeys("streamfleet").Paused(), q})->integer == 1;
  }

  static streamfleet::testing::RedisServer* server_;
  static std::unique_ptr<Config> shared_config_;
  static std::unique_ptr<SqlStore> store_;
  static std::unique_ptr<AdminServer> shared_;
  std::unique_ptr<RedisClient> redis_;
  Config* config_ = nullptr;
  AdminServer* admin_ = nullptr;
  std::string csrf_;
};
streamfleet::testing::RedisServer* AdminApiTest::server_ = nullptr;
std::unique_ptr<Config> AdminApiTest::shared_config_;
std::unique_ptr<SqlStore> AdminApiTest::store_;
std::unique_ptr<AdminServer> AdminApiTest::shared_;

TEST_F(AdminApiTest, RefusesToStartWithoutATokenUnlessInsecure) {
  std::unique_ptr<Config> c1, c2;
  auto s = StartAdmin(&c1, {{"ADMIN_TOKEN", ""}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("ADMIN_TOKEN"), std::string::npos);
  auto insecure = StartAdmin(&c2, {{"ADMIN_TOKEN", ""}, {"ADMIN_INSECURE", "true"}});
  ASSERT_TRUE(insecure.ok()) << insecure.status().ToString();
  (*insecure)->Stop();
}

// Behind a TLS-terminating proxy (X-Forwarded-Proto or Forwarded says https) the session cookie is Secure, so
// a browser never sends it over plain HTTP; served plainly it cannot be (the browser would drop it).
TEST_F(AdminApiTest, TheSessionCookieIsSecureWhenTheRequestCameOverHttps) {
  Start();
  auto login = [&](const std::string& header) {
    HttpRequest r;
    r.method = "POST";
    r.url = Origin() + "/login";
    r.body = std::string("token=") + kToken + "&next=%2F";
    r.headers = {"Content-Type: application/x-www-form-urlencoded", "Origin: " + Origin()};
    if (!header.empty()) r.headers.push_back(header);
    HttpResponse res = Send(r);
    EXPECT_EQ(res.status, 303);
    return HeaderValue(res.headers, "Set-Cookie");
  };
  EXPECT_EQ(login("").find("Secure"), std::string::npos);
  EXPECT_EQ(login("X-Forwarded-Proto: http").find("Secure"), std::string::npos);
  for (const char* h : {"X-Forwarded-Proto: https", "X-Forwarded-Proto: HTTPS, http", "Forwarded: for=1.2.3.4;proto=https"}) {
    std::string set = login(h);
    EXPECT_NE(set.find("; Secure"), std::string::npos) << h << ": " << set;
    EXPECT_NE(set.find("HttpOnly"), std::string::npos);
  }
}

TEST_F(AdminApiTest, UnauthenticatedRequestsAreRefused) {
  Start();
  EXPECT_EQ(Get("/api/overview").status, 401);
  EXPECT_EQ(Get("/api/dead-letters").status, 401);
  EXPECT_EQ(Get("/api/queues", {"Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(Get("/api/queues", {"Cookie: sf_admin=0123456789abcdef"}).status, 401);
  EXPECT_EQ(Post("/api/queues/pause", R"({"queue":"low"})", {"Origin: " + Origin()}).status, 401);
  EXPECT_FALSE(Paused("low"));
  // A page redirects to the login form, keeping where the user wanted to go.
  HttpResponse page = Get("/queues?x=1");
  EXPECT_EQ(page.status, 302);
  EXPECT_EQ(HeaderValue(page.headers, "Location"), "/login?next=/queues%3Fx%3D1");
  // The login page and the static files hold no data and are served to everyone.
  EXPECT_EQ(Get("/login").status, 200);
  HttpResponse js = Get("/static/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_NE(HeaderValue(js.headers, "Content-Type").find("javascript"), std::string::npos);
  EXPECT_NE(HeaderValue(js.headers, "Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(Get("/healthz").status, 200);
}

// Wrong tokens are counted, the form's and Bearer's alike: past kMaxTokenFailures within the window every
// token is refused with 429 until it ends, the right one too, and a session opened before still works.
// Before, a wrong Bearer token was answered at once, so the token could be guessed at request speed.
TEST_F(AdminApiTest, WrongTokensAreThrottledFormAndBearerAlike) {
  std::unique_ptr<Config> c;
  auto own = StartAdmin(&c);  // its own counter: the shared server's tests must not be throttled
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  admin_ = own->get();
  const std::string cookie = Login();
  for (int i = 0; i < AdminAuth::kMaxTokenFailures; ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ(Get("/api/queues", {"Authorization: Bearer guess" + std::to_string(i)}).status, 401) << i;
    } else {
      EXPECT_EQ(PostLogin("token=guess" + std::to_string(i) + "&next=%2F").status, 303) << i;
    }
  }
  HttpResponse bearer = Get("/api/queues", {std::string("Authorization: Bearer ") + kToken});
  EXPECT_EQ(bearer.status, 429) << bearer.body;
  EXPECT_EQ(HeaderValue(bearer.headers, "Retry-After"), std::to_string(AdminAuth::kFailureWindow.count()));
  EXPECT_EQ(PostLogin(std::string("token=") + kToken + "&next=%2F").status, 429);
  EXPECT_EQ(Get("/api/queues", {cookie}).status, 200) << "a session opened before is not affected";
  (*own)->Stop();
}

// Insecure mode (no token) answers only requests addressed to a loopback name: a page whose name a DNS
// rebinding pointed at 127.0.0.1 is its own origin (Origin = Host) and passed the CSRF checks.
TEST_F(AdminApiTest, InsecureModeAnswersOnlyRequestsToALoopbackName) {
  std::unique_ptr<Config> c;
  auto own = StartAdmin(&c, {{"ADMIN_TOKEN", ""}, {"ADMIN_INSECURE", "true"}});
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  admin_ = own->get();
  const std::string port = std::to_string(admin_->port());
  EXPECT_EQ(Get("/api/queues").status, 200);  // Host: 127.0.0.1:port
  EXPECT_EQ(Get("/api/queues", {"Host: localhost:" + port}).status, 200);
  EXPECT_EQ(Get("/api/queues", {"Host: [::1]:" + port}).status, 200);
  HttpResponse page = Get("/", {"Host: rebound.example:" + port});
  EXPECT_EQ(page.status, 403);
  HttpResponse pause = Post("/api/queues/pause", R"({"queue":"low"})",
                            {"Host: rebound.example:" + port, "Origin: http://rebound.example:" + port});
  EXPECT_EQ(pause.status, 403) << pause.body;
  EXPECT_NE(pause.body.find("host_refused"), std::string::npos) << pause.body;
  EXPECT_FALSE(Paused("low"));
  (*own)->Stop();
}

TEST_F(AdminApiTest, WrongTokenDoesNotLogIn) {
  Start();
  HttpResponse res = PostLogin("token=guess&next=%2F");
  EXPECT_EQ(res.status, 303);
  EXPECT_EQ(HeaderValue(res.headers, "Location").rfind("/login?error=1", 0), 0u);
  EXPECT_EQ(HeaderValue(res.headers, "Set-Cookie"), "");
  // An off-site next= is not followed after a successful login either.
  EXPECT_EQ(SafeNext("//evil.example/"), "/");
  EXPECT_EQ(SafeNext("https://evil.example/"), "/");
  EXPECT_EQ(SafeNext("/queues?x=1"), "/queues?x=1");
}

// Browsers drop tabs and newlines from a URL and read "\" as "/": a 303 to "/\t/evil.example/x" lands on
// http://evil.example/x. No control character or backslash anywhere in next= is followed.
TEST_F(AdminApiTest, LoginDoesNotFollowANextWithControlCharactersOrBackslashes) {
  Start();
  for (const std::string& next : {std::string("/\t/evil.example/x"), std::string("/queues\t"),
                                  std::string("/queues\\..\\evil"), std::string("/a\\b"), std::string("/\x7f/x"),
                                  std::string("/\x01/x"), std::string("/q\0/x", 5), std::string("/q\x1f")}) {
    EXPECT_EQ(SafeNext(next), "/") << ::testing::PrintToString(next);
  }
  EXPECT_EQ(SafeNext("/queues/a%09b%5Cc"), "/queues/a%09b%5Cc") << "percent-encoded, they stay in the path";
  EXPECT_EQ(SafeNext("/tasks?state=dead"), "/tasks?state=dead");

  HttpResponse res = PostLogin(std::string("token=") + kToken + "&next=%2F%09%2Fevil.example%2Fx");
  EXPECT_EQ(res.status, 303);
  EXPECT_EQ(HeaderValue(res.headers, "Location"), "/") << res.headers;
}

TEST_F(AdminApiTest, SessionPostsNeedTheCsrfTokenAndOurOrigin) {
  Start();
  std::string cookie = Login();
  EXPECT_EQ(Get("/api/queues", {cookie}).status, 200);
  EXPECT_EQ(Get("/queues", {cookie}).status, 200);
  const std::string body = R"({"queue":"low"})";
  // No token, a wrong token, a foreign Origin, no Origin: all refused, nothing changes.
  EXPECT_EQ(Post("/api/queues/pause", body, {cookie, "Origin: " + Origin()}).status, 403);
  EXPECT_EQ(Post("/api/queues/pause", body, {cookie, "Origin: " + Origin(), "X-CSRF-Token: " + std::string(64, 'a')}).status, 403);
  EXPECT_EQ(Post("/api/queues/pause", body, {cookie, "Origin: http://evil.example", "X-CSRF-Token: " + csrf_}).status, 403);
  EXPECT_EQ(Post("/api/queues/pause", body, {cookie, "X-CSRF-Token: " + csrf_}).status, 403);
  EXPECT_FALSE(Paused("low"));
  HttpResponse ok = BrowserPost(cookie, "/api/queues/pause", json{{"queue", "low"}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_TRUE(Paused("low"));
  // A login form posted from another site is refused (login CSRF).
  EXPECT_EQ(PostLogin(std::string("token=") + kToken, "http://evil.example").status, 403);
  // After logout the cookie is worthless.
  EXPECT_EQ(BrowserPost(cookie, "/logout", json::object()).status, 200);
  EXPECT_EQ(Get("/api/queues", {cookie}).status, 401);
}

TEST_F(AdminApiTest, PauseAndResumeAQueue) {
  Start();
  std::string cookie = Login();
  ASSERT_EQ(BrowserPost(cookie, "/api/queues/pause", json{{"queue", "default"}}).status, 200);
  EXPECT_TRUE(Paused("default"));
  json q = json::parse(Get("/api/queues", {cookie}).body);
  for (const auto& x : q["queues"]) EXPECT_EQ(x["paused"].get<bool>(), x["queue"] == "default") << x.dump();
  ASSERT_EQ(BrowserPost(cookie, "/api/queues/resume", json{{"queue", "default"}}).status, 200);
  EXPECT_FALSE(Paused("default"));
  EXPECT_EQ(BrowserPost(cookie, "/api/queues/pause", json{{"queue", "no such*queue"}}).status, 400);
  // A script with the bearer token needs no CSRF token (browsers never send it on their own)...
  std::string bearer = std::string("Authorization: Bearer ") + kToken;
  EXPECT_EQ(Post("/api/queues/pause", R"({"queue":"critical"})", {bearer}).status, 200);
  EXPECT_TRUE(Paused("critical"));
  // ...but a foreign Origin is still refused.
  EXPECT_EQ(Post("/api/queues/resume", R"({"queue":"critical"})", {bearer, "Origin: http://evil.example"}).status, 403);
  EXPECT_TRUE(Paused("critical"));
}

// Streams page actions: claim moves a pending entry to another consumer; release hands it back to the
// fleet (idle past VISIBILITY_TIMEOUT, so the next XAUTOCLAIM takes it); bad input is refused clearly.
TEST_F(AdminApiTest, ClaimAndReleaseAPendingEntry) {
  Start();
  std::string cookie = Login();
  const std::string stream = TaskKeys(config_->stream_prefix).Queue("default");
  ASSERT_TRUE(redis_->Command({"XGROUP", "CREATE", stream, "workers", "0", "MKSTREAM"}).ok());
  std::string id = redis_->Command({"XADD", stream, "*", "e", "x"}).value().str;
  ASSERT_TRUE(redis_->Command({"XREADGROUP", "GROUP", "workers", "stuck", "STREAMS", stream, ">"}).ok());
  auto owner_and_idle = [&] {
    auto p = redis_->Command({"XPENDING", stream, "workers", "-", "+", "1"}).value();
    return std::make_pair(p.elements.at(0).elements.at(1).str, p.elements.at(0).elements.at(2).integer);
  };
  json body = {{"stream", stream}, {"group", "workers"}, {"id", id}, {"consumer", "rescuer"}};
  ASSERT_EQ(BrowserPost(cookie, "/api/streams/claim", body).status, 200);
  EXPECT_EQ(owner_and_idle().first, "rescuer");
  ASSERT_EQ(BrowserPost(cookie, "/api/streams/release", body).status, 200);
  auto [owner, idle] = owner_and_idle();
  EXPECT_EQ(owner, "rescuer");
  EXPECT_GT(idle, config_->visibility_timeout_ms) << "released: any consumer's next XAUTOCLAIM takes it";
  EXPECT_EQ(BrowserPost(cookie, "/api/streams/claim", json{{"stream", "not:a:fleet:stream"}, {"group", "workers"},
                                                          {"id", id}, {"consumer", "x"}}).status, 400);
  EXPECT_EQ(BrowserPost(cookie, "/api/streams/release", json{{"stream", stream}, {"group", "workers"}, {"id", "1-1"}}).status,
            404);
}

TEST_F(AdminApiTest, RequeueAndDeleteDeadLetters) {
  Start();
  std::string cookie = Login();
  TaskKeys tkeys("streamfleet");
  // Two dead-lettered tasks, as the worker writes them (DeadLetterTask).
  std::vector<std::string> ids;
  for (const char* id : {"poison-1", "poison-2"}) {
    v1::TaskEnvelope t;
    t.set_id(id);
    t.set_type("noop");
    t.set_queue("default");
    t.set_payload(R"({"n":1})");
    t.add_errors("boom");
    auto add = redis_->Command({"XADD", tkeys.Queue("default"), "*", "e", t.SerializeAsString()});
    ASSERT_TRUE(add.ok());
    ASSERT_TRUE(EnsureGroup(*redis_, tkeys.Queue("default"), TaskKeys::Group()).ok());
    ASSERT_TRUE(redis_->Command({"XREADGROUP", "GROUP", TaskKeys::Group(), "w", "COUNT", "1", "STREAMS",
                                 tkeys.Queue("default"), ">"}).ok());
    ASSERT_TRUE(DeadLetterTask(*redis_, tkeys, tkeys.Queue("default"), add->str, t.SerializeAsString(), "boom", 6).ok());
  }
  json dl = json::parse(Get("/api/dead-letters", {cookie}).body);
  ASSERT_EQ(dl.size(), 2u) << dl.dump();
  EXPECT_EQ(dl[0]["kind"], "task");
  EXPECT_EQ(dl[0]["task"]["id"], "poison-1");
  EXPECT_EQ(dl[0]["task"]["errors"][0], "boom");
  for (const auto& d : dl) ids.push_back(d["id"]);
  json task = json::parse(Get("/api/tasks/poison-1", {cookie}).body);
  EXPECT_EQ(task["found_in"], "dead letters");
  EXPECT_EQ(task["envelope"]["payload"], R"({"n":1})");

  int64_t before = redis_->Command({"XLEN", tkeys.Queue("default")})->integer;
  // CSRF-less requeue is refused and changes nothing.
  EXPECT_EQ(Post("/api/dead-letters/requeue", json{{"id", ids[0]}}.dump(), {cookie, "Origin: " + Origin()}).status, 403);
  EXPECT_EQ(redis_->Command({"XLEN", tkeys.DeadLetters()})->integer, 2);
  // A field of the wrong type is the client's mistake, said as such (it was a 500 from a JSON type error).
  HttpResponse typed = BrowserPost(cookie, "/api/dead-letters/requeue", json{{"all", "yes"}});
  EXPECT_EQ(typed.status, 400) << typed.body;
  EXPECT_NE(typed.body.find("must be true or false"), std::string::npos) << typed.body;
  EXPECT_EQ(BrowserPost(cookie, "/api/generations/compact", json{{"org", 1}, {"gen", 1}, {"delete_buffer", 1}}).status,
            400);
  HttpResponse rq = BrowserPost(cookie, "/api/dead-letters/requeue", json{{"id", ids[0]}});
  ASSERT_EQ(rq.status, 200) << rq.body;
  EXPECT_EQ(json::parse(rq.body)["requeued"], 1);
  EXPECT_EQ(redis_->Command({"XLEN", tkeys.DeadLetters()})->integer, 1);
  auto last = ParseEntries(tkeys.Queue("default"), *redis_->Command({"XREVRANGE", tkeys.Queue("default"), "+", "-", "COUNT", "1"}));
  ASSERT_EQ(last.size(), 1u);
  v1::TaskEnvelope back;
  ASSERT_TRUE(back.ParseFromString(*last[0].Field("e")));
  EXPECT_EQ(back.id(), "poison-1");
  EXPECT_EQ(redis_->Command({"XLEN", tkeys.Queue("default")})->integer, before + 1);
  // Requeuing it again: it is gone.
  EXPECT_EQ(BrowserPost(cookie, "/api/dead-letters/requeue", json{{"id", ids[0]}}).status, 404);
  EXPECT_EQ(BrowserPost(cookie, "/api/dead-letters/requeue", json{{"id", "not-an-id"}}).status, 400);
  // Delete the other one.
  ASSERT_EQ(BrowserPost(cookie, "/api/dead-letters/delete", json{{"id", ids[1]}}).status, 200);
  EXPECT_EQ(redis_->Command({"XLEN", tkeys.DeadLetters()})->integer, 0);
  EXPECT_EQ(redis_->Command({"XLEN", tkeys.Queue("default")})->integer, before + 1);
}

// A compressed chunk's preview is decompressed only up to INGEST_MAX_CHUNK_BYTES (no chunk ingest accepts is
// larger): a listing decodes up to 500 dead letters, and each decompressed whatever up to 16 MiB it claimed.
TEST_F(AdminApiTest, ADeadLetterPreviewDecompressesNoMoreThanAChunkMayHold) {
  Start();
  std::string cookie = Login();
  KeySchema keys = KeySchema::FromConfig(*config_);
  auto envelope = [](const std::string& plain) {
    v1::ChunkEnvelope c;
    c.set_organization_id(3);
    c.set_generation_id(4);
    c.set_data_encoding(v1::ChunkEnvelope::DATA_ZSTD);
    c.set_data(ZstdCompress(plain));
    c.set_data_size(static_cast<int64_t>(plain.size()));
    return c.SerializeAsString();
  };
  StreamEntry small{keys.ChunkStream(0), "1-1", {{"e", envelope(std::string(1000, 'a'))}}};
  StreamEntry big{keys.ChunkStream(0), "1-2", {{"e", envelope(std::string(config_->max_chunk_bytes + 1, 'b'))}}};
  ASSERT_TRUE(DeadLetter(*redis_, keys.ChunkDeadLetterStream(), small, "compactor", "bad", 6).ok());
  ASSERT_TRUE(DeadLetter(*redis_, keys.ChunkDeadLetterStream(), big, "compactor", "bad", 6).ok());
  json listed = json::parse(Get("/api/dead-letters", {cookie}).body);
  ASSERT_EQ(listed.size(), 2u) << listed.dump();
  std::set<std::string> previews;
  for (const auto& d : listed) previews.insert(d["chunk"]["data_preview"].get<std::string>().substr(0, 20));
  EXPECT_TRUE(previews.count(std::string(20, 'a'))) << listed.dump();
  EXPECT_TRUE(previews.count("(compressed data tha")) << "the oversized one is not decompressed: " << listed.dump();
}

TEST_F(AdminApiTest, RequeueAllBringsChunkAndTaskDeadLettersBack) {
  Start();
  std::string cookie = Login();
  KeySchema keys = KeySchema::FromConfig(*config_);
  TaskKeys tkeys("streamfleet");
  // A chunk entry of ingest holds one request's envelopes: listed with how many, requeued whole.
  StreamEntry chunk{keys.ChunkStream(0), "1-1", {{"e", "chunk-envelope"}, {"e", "second-envelope"}}};
  StreamEntry task{tkeys.Queue("low"), "1-2", {{"e", "task-envelope"}}};
  ASSERT_TRUE(DeadLetter(*redis_, keys.ChunkDeadLetterStream(), chunk, "compactor", "bad", 6).ok());
  ASSERT_TRUE(DeadLetter(*redis_, tkeys.DeadLetters(), task, "workers", "bad", 6).ok());
  json listed = json::parse(Get("/api/dead-letters", {cookie}).body);
  ASSERT_EQ(listed.size(), 2u) << listed.dump();
  for (const auto& d : listed) {
    if (d["kind"] == "chunk") {
      EXPECT_EQ(d["chunks_in_entry"], 2) << d.dump();
    }
  }
  HttpResponse r = BrowserPost(cookie, "/api/dead-letters/requeue", json{{"all", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["requeued"], 2);
  auto back = ParseEntries(keys.ChunkStream(0), *redis_->Command({"XRANGE", keys.ChunkStream(0), "-", "+"}));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].fields, chunk.fields);
  EXPECT_EQ(redis_->Command({"XLEN", tkeys.Queue("low")})->integer, 1);
  EXPECT_EQ(redis_->Command({"XLEN", keys.ChunkDeadLetterStream()})->integer, 0);
}

// An operator's enqueue with a delay: one of about 9.2e15 s or more overflowed when turned into milliseconds
// (undefined behaviour); delays are bounded to 10 years now, and a number with trailing characters is refused.
TEST_F(AdminApiTest, EnqueueRefusesADelayOutOfRangeOrNotAnInteger) {
  Start();
  const std::string bearer = std::string("Authorization: Bearer ") + kToken;
  HttpResponse ok = Post("/api/tasks/enqueue", R"({"type":"noop","delay_seconds":"60"})", {bearer});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_TRUE(json::parse(ok.body)["scheduled"].get<bool>());
  for (const char* body : {R"({"type":"noop","delay_seconds":9223372036854775807})",
                           R"({"type":"noop","delay_seconds":-5})", R"({"type":"noop","delay_seconds":"12abc"})"}) {
    HttpResponse bad = Post("/api/tasks/enqueue", body, {bearer});
    EXPECT_EQ(bad.status, 400) << body << ": " << bad.body;
  }
}

TEST_F(AdminApiTest, OverviewShowsLiveGenerationProgressAndRedisStats) {
  Start();
  KeySchema keys = KeySchema::FromConfig(*config_);
  GenerationId g{7, 0, 42};
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(redis_->Command({"RPUSH", keys.BufferKey(g), "chunk"}).ok());
  ASSERT_TRUE(redis_->Command({"HSET", keys.MetaKey(g), "received_chunks", "5", "total_chunks", "20"}).ok());
  // Its idle deadline, as applying chunks sets it: what makes a buffer live (live_buffers.h).
  ASSERT_TRUE(redis_->Command({"ZADD", keys.DeadlinesKeyOf(g), "1", KeySchema::Member(g)}).ok());
  // A compacted generation's buffer, still within its TTL, with no deadline: not live.
  GenerationId done{7, 0, 43};
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(redis_->Command({"RPUSH", keys.BufferKey(done), "chunk"}).ok());
  ASSERT_TRUE(redis_->Command({"HSET", keys.ControlKey(done), "state", "compacted"}).ok());
  std::string bearer = std::string("Authorization: Bearer ") + kToken;
  HttpResponse r = Get("/api/overview", {bearer});
  ASSERT_EQ(r.status, 200) << r.body;
  json o = json::parse(r.body);
  ASSERT_EQ(o["buffers"]["live"].size(), 1u);
  const json& live = o["buffers"]["live"][0];
  EXPECT_EQ(live["organization_id"], 7);
  EXPECT_EQ(live["generation_id"], 42);
  EXPECT_EQ(live["received_chunks"], 5);
  EXPECT_EQ(live["total_chunks"], 20);
  EXPECT_EQ(live["percent"], 25);
  EXPECT_EQ(live["state"], "receiving");
  EXPECT_EQ(o["buffers"]["over_threshold"].size(), 1u);
  EXPECT_EQ(o["buffers"]["count"], 1);
  EXPECT_EQ(o["buffers"]["total_chunks"], 5);
  EXPECT_GT(o["redis"]["used_memory"].get<int64_t>(), 0);
  // Once queued for finalization (its deadline removed, as apply_chunks.lua does on the last chunk), the
  // buffer is no longer live, although it stays in Redis until its TTL.
  ASSERT_TRUE(redis_->Command({"ZREM", keys.DeadlinesKeyOf(g), KeySchema::Member(g)}).ok());
  ASSERT_TRUE(redis_->Command({"HSET", keys.ControlKey(g), "state", "finalizing"}).ok());
  json after = json::parse(Get("/api/overview", {bearer}).body);
  EXPECT_EQ(after["buffers"]["live"].size(), 0u);
  EXPECT_EQ(after["buffers"]["count"], 0);
  EXPECT_TRUE(o["redis"].contains("evicted_keys"));
  // Chunks added to a stream show as a rate once the sampler (every 100ms) has taken its next samples.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(redis_->Command({"XADD", keys.ChunkStream(0), "*", "e", "x"}).ok());
  json samples;
  bool seen = streamfleet::testing::WaitUntil([&] {
    samples = json::parse(Get("/api/overview", {bearer}).body)["samples"];
    for (const auto& s : samples) {
      if (s["chunks_in_per_s"].get<double>() > 0) return true;
    }
    return false;
  });
  EXPECT_TRUE(seen) << "no sample saw the 50 chunks: " << samples.dump();
}

TEST_F(AdminApiTest, GenerationSearchAndCompactNow) {
  Start();
  std::string cookie = Login();
  GenerationId g{3, 0, 9};
  HttpResponse none = BrowserPost(cookie, "/api/generations/compact", json{{"org", 3}, {"gen", 9}});
  EXPECT_EQ(none.status, 404) << none.body;
  EXPECT_EQ(Get("/api/generations?org=0&gen=9", {cookie}).status, 400);
  // A buffer of 3 of 4 chunks, applied by the compactor's own code (seqs out of order).
  RedisServerClock clock;
  ChunkBuffer buffer(*config_, clock);
  std::vector<ChunkItem> items;
  for (int seq : {2, 0, 1}) items.push_back({g, false, seq, "part" + std::to_string(seq) + " ", false, 4});
  ASSERT_TRUE(buffer.Apply(*redis_, items).ok());
  json d = json::parse(Get("/api/generations?org=3&gen=9", {cookie}).body);
  ASSERT_FALSE(d["buffer"].empty()) << d.dump();
  bool list_seen = false;
  for (const auto& k : d["buffer"]) {
    if (k["type"] == "list") {
      list_seen = true;
      EXPECT_EQ(k["llen"], 3);
      EXPECT_GT(k["ttl"].get<int64_t>(), 0);
      // The length only: the page refreshes every 3 s, and the text was the whole buffer, LRANGE'd,
      // decompressed and assembled each time (streamfleetctl inspect-generation still prints it).
      EXPECT_FALSE(k.contains("text")) << k.dump();
    }
    if (k["key"].get<std::string>().ends_with(":meta")) {
      EXPECT_EQ(k["hash"]["total_chunks"], "4");
    }
  }
  EXPECT_TRUE(list_seen);
  EXPECT_TRUE(d["row"].is_null());
  HttpResponse c = BrowserPost(cookie, "/api/generations/compact", json{{"org", 3}, {"gen", 9}});
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(json::parse(c.body)["chunk_count"], 3);
  json after = json::parse(Get("/api/generations?org=3&gen=9", {cookie}).body);
  ASSERT_FALSE(after["row"].is_null()) << after.dump();
  EXPECT_EQ(after["row"]["chunk_count"], 3);
  EXPECT_EQ(after["row"]["compacted_by"], "streamfleet-admin");
  EXPECT_EQ(after["row"]["text_in"], "row");
  EXPECT_TRUE(after["row"]["artifact_url"].is_null());
  // The same row once its text has moved to the object store (as migrate-artifacts leaves it): the page says
  // where the text is.
  auto before = store_->GetGeneration(9).value();
  ASSERT_TRUE(before.has_value());
  json md = json::parse(before->metadata);
  md["artifact"] = {{"url", "s3://art/fleet/artifacts/abc.zst"}, {"sha256", "abc"}, {"bytes", 18}, {"stored_bytes", 30}};
  ASSERT_TRUE(store_->ReplaceCompactedIfUnchanged(*before, std::nullopt, md.dump()).value());
  json moved = json::parse(Get("/api/generations?org=3&gen=9", {cookie}).body);
  EXPECT_EQ(moved["row"]["text_in"], "store") << moved.dump();
  EXPECT_EQ(moved["row"]["artifact_url"], "s3://art/fleet/artifacts/abc.zst");
  EXPECT_TRUE(moved["row"]["compacted_bytes"].is_null());
  // Another organization's id does not reveal the row.
  EXPECT_TRUE(json::parse(Get("/api/generations?org=4&gen=9", {cookie}).body)["row"].is_null());
  // Nor is it compacted under another organization, nor its buffer deleted: the finalization writes nothing
  // for an id another organization owns, and the buffer stays (it was deleted whatever the finalization did).
  GenerationId foreign{4, 0, 9};
  ASSERT_TRUE(buffer.Apply(*redis_, {{foreign, false, 0, "theirs", false, 1}}).ok());
  HttpResponse refused =
      BrowserPost(cookie, "/api/generations/compact", json{{"org", 4}, {"gen", 9}, {"delete_buffer", true}});
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_EQ(redis_->Command({"EXISTS", buffer.keys().BufferKey(foreign)})->integer, 1) << "the buffer is kept";
  EXPECT_EQ(store_->GetGeneration(9).value()->organization_id, 3);
}

// The task lists (GET /api/tasks) and cancel (POST /api/tasks/cancel): tasks put where the fleet puts them.
class AdminTasksTest : public AdminApiTest {
 protected:
  void SetUp() override {
    AdminApiTest::SetUp();
    Start();
    tkeys_ = TaskKeys::FromConfig(*config_);
    for (const char* q : {"critical", "default", "low"}) {
      ASSERT_TRUE(EnsureGroup(*redis_, tkeys_.Queue(q), TaskKeys::Group()).ok());
    }
  }
  std::string Enqueue(const std::string& type, const std::string& queue, int64_t delay_ms = 0) {
    int64_t now = WallClockMs();
    OperatorTask t;
    t.type = type;
    t.queue = queue;
    t.run_at_ms = delay_ms > 0 ? now + delay_ms : 0;
    auto r = EnqueueOperatorTask(*redis_, *config_, t, now);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : "";
  }
  // The next waiting entries of `queue`, read as a worker does (they are then pending: running).
  std::vector<StreamEntry> Read(const std::string& queue, const std::string& consumer, int count) {
    auto r = redis_->Command({"XREADGROUP", "GROUP", TaskKeys::Group(), consumer, "COUNT", std::to_string(count),
                              "STREAMS", tkeys_.Queue(queue), ">"});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? ParseStreamReply(*r) : std::vector<StreamEntry>{};
  }
  static v1::TaskEnvelope Envelope(const StreamEntry& e) {
    v1::TaskEnvelope t;
    EXPECT_TRUE(e.Field("e") != nullptr && t.ParseFromString(*e.Field("e")));
    return t;
  }
  std::string State(const std::string& id) {
    auto rec = ReadTaskRecord(*redis_, tkeys_, id);
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    return rec.ok() && *rec ? (*rec)->state() : "";
  }
  // Every page of a list, following next_cursor to the end; fails on a repeated id or a page over `limit`.
  json All(const std::string& cookie, const std::string& query, int limit, int* pages = nullptr) {
    json out = json::array();
    std::set<std::string> seen;
    std::string cursor;
    for (int page = 1; page < 50; ++page) {
      HttpResponse r = Get("/api/tasks?" + query + "&limit=" + std::to_string(limit) +
                               (cursor.empty() ? "" : "&cursor=" + cursor), {cookie});
      EXPECT_EQ(r.status, 200) << query << ": " << r.body;
      if (r.status != 200) break;
      json j = json::parse(r.body);
      EXPECT_LE(j["tasks"].size(), static_cast<size_t>(limit));
      for (auto& t : j["tasks"]) {
        EXPECT_TRUE(seen.insert(t["id"].get<std::string>()).second) << "listed twice: " << t.dump();
        out.push_back(t);
      }
      if (pages) *pages = page;
      cursor = j["next_cursor"].get<std::string>();
      if (cursor.empty()) break;
      EXPECT_EQ(cursor.find_first_not_of("0123456789:-"), std::string::npos) << "cursor needs no URL encoding here";
    }
    return out;
  }
  static std::vector<std::string> Ids(const json& tasks) {
    std::vector<std::string> ids;
    for (const auto& t : tasks) ids.push_back(t["id"]);
    return ids;
  }

  TaskKeys tkeys_{"streamfleet"};
};

TEST_F(AdminTasksTest, EachListShowsWhatIsThereAndPagesToTheEnd) {
  std::string cookie = Login();
  TaskLifecycle lifecycle = TaskLifecycle::FromConfig(*config_);
  // Scheduled: 5 delayed tasks, an hour and more away (in that order), of two types on two queues.
  std::vector<std::string> scheduled;
  for (int i = 0; i < 5; ++i) {
    scheduled.push_back(Enqueue(i % 2 ? "mail" : "report", i < 3 ? "default" : "low", 3600'000 + 1000 * i));
  }
  // Retrying: a task that failed once, waiting for its next attempt (as the worker schedules it).
  std::string retried = Enqueue("mail", "default");
  auto first = Read("default", "w-retry", 1);
  ASSERT_EQ(first.size(), 1u);
  v1::TaskEnvelope next = Envelope(first[0]);
  ASSERT_EQ(next.id(), retried);
  next.set_attempt(1);
  next.add_errors("attempt 1: UNAVAILABLE: smtp down");
  ASSERT_TRUE(lifecycle.Retry(*redis_, first[0].stream, first[0].id, next, WallClockMs() + 600'000,
                              "UNAVAILABLE: smtp down").ok());
  ASSERT_TRUE(redis_->AwaitSent().ok()) << "the record says retry_scheduled";
  // Running: 3 tasks a worker holds.
  std::vector<std::string> running;
  for (int i = 0; i < 3; ++i) running.push_back(Enqueue("report", "critical"));
  auto held = Read("critical", "host-1-0", 3);
  ASSERT_EQ(held.size(), 3u);
  // Dead and succeeded: two tasks of queue low, read and finished each way.
  std::string dead = Enqueue("report", "low"), done = Enqueue("mail", "low");
  auto two = Read("low", "w-low", 2);
  ASSERT_EQ(two.size(), 2u);
  v1::TaskEnvelope dead_task = Envelope(two[0]);
  ASSERT_TRUE(lifecycle.DeadLetter(*redis_, two[0].stream, two[0].id, *two[0].Field("e"),
                                   "failed after 5 attempts: boom", 5, &dead_task).ok());
  FinishedTasks finished;
  ASSERT_TRUE(lifecycle.Succeeded(*redis_, finished, two[1].stream, two[1].id, done, "42", 1).ok());
  ASSERT_TRUE(lifecycle.Flush(*redis_, finished).ok());

  int pages = 0;
  json s = All(cookie, "state=scheduled", 2, &pages);
  EXPECT_EQ(Ids(s), scheduled) << "earliest first, every one once: " << s.dump();
  EXPECT_EQ(pages, 3);
  for (const auto& t : s) {
    EXPECT_EQ(t["attempt"], 0);
    EXPECT_GT(t["at_ms"].get<int64_t>(), WallClockMs() + 3500'000) << "when it runs";
    EXPECT_EQ(t["record_state"], "scheduled");
  }
  EXPECT_EQ(s[3]["queue"], "low");
  EXPECT_EQ(s[1]["type"], "mail");
  // Filters: by queue, by type, both.
  EXPECT_EQ(Ids(All(cookie, "state=scheduled&queue=low", 1)), (std::vector<std::string>{scheduled[3], scheduled[4]}));
  EXPECT_EQ(Ids(All(cookie, "state=scheduled&type=mail", 10)), (std::vector<std::string>{scheduled[1], scheduled[3]}));
  EXPECT_EQ(Ids(All(cookie, "state=scheduled&queue=default&type=mail", 10)), (std::vector<std::string>{scheduled[1]}));
  EXPECT_TRUE(All(cookie, "state=scheduled&queue=critical", 10).empty());
  // One page at a time: the first page of 2 says where the next starts.
  json page1 = json::parse(Get("/api/tasks?state=scheduled&limit=2", {cookie}).body);
  EXPECT_EQ(page1["state"], "scheduled");
  EXPECT_EQ(page1["tasks"].size(), 2u);
  EXPECT_FALSE(page1["next_cursor"].get<std::string>().empty());
  json whole = json::parse(Get("/api/tasks?state=scheduled", {cookie}).body);
  EXPECT_EQ(whole["tasks"].size(), 5u) << "default limit 50";
  EXPECT_EQ(whole["next_cursor"], "");

  json r = All(cookie, "state=retrying", 10);
  ASSERT_EQ(r.size(), 1u) << r.dump();
  EXPECT_EQ(r[0]["id"], retried);
  EXPECT_EQ(r[0]["attempt"], 1);
  EXPECT_EQ(r[0]["detail"], "attempt 1: UNAVAILABLE: smtp down");
  EXPECT_EQ(r[0]["record_state"], "retry_scheduled");
  EXPECT_TRUE(All(cookie, "state=retrying&type=report", 10).empty());

  json b = All(cookie, "state=running", 2, &pages);
  EXPECT_EQ(Ids(b), running) << b.dump();
  EXPECT_EQ(pages, 2);
  for (const auto& t : b) {
    EXPECT_EQ(t["detail"], "host-1-0") << "the consumer holding it";
    EXPECT_EQ(t["queue"], "critical");
    EXPECT_FALSE(t["entry_id"].get<std::string>().empty());
    EXPECT_FALSE(t.contains("record_state"));
  }
  EXPECT_TRUE(All(cookie, "state=running&queue=default", 10).empty());

  json d = All(cookie, "state=dead", 10);
  ASSERT_EQ(d.size(), 1u) << d.dump();
  EXPECT_EQ(d[0]["id"], dead);
  EXPECT_EQ(d[0]["detail"], "failed after 5 attempts: boom");
  EXPECT_FALSE(d[0]["entry_id"].get<std::string>().empty()) << "the dead letter's id (the dead letters page)";

  json ok = All(cookie, "state=succeeded", 1);
  ASSERT_EQ(ok.size(), 1u) << ok.dump();
  EXPECT_EQ(ok[0]["id"], done);
  EXPECT_EQ(ok[0]["detail"], "42");
  EXPECT_TRUE(All(cookie, "state=succeeded&type=report", 10).empty());
}

TEST_F(AdminTasksTest, CancelOnlyATaskThatHasNotStarted) {
  std::string cookie = Login();
  std::string later = Enqueue("report", "default", 3600'000);
  ASSERT_EQ(State(later), "scheduled");
  HttpResponse c = BrowserPost(cookie, "/api/tasks/cancel", json{{"id", later}});
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(json::parse(c.body), (json{{"id", later}, {"state", "cancelled"}, {"previous_state", "scheduled"}}));
  EXPECT_EQ(State(later), "cancelled");
  EXPECT_FALSE(redis_->Command({"ZSCORE", tkeys_.Cancelled(), later})->is_nil()) << "the marker workers check";
  // It stays in the scheduled set until it is due (the worker skips it then); the list says it is cancelled.
  json s = json::parse(Get("/api/tasks?state=scheduled", {cookie}).body)["tasks"];
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0]["record_state"], "cancelled");
  // Again: nothing changes, still an answer of success.
  HttpResponse again = BrowserPost(cookie, "/api/tasks/cancel", json{{"id", later}});
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body)["previous_state"], "cancelled");

  // A task waiting for a retry can be cancelled too.
  TaskLifecycle lifecycle = TaskLifecycle::FromConfig(*config_);
  std::string retried = Enqueue("mail", "low");
  auto first = Read("low", "w", 1);
  ASSERT_EQ(first.size(), 1u);
  v1::TaskEnvelope next = Envelope(first[0]);
  next.set_attempt(1);
  ASSERT_TRUE(lifecycle.Retry(*redis_, first[0].stream, first[0].id, next, WallClockMs() + 600'000, "boom").ok());
  ASSERT_TRUE(redis_->AwaitSent().ok()) << "the record says retry_scheduled";
  HttpResponse rc = BrowserPost(cookie, "/api/tasks/cancel", json{{"id", retried}});
  ASSERT_EQ(rc.status, 200) << rc.body;
  EXPECT_EQ(json::parse(rc.body)["previous_state"], "retry_scheduled");
  EXPECT_EQ(State(retried), "cancelled");

  // Running or finished: too late (409, with the state), and nothing changes.
  std::string busy = Enqueue("report", "critical"), done = Enqueue("report", "critical");
  auto held = Read("critical", "host-1-0", 2);
  ASSERT_EQ(held.size(), 2u);
  lifecycle.Running(*redis_, busy, "host-1-0", held[0].id);
  FinishedTasks finished;
  ASSERT_TRUE(lifecycle.Succeeded(*redis_, finished, held[1].stream, held[1].id, done, "ok", 1).ok());
  ASSERT_TRUE(lifecycle.Flush(*redis_, finished).ok());
  for (const auto& [id, state] : {std::pair{busy, "running"}, std::pair{done, "succeeded"}}) {
    HttpResponse late = BrowserPost(cookie, "/api/tasks/cancel", json{{"id", id}});
    EXPECT_EQ(late.status, 409) << late.body;
    json j = json::parse(late.body);
    EXPECT_EQ(j["error"], "too_late");
    EXPECT_EQ(j["state"], state);
    EXPECT_NE(j["detail"].get<std::string>().find("only a task that has not started"), std::string::npos) << j.dump();
    EXPECT_EQ(State(id), state) << "a refused cancel changes nothing";
    EXPECT_TRUE(redis_->Command({"ZSCORE", tkeys_.Cancelled(), id})->is_nil());
  }

  // Unknown: 404. Not an id at all: 400.
  HttpResponse unknown = BrowserPost(cookie, "/api/tasks/cancel", json{{"id", "no-such-task"}});
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(json::parse(unknown.body)["error"], "not_found");
  for (const json& body : {json{{"id", ""}}, json{{"id", "a/b"}}, json{{"id", "with space"}}, json{{"id", 42}},
                           json{{"id", std::string(201, 'x')}}, json::object()}) {
    HttpResponse bad = BrowserPost(cookie, "/api/tasks/cancel", body);
    EXPECT_EQ(bad.status, 400) << body.dump() << ": " << bad.body;
    EXPECT_EQ(json::parse(bad.body)["error"], "invalid_request") << bad.body;
  }
  // GET is not how to cancel.
  EXPECT_EQ(Get("/api/tasks/cancel", {cookie}).status, 404) << "no task named cancel: a read, not an action";
}

TEST_F(AdminTasksTest, BadListParametersAreRefusedClearly) {
  std::string cookie = Login();
  struct Case {
    std::string query, says;
  };
  for (const Case& c : std::vector<Case>{{"", "state must be"},
                                         {"state=busy", "state must be"},
                                         {"state=Scheduled", "state must be"},
                                         {"state=dead&limit=0", "limit"},
                                         {"state=dead&limit=1001", "limit"},
                                         {"state=dead&limit=ten", "limit"},
                                         {"state=dead&limit=5x", "limit"},
                                         {"state=dead&limit=-1", "limit"},
                                         {"state=dead&cursor=garbage", "cursor"},
                                         {"state=scheduled&cursor=0:x", "cursor"},
                                         {"state=running&queue=Bad%20Queue", "queue"},
                                         {"state=dead&queue=" + std::string(65, 'q'), "queue"},
                                         {"state=dead&type=" + std::string(201, 't'), "type"},
                                         {"state=dead&type=a%20b", "type"}}) {
    HttpResponse r = Get("/api/tasks?" + c.query, {cookie});
    EXPECT_EQ(r.status, 400) << c.query << ": " << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["error"], "invalid_request") << c.query;
    EXPECT_NE(j["detail"].get<std::string>().find(c.says), std::string::npos) << c.query << ": " << r.body;
  }
  EXPECT_EQ(Get("/api/tasks?state=dead&limit=1000", {cookie}).status, 200);
  EXPECT_EQ(Get("/api/tasks?state=succeeded&limit=1", {cookie}).status, 200);
}

TEST_F(AdminTasksTest, TheAuthRulesOfTheOtherActionsApply) {
  std::string later = Enqueue("report", "default", 3600'000);
  const std::string body = json{{"id", later}}.dump();
  // Unauthenticated: 401 for the API, the login form for the page.
  EXPECT_EQ(Get("/api/tasks?state=scheduled").status, 401);
  EXPECT_EQ(Get("/api/tasks?state=scheduled", {"Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(Post("/api/tasks/cancel", body, {"Origin: " + Origin()}).status, 401);
  HttpResponse page = Get("/tasks?state=dead");
  EXPECT_EQ(page.status, 302);
  EXPECT_EQ(HeaderValue(page.headers, "Location"), "/login?next=/tasks%3Fstate%3Ddead");
  // A session without the CSRF token or from another origin: refused.
  std::string cookie = Login();
  EXPECT_EQ(Get("/tasks?state=dead", {cookie}).status, 200);
  EXPECT_EQ(Post("/api/tasks/cancel", body, {cookie, "Origin: " + Origin()}).status, 403);
  EXPECT_EQ(Post("/api/tasks/cancel", body, {cookie, "X-CSRF-Token: " + csrf_}).status, 403);
  EXPECT_EQ(Post("/api/tasks/cancel", body, {cookie, "Origin: http://evil.example", "X-CSRF-Token: " + csrf_}).status,
            403);
  std::string bearer = std::string("Authorization: Bearer ") + kToken;
  EXPECT_EQ(Post("/api/tasks/cancel", body, {bearer, "Origin: http://evil.example"}).status, 403);
  EXPECT_EQ(State(later), "scheduled") << "no refused request cancelled it";
  // A script with the bearer token needs no CSRF token.
  EXPECT_EQ(Get("/api/tasks?state=scheduled", {bearer}).status, 200);
  HttpResponse ok = Post("/api/tasks/cancel", body, {bearer});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(State(later), "cancelled");
}

TEST(SamplerTest, RatesAreCounterDifferencesPerSecond) {
  Counters a, b;
  a.chunks_added = 100;
  b.chunks_added = 300;
  a.tasks_read = 10;
  b.tasks_read = 5;  // went down (stream deleted): no negative rate
  b.chunk_lag = 7;
  Sample s = RateBetween(a, b, 2000);
  EXPECT_DOUBLE_EQ(s.chunks_in_per_s, 100.0);
  EXPECT_DOUBLE_EQ(s.tasks_out_per_s, 0.0);
  EXPECT_EQ(s.chunk_lag, 7);
}

TEST(AdminConfigTest, DefaultsAndMalformedValues) {
  auto d = LoadConfig(streamfleet::testing::MapEnv({}), "0.0.0.0:9103");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->admin_listen, "0.0.0.0:8090");
  EXPECT_EQ(d->admin_token, "");
  EXPECT_FALSE(d->admin_insecure);
  EXPECT_EQ(d->admin_sample_interval_ms, 2000);
  auto bad_listen = LoadConfig(streamfleet::testing::MapEnv({{"ADMIN_LISTEN", "nope"}}), "0.0.0.0:9103");
  ASSERT_FALSE(bad_listen.ok());
  EXPECT_NE(bad_listen.status().message().find("ADMIN_LISTEN"), std::string::npos);
  EXPECT_FALSE(LoadConfig(streamfleet::testing::MapEnv({{"ADMIN_INSECURE", "maybe"}}), "0.0.0.0:9103").ok());
  EXPECT_FALSE(LoadConfig(streamfleet::testing::MapEnv({{"ADMIN_SAMPLE_INTERVAL", "10ms"}}), "0.0.0.0:9103").ok());
}

TEST(AuthTest, CookieParsingAndConstantTimeCompare) {
  EXPECT_EQ(CookieValue("a=1; sf_admin=abc; b=2", "sf_admin").value_or(""), "abc");
  EXPECT_FALSE(CookieValue("xsf_admin=abc", "sf_admin").has_value());
  EXPECT_TRUE(SecretEquals("abc", "abc"));
  EXPECT_FALSE(SecretEquals("abc", "abd"));
  EXPECT_FALSE(SecretEquals("abc", "abcd"));
  EXPECT_FALSE(SecretEquals("", "a"));
  AdminAuth none("", false);
  EXPECT_FALSE(none.TokenMatches(""));
}

}  // namespace
}  // namespace streamfleet::admin
