// RedisClient behind Redis Sentinel on a local set (one master, one replica, three sentinels: Debian's
// redis-server in sentinel mode): the master is found through the sentinels, a SIGKILLed master is
// followed to the promoted replica without a restart, acknowledged writes (WAIT) survive, the demoted
// master coming back as a replica is never written to, and a manual failover is followed on +switch-master.
// AsyncRedis (the event-loop client) is driven through the same failovers beside the blocking client.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "streamfleet/redis/async_redis.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/testing/redis_server.h"

namespace streamfleet {
namespace {

using namespace std::chrono_literals;

class Sentinel {
 public:
  // `extra_conf`: more sentinel.conf lines (requirepass, ACL users); `username`/`password`: what the
  // start-up check authenticates with.
  Sentinel(const std::string& dir, int master_port, const std::string& extra_conf = "",
           const std::string& username = "", const std::string& password = "")
      : port_(testing::FreePort()) {
    conf_ = dir + "/sentinel-" + std::to_string(port_) + ".conf";
    std::ofstream(conf_) << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir << "\nlogfile " << conf_
                         << ".log\nsentinel monitor mymaster 127.0.0.1 " << master_port
                         << " 2\nsentinel down-after-milliseconds mymaster 1000\n"
                            "sentinel failover-timeout mymaster 5000\nsentinel parallel-syncs mymaster 1\n"
                         << extra_conf;
    pid_ = testing::SpawnProcess({"redis-server", conf_, "--sentinel"});
    // Listening before the test goes on: a test that talks to a sentinel directly must not race its start
    // (slower under the sanitizers).
    RedisConfig c;
    c.host = "127.0.0.1";
    c.port = port_;
    c.username = username;
    c.password = password;
    c.connect_timeout_ms = 200;
    for (int i = 0; i < 200; ++i) {
      auto s = RedisClient::Connect(c);
      if (s.ok() && (*s)->Command({"PING"}).ok()) return;
      std::this_thread::sleep_for(25ms);
    }
    ADD_FAILURE() << "sentinel on port " << port_ << " did not start";
  }
  ~Sentinel() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::string node() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  int pid_ = -1;
  std::string conf_;
};

// A client configuration that finds its master through the sentinels at `nodes` (host:port each).
RedisConfig ThroughSentinels(const std::vector<std::string>& nodes) {
  RedisConfig c;
  c.host = "unused.invalid";  // the sentinels say where the master is
  c.port = 1;
  c.connect_timeout_ms = 1000;
  c.command_timeout_ms = 2000;
  c.sentinel.master = "mymaster";
  c.sentinel.nodes = nodes;
  return c;
}

std::vector<std::string> NodesOf(const std::vector<std::unique_ptr<Sentinel>>& sentinels) {
  std::vector<std::string> nodes;
  for (const auto& s : sentinels) nodes.push_back(s->node());
  return nodes;
}

TEST(SentinelTest, FollowsAFailoverWithoutARestartAndNeverWritesToAReplica) {
  testing::RedisServer master;  // started by its constructor
  testing::RedisServer replica("--replicaof 127.0.0.1 " + std::to_string(master.port()));
  std::string dir = testing::TempPath("sf-sentinel");
  std::filesystem::create_directories(dir);
  std::vector<std::unique_ptr<Sentinel>> sentinels;
  for (int i = 0; i < 3; ++i) sentinels.push_back(std::make_unique<Sentinel>(dir, master.port()));

  RedisConfig c = ThroughSentinels(NodesOf(sentinels));
  c.sentinel.nodes.insert(c.sentinel.nodes.begin(), "127.0.0.1:1");  // a dead sentinel first: skipped
  auto client = RedisClient::Lazy(c);
  AsyncRedis async(c);
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = client->Command({"SET", "before", "1"}).ok() && async.Command({"SET", "async-before", "1"}).ok();
    if (!up) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(up) << "no master through the sentinels";
  auto role = client->Command({"ROLE"});
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(role->elements[0].str, "master");
  // Acknowledged by the replica (WAIT): a write that survives the failover. (The first WAITs may find the
  // replica still in its initial sync.)
  long long acked = 0;
  for (int i = 0; i < 50 && acked < 1; ++i) acked = client->Command({"WAIT", "1", "200"})->integer;
  EXPECT_EQ(acked, 1);

  master.Kill();
  auto t0 = std::chrono::steady_clock::now();
  bool followed = false;
  while (!followed && std::chrono::steady_clock::now() - t0 < 30s) {
    followed = client->Command({"SET", "after", "2"}).ok();
    if (!followed) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(followed) << "the client did not follow the failover";
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "failover followed in " << took << " s\n";
  EXPECT_EQ(client->Command({"GET", "before"})->str, "1") << "the acknowledged write was lost";
  auto direct = RedisClient::Connect(replica.config());
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ((*direct)->Command({"ROLE"})->elements[0].str, "master") << "not the promoted replica";
  EXPECT_EQ((*direct)->Command({"GET", "after"})->str, "2");
  // The async client follows too, by itself (its connection to the dead master failed).
  bool async_followed = false;
  for (auto t1 = std::chrono::steady_clock::now(); !async_followed && std::chrono::steady_clock::now() - t1 < 30s;) {
    async_followed = async.Command({"SET", "async-after", "2"}).ok();
    if (!async_followed) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(async_followed) << "the async client did not follow the failover";
  EXPECT_EQ((*direct)->Command({"GET", "async-after"})->str, "2");
  EXPECT_EQ((*direct)->Command({"GET", "async-before"})->str, "1");

  // The old master comes back; the sentinels turn it into a replica. Writes keep going to the new master.
  master.Start();
  int async_ok = 0;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(client->Command({"INCR", "n"}).ok() || i > 0);
    if (async.Command({"INCR", "async-n"}).ok()) ++async_ok;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE((*direct)->Command({"GET", "n"})->AsInt(), 49);
  // Every INCR the async client saw succeed landed on the new master: none went to the demoted one.
  EXPECT_GE(async_ok, 49);
  EXPECT_EQ((*direct)->Command({"GET", "async-n"})->AsInt(), async_ok);
  sentinels.clear();  // stopped first: a sentinel rewrites its config file in dir after a failover
  std::filesystem::remove_all(dir);
}

// A failover the client's own calls would not notice: SENTINEL FAILOVER while the old master stays up and is
// not reconfigured (its CLIENT command renamed away, so the sentinels' reconfiguration, which ends with CLIENT
// KILL, fails: the old master keeps answering as a master, as one cut off from the sentinels would), and a
// client that only reads. Nothing fails on the old master; +switch-master moves the client to the new one.
TEST(SentinelTest, FollowsSwitchMasterAnnouncementsEvenWhenTheOldMasterStaysUp) {
  testing::RedisServer master("--rename-command CLIENT \"\"");
  testing::RedisServer replica("--replicaof 127.0.0.1 " + std::to_string(master.port()));
  std::string dir = testing::TempPath("sf-sentinel-switch");
  std::filesystem::create_directories(dir);
  std::vector<std::unique_ptr<Sentinel>> sentinels;
  for (int i = 0; i < 3; ++i) sentinels.push_back(std::make_unique<Sentinel>(dir, master.port()));

  RedisConfig c;
  c.connect_timeout_ms = 1000;
  c.command_timeout_ms = 2000;
  c.sentinel.master = "mymaster";
  for (auto& s : sentinels) c.sentinel.nodes.push_back(s->node());
  auto client = RedisClient::Lazy(c);
  auto port_of = [&]() -> int64_t {
    auto info = client->Command({"INFO", "server"});
    if (!info.ok()) return -1;
    auto at = info->str.find("tcp_port:");
    return at == std::string::npos ? -1 : std::atoll(info->str.c_str() + at + 9);
  };
  AsyncRedis async(c);
  auto async_port_of = [&]() -> int64_t {
    auto info = async.Command({"INFO", "server"});
    if (!info.ok()) return -1;
    auto at = info->str.find("tcp_port:");
    return at == std::string::npos ? -1 : std::atoll(info->str.c_str() + at + 9);
  };
  int64_t port = -1, async_port = -1;
  for (int i = 0; i < 100 && (port != master.port() || async_port != master.port()); ++i) {
    port = port_of();
    async_port = async_port_of();
    if (port != master.port() || async_port != master.port()) std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(port, master.port()) << "no master through the sentinels";
  ASSERT_EQ(async_port, master.port()) << "no master through the sentinels (async client)";
  // The sentinels learn of the replica from the master's INFO (every 10 s at first): ask until one agrees.
  // Through the second sentinel: the client asks the first one first, which hears of the switch from the others
  // a moment later (the client must not go back to the old master meanwhile).
  RedisConfig s1;
  s1.host = "127.0.0.1";
  s1.port = std::stoi(sentinels[1]->node().substr(10));
  auto sentinel = RedisClient::Connect(s1);
  ASSERT_TRUE(sentinel.ok());
  bool started = false;
  for (int i = 0; i < 300 && !started; ++i) {
    started = (*sentinel)->Command({"SENTINEL", "FAILOVER", "mymaster"}).ok();
    if (!started) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(started) << "SENTINEL FAILOVER was refused for 30 s";
  auto t0 = std::chrono::steady_clock::now();
  while (port != replica.port() && std::chrono::steady_clock::now() - t0 < 30s) {
    port = port_of();  // reads only: nothing here fails on the old master
    if (port != replica.port()) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(port, replica.port()) << "the reading client stayed on the old master";
  while (async_port != replica.port() && std::chrono::steady_clock::now() - t0 < 30s) {
    async_port = async_port_of();
    if (async_port != replica.port()) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(async_port, replica.port()) << "the reading async client stayed on the old master";
  std::cout << "switch followed in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n";
  auto role = client->Command({"ROLE"});
  ASSERT_TRUE(role.ok()) << role.status().ToString();
  EXPECT_EQ(role->elements[0].str, "master");
  // The premise: the old master is still up and still a master (nothing failed on it that a client would see).
  auto old_master = RedisClient::Connect(master.config());
  ASSERT_TRUE(old_master.ok());
  auto old_role = (*old_master)->Command({"ROLE"});
  ASSERT_TRUE(old_role.ok());
  EXPECT_EQ(old_role->elements[0].str, "master") << "the sentinels reconfigured the old master: the test proves nothing";
  sentinels.clear();  // stopped first: a sentinel rewrites its config file in dir after a failover
  std::filesystem::remove_all(dir);
}

// Writes sent without waiting (Send: the worker's acks and records) to a master demoted under the client, before
// any sentinel announces it: a replica refuses them (READONLY), and with quiet sends (replies off) says
// nothing at all while it accepts the CLIENT REPLY ON. AwaitSent confirmed them either way; it now says they
// were not applied, and the connection is dropped so the next call asks the sentinels.
TEST(SentinelTest, WritesSentToAMasterDemotedUnderTheClientAreNotConfirmed) {
  testing::RedisServer master;
  testing::RedisServer replica("--replicaof 127.0.0.1 " + std::to_string(master.port()));
  std::string dir = testing::TempPath("sf-sentinel-demoted");
  std::filesystem::create_directories(dir);
  std::vector<std::unique_ptr<Sentinel>> sentinels;
  for (int i = 0; i < 3; ++i) sentinels.push_back(std::make_unique<Sentinel>(dir, master.port()));
  RedisConfig c = ThroughSentinels(NodesOf(sentinels));
  RedisConfig quiet = c;
  quiet.quiet_sends = true;
  auto loud_client = RedisClient::Lazy(c);
  auto quiet_client = RedisClient::Lazy(quiet);
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = loud_client->Command({"SET", "up", "1"}).ok() && quiet_client->Command({"SET", "up", "1"}).ok();
    if (!up) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(up) << "no master through the sentinels";
  ASSERT_TRUE(quiet_client->Send({{"SET", "quiet-before", "1"}}).ok());
  ASSERT_TRUE(quiet_client->AwaitSent().ok()) << "a quiet write to the master is confirmed";

  auto direct = RedisClient::Connect(master.config());
  ASSERT_TRUE(direct.ok());
  ASSERT_TRUE((*direct)->Command({"REPLICAOF", "127.0.0.1", std::to_string(replica.port())}).ok());
  ASSERT_TRUE(quiet_client->Send({{"SET", "quiet-after", "1"}}).ok());
  ASSERT_TRUE(loud_client->Send({{"SET", "loud-after", "1"}}).ok());
  Status q = quiet_client->AwaitSent();
  Status l = loud_client->AwaitSent();
  EXPECT_FALSE(q.ok()) << "a quiet write the demoted master dropped was confirmed";
  EXPECT_FALSE(l.ok()) << "a write the demoted master refused (READONLY) was confirmed";
  EXPECT_EQ((*direct)->Command({"EXISTS", "quiet-after", "loud-after"})->integer, 0);
  sentinels.clear();
  std::filesystem::remove_all(dir);
}

// The first sentinel asked names a server that is not the master (a sentinel restarted with an old view: here one
// that monitors the replica): the client goes on to the next sentinel's answer instead of giving up (every
// process stayed away from the real master until that sentinel caught up).
TEST(SentinelTest, ASentinelNamingAReplicaIsPassedOverForTheNextOnesAnswer) {
  testing::RedisServer master;
  testing::RedisServer replica("--replicaof 127.0.0.1 " + std::to_string(master.port()));
  std::string dir = testing::TempPath("sf-sentinel-stale");
  std::filesystem::create_directories(dir);
  Sentinel stale(dir, replica.port());
  Sentinel good(dir, master.port());
  auto client = RedisClient::Lazy(ThroughSentinels({stale.node(), good.node()}));
  auto r = client->Command({"SET", "k", "v"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto direct = RedisClient::Connect(master.config());
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ((*direct)->Command({"GET", "k"})->str, "v");
  std::filesystem::remove_all(dir);
}

// Sentinels that require authentication of their own (REDIS_SENTINEL_USERNAME / REDIS_SENTINEL_PASSWORD):
// a password (requirepass), and an ACL user without one (`nopass`, the default user switched off), which
// was never authenticated (only a password triggered AUTH) and so found no master. Both clients find the
// master; without the credentials the error names the refusal.
TEST(SentinelTest, AuthenticatesToSentinelsWithAPasswordOrAnAclUser) {
  testing::RedisServer master;
  std::string dir = testing::TempPath("sf-sentinel-auth");
  std::filesystem::create_directories(dir);
  Sentinel guarded(dir, master.port(), "requirepass sentinel-secret\n", "", "sentinel-secret");
  Sentinel acl(dir, master.port(), "user default off\nuser watcher on nopass +@all\n", "watcher", "");

  RedisConfig by_password = ThroughSentinels({guarded.node()});
  by_password.sentinel.password = "sentinel-secret";
  RedisConfig by_user = ThroughSentinels({acl.node()});
  by_user.sentinel.username = "watcher";
  for (const RedisConfig& c : {by_password, by_user}) {
    auto client = RedisClient::Connect(c);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    EXPECT_TRUE((*client)->Command({"SET", "through-" + c.sentinel.nodes[0], "1"}).ok());
    AsyncRedis async(c);
    auto r = async.Command({"SET", "async-through-" + c.sentinel.nodes[0], "1"});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  auto direct = RedisClient::Connect(master.config());
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ((*direct)->Command({"GET", "through-" + guarded.node()})->str, "1");
  EXPECT_EQ((*direct)->Command({"GET", "async-through-" + acl.node()})->str, "1");

  for (const std::string& node : {guarded.node(), acl.node()}) {
    RedisConfig none = ThroughSentinels({node});
    none.connect_timeout_ms = 500;
    auto r = RedisClient::Connect(none);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("NOAUTH"), std::string::npos) << r.status().ToString();
  }
  std::filesystem::remove_all(dir);
}

TEST(SentinelTest, NoSentinelKnowsTheMasterIsAClearError) {
  RedisConfig c;
  c.connect_timeout_ms = 500;
  c.command_timeout_ms = 500;
  c.sentinel.master = "mymaster";
  c.sentinel.nodes = {"127.0.0.1:1"};
  auto r = RedisClient::Connect(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("no sentinel named the master mymaster"), std::string::npos) << r.status().ToString();
}

}  // namespace
}  // namespace streamfleet
