// RedisClient over TLS against Debian's redis-server with --tls-port, certificates made by the test
// (components/testing/scripts/make_test_certs.sh): commands, pipelines, large values and scripts over TLS;
// a wrong CA, a wrong host name, an expired certificate refused with a clear error; mutual TLS; rotated
// certificate files read by the next connection; a server restart in the middle (the lazy client reconnects);
// REDIS_TLS_INSECURE for development; cluster mode over TLS.
// The same for AsyncRedis (the event-loop client): many threads pipelined on one TLS connection, large values,
// NOSCRIPT repair, a SIGKILLed server with every callback answered once, a command timeout, refused
// certificates and mutual TLS.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "hanging_host_lookup.h"
#include "streamfleet/redis/async_redis.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/testing/redis_server.h"

namespace streamfleet {
namespace {

using namespace std::chrono_literals;

class TlsServer {
 public:
  TlsServer(const std::string& certs, const std::string& cert, bool auth_clients,
            std::vector<std::string> extra_args = {})
      : certs_(certs), cert_(cert), auth_clients_(auth_clients), port_(testing::FreePort()),
        extra_args_(std::move(extra_args)) {
    Start();
  }
  ~TlsServer() { Kill(); }
  void Start() {
    std::vector<std::string> args = {"redis-server", "--port", "0", "--tls-port", std::to_string(port_), "--bind",
                                     "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning", "--logfile", certs_ + "/redis-" + std::to_string(port_) + ".log",
                                     "--tls-cert-file", certs_ + "/" + cert_, "--tls-key-file", certs_ + "/server.key",
                                     "--tls-ca-cert-file", certs_ + "/ca.crt", "--tls-auth-clients",
                                     auth_clients_ ? "yes" : "no", "--dir", certs_};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    pid_ = testing::SpawnProcess(args);
    // Listening (a TCP connect succeeds) is enough; the tests say what a handshake must do.
    for (int i = 0; i < 200; ++i) {
      if (system(("bash -c '</dev/tcp/127.0.0.1/" + std::to_string(port_) + "' 2>/dev/null").c_str()) == 0) return;
      std::this_thread::sleep_for(25ms);
    }
    FAIL() << "redis-server --tls-port did not start";
  }
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  RedisConfig Config() const {
    RedisConfig c;
    c.host = "127.0.0.1";
    c.port = port_;
    c.connect_timeout_ms = 2000;
    c.command_timeout_ms = 3000;
    c.tls.enabled = true;
    c.tls.ca_file = certs_ + "/ca.crt";
    return c;
  }
  int port() const { return port_; }
  int pid() const { return pid_; }

 private:
  std::string certs_, cert_;
  bool auth_clients_;
  int port_;
  std::vector<std::string> extra_args_;
  int pid_ = -1;
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(testing::TempPath("sf-tls-certs"));
    std::string cmd = std::string("bash ") + STREAMFLEET_TEST_CERTS_SCRIPT + " " + *certs_;
    ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*certs_);
    delete certs_;
  }
  static inline std::string* certs_ = nullptr;
};

// Over TLS as over plain TCP (redis_test.cc, HostLookupTest): a host name whose lookup hangs fails the
// connect within the connect timeout; a name that resolves is connected to and verified by the name the
// certificate carries.
TEST_F(TlsTest, AHangingLookupFailsTheTlsConnectWithinTheConnectTimeout) {
  TlsServer server(*certs_, "server.crt", false);
  testing::HangingHostLookup hanging_lookup;
  RedisConfig hanging = server.Config();
  hanging.host = testing::HangingHostLookup::kHost;
  hanging.connect_timeout_ms = 300;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = RedisClient::Connect(hanging);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("longer than the connect timeout"), std::string::npos) << r.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3)) << "the connect waited for the lookup";
  RedisConfig named = server.Config();
  named.host = "redis.test";
  named.tls.server_name = "localhost";  // the certificate's name
  auto ok = RedisClient::Connect(named);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE((*ok)->Command({"PING"}).ok());
}

TEST_F(TlsTest, CommandsPipelinesLargeValuesAndScriptsOverTls) {
  TlsServer server(*certs_, "server.crt", false);
  auto c = RedisClient::Connect(server.Config());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const std::string big(3 * 1024 * 1024 + 7, 'x');  // many TLS records each way
  ASSERT_TRUE((*c)->Command({"SET", "big", big}).ok());
  EXPECT_EQ((*c)->Command({"GET", "big"})->str, big);
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < 1000; ++i) cmds.push_back({"INCR", "n"});
  auto p = (*c)->Pipeline(cmds);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)[999].integer, 1000);
  LuaScript script("return redis.call('GET', KEYS[1])");
  EXPECT_EQ((*c)->Eval(script, {"n"}, {})->str, "1000");
  ASSERT_TRUE((*c)->Send({{"SET", "deferred", "1"}}).ok());
  ASSERT_TRUE((*c)->AwaitSent().ok());
  EXPECT_EQ((*c)->Command({"GET", "deferred"})->str, "1");
  // A blocking read longer than nothing arrives: the extra timeout applies over TLS too.
  auto t0 = std::chrono::steady_clock::now();
  auto x = (*c)->Command({"XREAD", "BLOCK", "300", "STREAMS", "nothing", "$"}, 300);
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_TRUE(x->is_nil());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
}

// Quiet sends (RedisConfig::quiet_sends, what the queue-worker's acks use) over TLS: the server sends no
// TLS record for them, and every later reply is still its own command's.
TEST_F(TlsTest, QuietSendsKeepRepliesInStepOverTls) {
  TlsServer server(*certs_, "server.crt", false);
  RedisConfig config = server.Config();
  config.quiet_sends = true;
  auto c = RedisClient::Connect(config);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  for (int i = 0; i < 500; ++i) ASSERT_TRUE((*c)->Send({{"INCR", "n"}, {"SET", "s", "x"}, {"INCR", "s"}}).ok());
  auto r = (*c)->Command({"GET", "n"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->str, "500");
  EXPECT_EQ((*c)->DeferredErrors(), 0) << "no reply came for the failing INCRs either";
  ASSERT_TRUE((*c)->Send({{"SET", "last", "1"}}).ok());
  ASSERT_TRUE((*c)->AwaitSent().ok());
  auto other = RedisClient::Connect(server.Config()).value();
  EXPECT_EQ(other->Command({"GET", "last"})->str, "1");
}

TEST_F(TlsTest, AWrongCaAWrongNameAndAnExpiredCertificateAreRefusedWithTheReason) {
  TlsServer server(*certs_, "server.crt", false);
  RedisConfig wrong_ca = server.Config();
  wrong_ca.tls.ca_file = *certs_ + "/other-ca.crt";
  auto c = RedisClient::Connect(wrong_ca);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnauthenticated) << c.status().ToString();
  EXPECT_NE(c.status().message().find("certificate verify failed"), std::string::npos) << c.status().ToString();

  RedisConfig wrong_name = server.Config();
  wrong_name.tls.server_name = "redis.example.com";
  c = RedisClient::Connect(wrong_name);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("hostname mismatch"), std::string::npos) << c.status().ToString();
  RedisConfig by_name = server.Config();
  by_name.host = "localhost";  // the certificate's DNS name: verified as a name, sent as SNI
  EXPECT_TRUE(RedisClient::Connect(by_name).ok());

  TlsServer expired(*certs_, "expired.crt", false);
  c = RedisClient::Connect(expired.Config());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("certificate has expired"), std::string::npos) << c.status().ToString();

  RedisConfig missing = server.Config();
  missing.tls.ca_file = *certs_ + "/no-such-ca.crt";
  c = RedisClient::Connect(missing);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("REDIS_TLS_CA"), std::string::npos) << c.status().ToString();

  // Development only: no verification at all.
  RedisConfig insecure = wrong_ca;
  insecure.tls.insecure = true;
  auto ok = RedisClient::Connect(insecure);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)->Command({"PING"})->str, "PONG");
}

TEST_F(TlsTest, MutualTlsNeedsTheClientCertificate) {
  TlsServer server(*certs_, "server.crt", /*auth_clients=*/true);
  auto anonymous = RedisClient::Connect(server.Config());
  bool refused = !anonymous.ok() || !(*anonymous)->Command({"PING"}).ok();
  EXPECT_TRUE(refused) << "a client without a certificate was served";
  RedisConfig with_cert = server.Config();
  with_cert.tls.cert_file = *certs_ + "/client.crt";
  with_cert.tls.key_file = *certs_ + "/client.key";
  auto c = RedisClient::Connect(with_cert);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->Command({"PING"})->str, "PONG");
}

// Rotated certificate files are read by the next connection, without a restart: a mounted Kubernetes Secret
// is updated in place (cert-manager renews it), and a reconnect after a Redis restart or failover must use
// what is there now. Half a rotation (a new certificate whose key has not been written yet) keeps the files
// that worked.
TEST_F(TlsTest, RotatedCertificateFilesAreReadByTheNextConnection) {
  TlsServer server(*certs_, "server.crt", /*auth_clients=*/true);
  const std::string dir = testing::TempPath("sf-tls-rotate");
  std::filesystem::create_directories(dir);
  // As the kubelet does: the new file is written beside and renamed over, never seen half-written.
  auto put = [&](const std::string& from, const std::string& to) {
    std::filesystem::copy_file(*certs_ + "/" + from, dir + "/" + to + ".new",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(dir + "/" + to + ".new", dir + "/" + to);
  };
  put("other-ca.crt", "ca.crt");
  put("client.crt", "tls.crt");
  put("client.key", "tls.key");
  RedisConfig config = server.Config();
  config.tls.ca_file = dir + "/ca.crt";
  config.tls.cert_file = dir + "/tls.crt";
  config.tls.key_file = dir + "/tls.key";
  auto c = RedisClient::Connect(config);
  ASSERT_FALSE(c.ok()) << "a server signed by another CA was trusted";
  EXPECT_NE(c.status().message().find("certificate verify failed"), std::string::npos) << c.status().ToString();

  put("ca.crt", "ca.crt");  // the CA rotated to the one that signed the server
  c = RedisClient::Connect(config);
  ASSERT_TRUE(c.ok()) << "the rotated CA file was not read: " << c.status().ToString();
  EXPECT_EQ((*c)->Command({"PING"})->str, "PONG");

  put("server.crt", "tls.crt");  // half a rotation: this certificate's key is not tls.key
  auto d = RedisClient::Connect(config);
  ASSERT_TRUE(d.ok()) << "half a rotation broke new connections: " << d.status().ToString();
  EXPECT_EQ((*d)->Command({"PING"})->str, "PONG");

  // The event-loop client's connections are opened the same way.
  AsyncRedis async(config);
  auto r = async.Command({"PING"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->str, "PONG");
  std::filesystem::remove_all(dir);
}

TEST_F(TlsTest, ALazyClientReconnectsAfterTheServerRestarts) {
  TlsServer server(*certs_, "server.crt", false);
  auto c = RedisClient::Lazy(server.Config());
  ASSERT_TRUE(c->Command({"SET", "k", "1"}).ok());
  server.Kill();
  EXPECT_FALSE(c->Command({"GET", "k"}).ok()) << "a dead server answered";
  server.Start();
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    back = c->Command({"PING"}).ok();
    if (!back) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(back) << "the client did not reconnect over TLS";
}

// Redis Cluster over TLS (tls-cluster: the nodes' bus and the ports CLUSTER SLOTS reports are TLS too): three
// masters joined by redis-cli --tls; the client routes keys, pipelines and scripts over the masters it learned
// through TLS, follows MOVED after a slot moved, and refuses a cluster whose certificates it does not trust.
TEST_F(TlsTest, ClusterModeRoutesOverTls) {
  std::vector<std::unique_ptr<TlsServer>> nodes;
  std::string joined;
  for (int i = 0; i < 3; ++i) {
    // The bus port is set apart: the default (data port + 10000) overflows for ports above 55535. The bus
    // always verifies its peers, and a node connects to the others with its client certificate (the server
    // certificate is for serverAuth only).
    int bus = testing::FreePort();
    nodes.push_back(std::make_unique<TlsServer>(
        *certs_, "server.crt", false,
        std::vector<std::string>{"--cluster-enabled", "yes", "--tls-cluster", "yes", "--cluster-port",
                                 std::to_string(bus), "--cluster-config-file",
                                 "nodes-tls-" + std::to_string(bus) + ".conf", "--tls-client-cert-file",
                                 *certs_ + "/client.crt", "--tls-client-key-file", *certs_ + "/client.key"}));
    joined += " 127.0.0.1:" + std::to_string(nodes.back()->port());
  }
  std::string create = "timeout 60 redis-cli --tls --cacert " + *certs_ + "/ca.crt --cluster create" + joined +
                       " --cluster-replicas 0 --cluster-yes >" + *certs_ + "/create.log 2>&1";
  ASSERT_EQ(system(create.c_str()), 0) << create;
  for (auto& n : nodes) {
    auto direct = RedisClient::Connect(n->Config());
    ASSERT_TRUE(direct.ok());
    bool ok = false;
    for (int i = 0; i < 200 && !ok; ++i) {
      auto info = (*direct)->Command({"CLUSTER", "INFO"});
      ok = info.ok() && info->str.find("cluster_state:ok") != std::string::npos;
      if (!ok) std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(ok) << "node " << n->port() << " never reported cluster_state:ok";
  }

  RedisConfig c = nodes[0]->Config();
  c.cluster = true;
  for (auto& n : nodes) c.seeds.push_back("127.0.0.1:" + std::to_string(n->port()));
  auto client = RedisClient::Connect(c);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->Masters().size(), 3u);
  std::vector<std::vector<std::string>> sets, gets;
  for (int i = 0; i < 300; ++i) {
    sets.push_back({"SET", "k" + std::to_string(i), std::string(1000, static_cast<char>('a' + i % 26))});
    gets.push_back({"GET", "k" + std::to_string(i)});
  }
  ASSERT_TRUE((*client)->Pipeline(sets).ok());
  auto got = (*client)->Pipeline(gets);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  for (int i = 0; i < 300; ++i) EXPECT_EQ((*got)[i].str, std::string(1000, static_cast<char>('a' + i % 26))) << i;
  // Keys really spread: every master holds some.
  for (auto& n : nodes) EXPECT_GT((*RedisClient::Connect(n->Config()))->Command({"DBSIZE"})->integer, 0);
  LuaScript script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  EXPECT_EQ((*client)->Eval(script, {"counter"}, {"5"})->integer, 5);

  // Move an empty slot to another master behind the client's back (CLUSTER SETSLOT NODE on every node): its
  // next write there is answered MOVED, which it follows over TLS.
  const std::string key = "moved-key";
  long long slot = (*client)->Command({"CLUSTER", "KEYSLOT", key})->integer;
  std::string from, to;
  auto slots = (*client)->CommandOn(c.seeds[0], {"CLUSTER", "SLOTS"});
  ASSERT_TRUE(slots.ok()) << slots.status().ToString();
  for (const auto& range : slots->elements) {
    if (range.elements[0].integer <= slot && slot <= range.elements[1].integer) {
      from = "127.0.0.1:" + std::to_string(range.elements[2].elements[1].integer);
    }
  }
  ASSERT_FALSE(from.empty());
  to = from == c.seeds[0] ? c.seeds[1] : c.seeds[0];
  ASSERT_EQ((*client)->CommandOn(from, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)})->integer, 0);
  std::string to_id = (*client)->CommandOn(to, {"CLUSTER", "MYID"})->str;
  for (const std::string& node : {to, from}) {
    ASSERT_TRUE((*client)->CommandOn(node, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id}).ok());
  }
  for (const auto& node : c.seeds) {
    if (node != to && node != from) {
      ASSERT_TRUE((*client)->CommandOn(node, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id}).ok());
    }
  }
  ASSERT_TRUE((*client)->Command({"SET", key, "after the move"}).ok());
  EXPECT_EQ((*client)->CommandOn(to, {"GET", key})->str, "after the move") << "not written to the new owner";
  EXPECT_EQ((*client)->Command({"GET", key})->str, "after the move");

  // A client that does not trust the nodes' certificate learns nothing.
  RedisConfig untrusted = c;
  untrusted.tls.ca_file = *certs_ + "/other-ca.crt";
  auto refused = RedisClient::Connect(untrusted);
  EXPECT_FALSE(refused.ok());
}

// Eight threads share one AsyncRedis over TLS: every INCR runs exactly once and is answered to its own
// caller; 3 MiB values go both ways; a 1,000-command pipeline; an EVALSHA the server does not know is
// repaired (re-sent as EVAL).
TEST_F(TlsTest, AsyncClientPipelinesOverTlsFromManyThreads) {
  TlsServer server(*certs_, "server.crt", false);
  AsyncRedis redis(server.Config());
  constexpr int kThreads = 8, kEach = 500;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::vector<std::vector<long long>> seen(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = redis.Command({"INCR", "counter"});
        if (!r.ok()) {
          ++failures;
          continue;
        }
        seen[t].push_back(r->integer);
        // Each thread's own key too: a reply delivered to the wrong caller would show here.
        auto mine = redis.Command({"INCR", "mine:" + std::to_string(t)});
        if (!mine.ok() || mine->integer != i + 1) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<long long> all;
  for (auto& v : seen) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<long long>(i + 1)) << "an INCR ran twice or never";
  EXPECT_EQ(redis.connects(), 1) << "one connection for all threads";

  const std::string big(3 * 1024 * 1024 + 7, 'y');
  ASSERT_TRUE(redis.Command({"SET", "big", big}).ok());
  auto got = redis.Command({"GET", "big"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->str, big);

  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < 1000; ++i) cmds.push_back({"RPUSH", "list", std::to_string(i)});
  auto p = redis.Pipeline(cmds);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)[999].integer, 1000);

  LuaScript script("return redis.call('LLEN', KEYS[1]) + 7");
  ASSERT_TRUE(redis.Command({"SCRIPT", "FLUSH"}).ok());
  auto e = redis.Eval(script, {"list"}, {});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->integer, 1007);
}

// The server is SIGKILLed with commands parked (BLPOP) and queued: each callback is answered exactly once,
// kUnavailable; once the server is back the client reconnects by itself. A server that stops answering
// (SIGSTOP) costs one kDeadlineExceeded after the command timeout.
TEST_F(TlsTest, AsyncClientFollowsAServerRestartAndTimesOutWithEveryCallbackOnce) {
  TlsServer server(*certs_, "server.crt", false);
  RedisConfig config = server.Config();
  config.command_timeout_ms = 1500;
  AsyncRedis redis(config);
  ASSERT_TRUE(redis.Command({"SET", "k", "1"}).ok());
  std::mutex mu;
  std::vector<int> answered(31, 0);
  std::vector<Status> results(31);
  std::atomic<int> done{0};
  for (int i = 0; i < 31; ++i) {
    // The first parks the connection; the others queue behind it on the same connection.
    std::vector<std::string> argv = i == 0 ? std::vector<std::string>{"BLPOP", "never", "0"}
                                           : std::vector<std::string>{"GET", "k"};
    redis.Send(
        argv,
        [&, i](StatusOr<RedisValue> r) {
          std::lock_guard<std::mutex> l(mu);
          ++answered[i];
          results[i] = r.status();
          ++done;
        },
        60000);
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(done.load(), 0) << "answered while the server was parked";
  server.Kill();
  for (int i = 0; i < 300 && done.load() < 31; ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(50ms);  // a second answer would show up here
  ASSERT_EQ(done.load(), 31);
  for (int i = 0; i < 31; ++i) {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_EQ(answered[i], 1) << i;
    EXPECT_EQ(results[i].code(), StatusCode::kUnavailable) << i << ": " << results[i].ToString();
  }
  EXPECT_FALSE(redis.connected());
  server.Start();
  bool back = false;
  for (int i = 0; i < 200 && !back; ++i) {
    back = redis.Command({"PING"}).ok();
    if (!back) std::this_thread::sleep_for(25ms);
  }
  ASSERT_TRUE(back) << "the async client did not reconnect over TLS";
  EXPECT_EQ(redis.connects(), 2);

  ASSERT_TRUE(redis.Command({"SET", "k", "2"}).ok());
  std::promise<Status> stuck;
  auto stuck_result = stuck.get_future();
  std::atomic<int> calls{0};
  ASSERT_EQ(kill(server.pid(), SIGSTOP), 0);
  auto t0 = std::chrono::steady_clock::now();
  redis.Send({"GET", "k"}, [&](StatusOr<RedisValue> r) {
    if (calls.fetch_add(1) == 0) stuck.set_value(r.status());
  });
  bool ready = stuck_result.wait_for(10s) == std::future_status::ready;
  ASSERT_EQ(kill(server.pid(), SIGCONT), 0);
  ASSERT_TRUE(ready) << "no answer while the server was stopped";
  Status s = stuck_result.get();
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.ToString();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1400ms);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(calls.load(), 1);
  auto again = redis.Command({"GET", "k"});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->str, "2");
}

// The async client verifies like the blocking one: a wrong CA fails every command with the reason (never a
// plain-text fallback); mutual TLS works with the client certificate and is refused without it.
TEST_F(TlsTest, AsyncClientRefusesAnUntrustedServerAndSpeaksMutualTls) {
  TlsServer server(*certs_, "server.crt", false);
  RedisConfig wrong_ca = server.Config();
  wrong_ca.tls.ca_file = *certs_ + "/other-ca.crt";
  {
    AsyncRedis redis(wrong_ca);
    auto r = redis.Command({"PING"});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << r.status().ToString();
    EXPECT_NE(r.status().message().find("certificate verify failed"), std::string::npos) << r.status().ToString();
    EXPECT_EQ(redis.connects(), 0);
  }
  TlsServer mutual(*certs_, "server.crt", /*auth_clients=*/true);
  {
    AsyncRedis anonymous(mutual.Config());
    auto r = anonymous.Command({"PING"});
    EXPECT_FALSE(r.ok()) << "a client without a certificate was served";
  }
  RedisConfig with_cert = mutual.Config();
  with_cert.tls.cert_file = *certs_ + "/client.crt";
  with_cert.tls.key_file = *certs_ + "/client.key";
  AsyncRedis redis(with_cert);
  auto r = redis.Command({"PING"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->str, "PONG");
}

}  // namespace
}  // namespace streamfleet
