// RedisClient in cluster mode against a real 3-master + 3-replica cluster on loopback
// (components/testing/include/streamfleet/testing/redis_cluster.h). One cluster per suite: the failover suite kills a master, so it has its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "streamfleet/redis/async_redis.h"
#include "streamfleet/redis/cluster_slots.h"
#include "streamfleet/redis/pooled_redis_commands.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/redis/redis_scan.h"
#include "streamfleet/testing/redis_cluster.h"
#include "streamfleet/testing/redis_server.h"
#include "support/wait.h"

namespace streamfleet {
namespace {

using testing::RedisCluster;

std::unique_ptr<RedisClient> Connect(const RedisConfig& config) {
  auto c = RedisClient::Connect(config);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

// "errorstat_MOVED:count=3" from INFO errorstats: how many redirections a node has answered.
long long ErrorCount(RedisClient& client, const std::string& node, const std::string& error) {
  auto info = client.CommandOn(node, {"INFO", "errorstats"});
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return -1;
  std::string needle = "errorstat_" + error + ":count=";
  auto pos = info->str.find(needle);
  if (pos == std::string::npos) return 0;
  return std::stoll(info->str.substr(pos + needle.size()));
}

// A key (with the given prefix) whose slot is served by `master`.
std::string KeyOn(const RedisCluster& cluster, const std::string& master, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string k = prefix + std::to_string(i);
    if (cluster.MasterOf(KeySlot(k)) == master) return k;
  }
}

class RedisClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new RedisCluster(); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    cluster_->FlushAll();
    client_ = Connect(cluster_->config());
    ASSERT_NE(client_, nullptr);
  }
  static RedisCluster* cluster_;
  std::unique_ptr<RedisClient> client_;
};
RedisCluster* RedisClusterTest::cluster_ = nullptr;

TEST_F(RedisClusterTest, KeySlotMatchesClusterKeyslot) {
  EXPECT_EQ(Crc16("123456789"), 0x31C3);  // the XMODEM check value
  std::vector<std::string> keys = {"",         "a",          "{}",          "{}x",         "x{}",       "{a",
                                   "a}",       "}a{b}",      "{user1000}.following", "{user1000}.followers",
                                   "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{ab}c", "ab{c}",
                                   std::string("bin\0ary{t\xff}", 11), "app:scenario_planning:org:7:generation:9:chunks"};
  std::mt19937 rng(12);
  for (int i = 0; i < 400; ++i) {
    std::string k;
    int len = static_cast<int>(rng() % 24);
    for (int j = 0; j < len; ++j) k += "ab{}:x\xc3z9"[rng() % 9];
    keys.push_back(k);
  }
  std::vector<std::vector<std::string>> cmds;
  for (const auto& k : keys) cmds.push_back({"CLUSTER", "KEYSLOT", k});
  // Keyless: all go to one master, which computes slots for any key.
  auto r = client_->Pipeline(cmds);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_FALSE((*r)[i].is_error()) << (*r)[i].str;
    EXPECT_EQ(KeySlot(keys[i]), (*r)[i].integer) << "key \"" << keys[i] << "\"";
  }
  // Keys sharing a non-empty tag share a slot.
  EXPECT_EQ(KeySlot("{gen:42}:chunks"), KeySlot("{gen:42}:meta"));
}

TEST_F(RedisClusterTest, CommandsAndEvalGoToTheKeysMaster) {
  LuaScript set_script("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])");
  std::set<std::string> masters_hit;
  for (int i = 0; i < 60; ++i) {
    std::string k = "route:" + std::to_string(i);
    std::string ek = "eval:" + std::to_string(i);
    ASSERT_TRUE(client_->Command({"SET", k, "v" + std::to_string(i)}).ok());
    auto e = client_->Eval(set_script, {ek}, {"e" + std::to_string(i)});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(e->str, "e" + std::to_string(i));
    // A master answers only for its own slots (MOVED otherwise): reading the key there proves the routing.
    std::string owner = cluster_->MasterOf(KeySlot(k));
    masters_hit.insert(owner);
    auto g = client_->CommandOn(owner, {"GET", k});
    ASSERT_TRUE(g.ok()) << k << " on " << owner << ": " << g.status().ToString();
    EXPECT_EQ(g->str, "v" + std::to_string(i));
    auto ge = client_->CommandOn(cluster_->MasterOf(KeySlot(ek)), {"GET", ek});
    ASSERT_TRUE(ge.ok()) << ge.status().ToString();
    EXPECT_EQ(ge->str, "e" + std::to_string(i));
  }
  EXPECT_EQ(masters_hit.size(), 3u);
  // Keys of other commands' positions: XGROUP/XINFO (argv[2]), XREADGROUP (after STREAMS).
  ASSERT_TRUE(client_->Command({"XGROUP", "CREATE", "{s}stream", "g", "$", "MKSTREAM"}).ok());
  ASSERT_TRUE(client_->Command({"XADD", "{s}stream", "*", "f", "v"}).ok());
  auto info = client_->Command({"XINFO", "STREAM", "{s}stream"});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto read = client_->Command({"XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "{s}stream", ">"});
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(ParseStreamReply(*read).size(), 1u);
  // A multi-key command across slots is refused by Redis, not half-applied.
  auto cross = client_->Command({"MSET", "{a}1", "x", "{b}2", "y"});
  EXPECT_FALSE(cross.ok());
}

TEST_F(RedisClusterTest, PipelineAcrossAllMastersKeepsTheCallersOrder) {
  std::vector<std::vector<std::string>> cmds;
  std::set<std::string> masters;
  for (int i = 0; i < 300; ++i) {
    std::string k = "pipe:" + std::to_string(i);
    masters.insert(cluster_->MasterOf(KeySlot(k)));
    cmds.push_back({"INCRBY", k, std::to_string(i)});
    cmds.push_back({"GET", k});
    if (i % 50 == 0) cmds.push_back({"PING"});
  }
  ASSERT_EQ(masters.size(), 3u);
  auto r = client_->Pipeline(cmds);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), cmds.size());
  size_t j = 0;
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ((*r)[j++].integer, i);
    EXPECT_EQ((*r)[j++].str, std::to_string(i));
    if (i % 50 == 0) {
      EXPECT_EQ((*r)[j++].str, "PONG");
    }
  }
}

// WAIT in a pipeline runs on the node of the write before it (ingest's append then WAIT with
// INGEST_WAIT_REPLICAS): as a keyless command it went to the first master, which had nothing to wait for, so
// the writes of the other shards were acknowledged with no replica holding them.
TEST_F(RedisClusterTest, WaitInAPipelineGoesToTheNodeOfTheWriteBeforeIt) {
  auto waits = [&](const std::string& node) {
    auto info = client_->CommandOn(node, {"INFO", "commandstats"});
    EXPECT_TRUE(info.ok());
    auto at = info->str.find("cmdstat_wait:calls=");
    return at == std::string::npos ? 0LL : std::stoll(info->str.substr(at + 19));
  };
  for (const auto& m : cluster_->Masters()) ASSERT_TRUE(client_->CommandOn(m, {"CONFIG", "RESETSTAT"}).ok());
  std::vector<std::vector<std::string>> cmds;
  for (const auto& m : cluster_->Masters()) {
    cmds.push_back({"SET", KeyOn(*cluster_, m, "waited:"), "v"});
    cmds.push_back({"wait", "1", "2000"});
  }
  auto r = client_->Pipeline(cmds);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (size_t i = 1; i < r->size(); i += 2) EXPECT_EQ((*r)[i].integer, 1) << "the shard's replica has the write";
  for (const auto& m : cluster_->Masters()) EXPECT_EQ(waits(m), 1) << m;
}

// A consumer (or group) named "streams" is not the STREAMS keyword: the read was routed by the word after the
// name and redirected every time (MOVED, then a reload of the slot map).
TEST_F(RedisClusterTest, AConsumerNamedStreamsIsRoutedByTheStream) {
  std::map<std::string, long long> moved;
  for (const auto& m : cluster_->Masters()) moved[m] = ErrorCount(*client_, m, "MOVED");
  int read = 0;
  for (int i = 0; i < 6; ++i) {
    const std::string stream = "named:" + std::to_string(i);
    ASSERT_TRUE(client_->Command({"XADD", stream, "*", "f", "v"}).ok());
    ASSERT_TRUE(client_->Command({"XGROUP", "CREATE", stream, "streams", "0"}).ok());
    auto r = client_->Command({"XREADGROUP", "GROUP", "streams", "STREAMS", "COUNT", "1", "STREAMS", stream, ">"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    read += static_cast<int>(ParseStreamReply(*r).size());
  }
  EXPECT_EQ(read, 6);
  for (const auto& m : cluster_->Masters()) EXPECT_EQ(ErrorCount(*client_, m, "MOVED"), moved[m]) << m;
}

// A pooled cluster client that met a node error is kept: its router reconnects node by node and reloads the
// slot map from the masters it knows. Thrown away, every new client started from the seeds again, and behind
// a dead first seed each request waited out a connect timeout.
TEST_F(RedisClusterTest, APoolKeepsAClusterClientThatMetANodeError) {
  RedisPool pool(cluster_->config());
  RedisClient* used = nullptr;
  {
    auto lease = pool.Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    used = &**lease;
    EXPECT_FALSE((*lease)->CommandOn("127.0.0.1:" + std::to_string(testing::FreePort()), {"PING"}).ok());
    EXPECT_FALSE((*lease)->connected()) << "the node error marks it for a refresh";
  }
  auto again = pool.Acquire();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(&**again, used) << "the same client, not one started from the seeds";
  EXPECT_TRUE((*again)->Command({"SET", "pooled:after", "1"}).ok());
  EXPECT_TRUE((*again)->connected());
}

TEST_F(RedisClusterTest, NoscriptIsRepairedOnEveryNode) {
  LuaScript incr("return redis.call('INCR', KEYS[1])");
  client_->Register(incr);
  std::vector<std::vector<std::string>> cmds;
  for (const auto& m : client_->Masters()) {
    cmds.push_back(RedisClient::EvalArgv(incr, {KeyOn(*cluster_, m, "ns:")}, {}));
  }
  ASSERT_EQ(cmds.size(), 3u);
  for (int round = 1; round <= 2; ++round) {
    // Every node forgets the script: each must get its own SCRIPT LOAD.
    for (const auto& m : client_->Masters()) ASSERT_TRUE(client_->CommandOn(m, {"SCRIPT", "FLUSH"}).ok());
    auto r = client_->Pipeline(cmds);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (const auto& v : *r) {
      EXPECT_FALSE(v.is_error()) << v.str;
      EXPECT_EQ(v.integer, round);
    }
  }
}

TEST_F(RedisClusterTest, MastersCommandOnAndScanAll) {
  auto masters = client_->Masters();
  EXPECT_EQ(masters, cluster_->Masters());
  ASSERT_EQ(masters.size(), 3u);
  std::set<std::string> written;
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < 500; ++i) {
    written.insert("scan:" + std::to_string(i));
    cmds.push_back({"SET", "scan:" + std::to_string(i), "1"});
  }
  cmds.push_back({"SET", "other", "1"});
  ASSERT_TRUE(client_->Pipeline(cmds).ok());
  long long total = 0;
  for (const auto& m : masters) {
    auto n = client_->CommandOn(m, {"DBSIZE"});
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_GT(n->integer, 100);  // spread over every master
    total += n->integer;
  }
  EXPECT_EQ(total, 501);
  std::set<std::string> seen;
  ASSERT_TRUE(ScanAll(*client_, "scan:*", 100, [&](const std::vector<std::string>& keys) {
                seen.insert(keys.begin(), keys.end());
                return true;
              }).ok());
  EXPECT_EQ(seen, written);
  // Stopping early.
  int batches = 0;
  ASSERT_TRUE(ScanAll(*client_, "scan:*", 10, [&](const std::vector<std::string>&) { return ++batches < 2; }).ok());
  EXPECT_EQ(batches, 2);
  EXPECT_EQ(client_->CommandOn("nohost", {"PING"}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RedisClusterTest, BlockingReadsWaitTheirBlockTime) {
  // BLOCK longer than the command timeout: extra_timeout_ms must reach the node's connection.
  RedisConfig c = cluster_->config();
  c.command_timeout_ms = 300;
  auto client = Connect(c);
  ASSERT_NE(client, nullptr);
  auto t0 = std::chrono::steady_clock::now();
  auto r = client->Command({"XREAD", "BLOCK", "600", "STREAMS", "{blk}s", "$"}, 600);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->is_nil());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(550));
  ASSERT_TRUE(client->Command({"XADD", "{blk}s", "*", "f", "v"}).ok());
  auto got = client->Command({"XREAD", "BLOCK", "600", "STREAMS", "{blk}s", "0-0"}, 600);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(ParseStreamReply(*got).size(), 1u);
}

TEST_F(RedisClusterTest, MovedAfterReshardIsFollowed) {
  std::vector<std::vector<std::string>> sets, gets;
  for (int i = 0; i < 3000; ++i) {
    sets.push_back({"SET", "moved:" + std::to_string(i), std::to_string(i)});
    gets.push_back({"GET", "moved:" + std::to_string(i)});
  }
  ASSERT_TRUE(client_->Pipeline(sets).ok());
  auto masters = cluster_->Masters();
  std::string from = masters[0], to = masters[1];
  long long moved_before = ErrorCount(*client_, from, "MOVED");
  cluster_->MoveSlots(200, from, to);
  // client_ still has the old map: the moved slots answer MOVED and the client follows.
  auto r = client_->Pipeline(gets);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (int i = 0; i < 3000; ++i) ASSERT_EQ((*r)[i].str, std::to_string(i)) << (*r)[i].str;
  EXPECT_GT(ErrorCount(*client_, from, "MOVED"), moved_before);
  // The map was reloaded: a second pass is served without any redirection.
  long long moved_after = ErrorCount(*client_, from, "MOVED");
  ASSERT_TRUE(client_->Pipeline(gets).ok());
  EXPECT_EQ(ErrorCount(*client_, from, "MOVED"), moved_after);
  // Single commands too, on a fresh stale client made before another reshard.
  auto stale = Connect(cluster_->config());
  cluster_->MoveSlots(200, to, from);
  for (int i = 0; i < 3000; i += 7) {
    auto g = stale->Command({"GET", "moved:" + std::to_string(i)});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(g->str, std::to_string(i));
  }
}

TEST_F(RedisClusterTest, AskDuringAnOpenMigration) {
  std::string old_key = "{ask}old", new_key = "{ask}new";
  int slot = KeySlot(old_key);
  ASSERT_TRUE(client_->Command({"SET", old_key, "o"}).ok());
  std::string from = cluster_->MasterOf(slot);
  std::string to;
  for (const auto& m : cluster_->Masters()) {
    if (m != from) to = m;
  }
  cluster_->BeginMigration(slot, to);
  long long ask_before = ErrorCount(*client_, from, "ASK");
  // A key the source does not have goes to the destination, with ASKING.
  ASSERT_TRUE(client_->Command({"SET", new_key, "n"}).ok());
  EXPECT_GT(ErrorCount(*client_, from, "ASK"), ask_before);
  auto count = client_->CommandOn(to, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(count->integer, 1);
  // Both readable while the migration is open, in one pipeline: the old key from the source, the new one
  // from the destination (ASK); the slot map is not changed by an ASK.
  auto r = client_->Pipeline({{"GET", old_key}, {"GET", new_key}, {"GET", old_key}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].str, "o");
  EXPECT_EQ((*r)[1].str, "n");
  EXPECT_EQ((*r)[2].str, "o");
  cluster_->FinishMigration(slot, to);
  auto g = client_->Command({"GET", old_key});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->str, "o");
  EXPECT_EQ(cluster_->MasterOf(slot), to);
}

// At the node an ASK sent a command to, ASKING stays in front of it when it is tried again there: after a
// NOSCRIPT (the script re-run once loaded) and after a TRYAGAIN (keys split between the two nodes). Without it
// the importing node answered MOVED, which sent the command back to the source and bounced it.
TEST_F(RedisClusterTest, AskingIsKeptForRetriesAtTheImportingNode) {
  const std::string a = "{asking}a", b = "{asking}b";
  const int slot = KeySlot(a);
  const std::string from = cluster_->MasterOf(slot);
  std::string to;
  for (const auto& m : cluster_->Masters()) {
    if (m != from) to = m;
  }
  cluster_->BeginMigration(slot, to);
  LuaScript set("return redis.call('SET', KEYS[1], ARGV[1])");
  client_->Register(set);
  ASSERT_TRUE(client_->CommandOn(to, {"SCRIPT", "FLUSH"}).ok());
  const long long moved_before = ErrorCount(*client_, to, "MOVED");
  // The source holds neither key: ASK to the destination, which has not loaded the script.
  auto r = client_->Pipeline({RedisClient::EvalArgv(set, {a}, {"x"})});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE((*r)[0].is_error()) << (*r)[0].str;
  // `a` is at the destination now, `b` nowhere: the destination answers TRYAGAIN to both keys at once.
  r = client_->Pipeline({{"MGET", a, b}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE((*r)[0].is_error());
  EXPECT_EQ((*r)[0].str.rfind("TRYAGAIN", 0), 0u) << (*r)[0].str;
  EXPECT_EQ(ErrorCount(*client_, to, "MOVED"), moved_before) << "a retry reached the destination without ASKING";
  cluster_->FinishMigration(slot, to);
  auto g = client_->Command({"GET", a});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->str, "x");
}

// The replies of Sends lost with a node's connection: the cluster client's AwaitSent says so once too, also
// when another call met the loss first.
TEST_F(RedisClusterTest, AwaitSentSaysWhenANodesRepliesWereLost) {
  const std::string master = client_->Masters().front();
  const std::string key = KeyOn(*cluster_, master, "lost:");
  auto id = client_->CommandOn(master, {"CLIENT", "ID"});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(client_->Send({{"BLPOP", key, "0"}}).ok());  // its reply cannot come before the kill
  auto other = Connect(cluster_->config());
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->CommandOn(master, {"CLIENT", "KILL", "ID", std::to_string(id->integer)}).ok());
  (void)client_->Command({"GET", key});  // meets the loss first
  Status s = client_->AwaitSent();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  ASSERT_TRUE(client_->Send({{"SET", key, "kept"}}).ok());
  EXPECT_TRUE(client_->AwaitSent().ok()) << "said once";
}

// Send() writes without waiting (the worker's acks and status records, RedisConfig::quiet_sends): a command
// a reshard or an open migration redirected did nothing where it went, and is sent again where the
// redirection points. Before, a MOVED went unseen (quiet) and an acknowledged task ran again.
TEST_F(RedisClusterTest, SentCommandsFollowAReshardAndAnOpenMigration) {
  RedisConfig quiet = cluster_->config();
  quiet.quiet_sends = true;
  auto sender = Connect(quiet);
  ASSERT_NE(sender, nullptr);
  ASSERT_TRUE(sender->Command({"SET", "sent:warm", "1"}).ok());  // the slot map is loaded now
  auto masters = cluster_->Masters();
  std::string from = masters[0], to = masters[1];
  const long long moved_before = ErrorCount(*sender, from, "MOVED");
  cluster_->MoveSlots(300, from, to);
  std::vector<std::vector<std::string>> sets, gets;
  int on_moved_slots = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string key = "sent:" + std::to_string(i);
    sets.push_back({"SET", key, std::to_string(i)});
    gets.push_back({"GET", key});
  }
  ASSERT_TRUE(sender->Send(sets).ok());
  ASSERT_TRUE(sender->AwaitSent().ok());
  for (int i = 0; i < 3000; ++i) on_moved_slots += cluster_->MasterOf(KeySlot("sent:" + std::to_string(i))) == to;
  ASSERT_GT(on_moved_slots, 0);
  EXPECT_GT(ErrorCount(*sender, from, "MOVED"), moved_before) << "the sender's map was stale";
  auto r = client_->Pipeline(gets);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (int i = 0; i < 3000; ++i) ASSERT_EQ((*r)[i].str, std::to_string(i)) << "sent:" << i;
  EXPECT_EQ(sender->DeferredErrors(), 0);

  // An open migration: a key the source does not hold is written at the destination (ASKING first).
  const std::string key = "{sent-ask}new";
  const int slot = KeySlot(key);
  const std::string source = cluster_->MasterOf(slot);
  std::string dest;
  for (const auto& m : cluster_->Masters()) {
    if (m != source) dest = m;
  }
  const long long ask_before = ErrorCount(*sender, source, "ASK");
  cluster_->BeginMigration(slot, dest);
  ASSERT_TRUE(sender->Send({{"SET", key, "asked"}}).ok());
  ASSERT_TRUE(sender->AwaitSent().ok());
  EXPECT_GT(ErrorCount(*sender, source, "ASK"), ask_before);
  cluster_->FinishMigration(slot, dest);
  auto g = client_->Command({"GET", key});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->str, "asked");
  EXPECT_EQ(sender->DeferredErrors(), 0);
  cluster_->MoveSlots(300, to, from);
}

// A command resent after a redirection never lands after a newer one on the same key: a worker's "running"
// record sent to the old master must not overwrite the "succeeded" sent after the map was reloaded.
TEST_F(RedisClusterTest, AResentCommandStaysAheadOfLaterOnesOnTheSameKey) {
  RedisConfig quiet = cluster_->config();
  quiet.quiet_sends = true;
  auto sender = Connect(quiet);
  ASSERT_NE(sender, nullptr);
  auto masters = cluster_->Masters();
  ASSERT_EQ(masters.size(), 3u);
  // a last: a map reload asks the first master (CLUSTER SLOTS), which would read a's replies on the way.
  const std::string a = masters[2], b = masters[1], c = masters[0];
  auto keys_of = [&](const std::string& master, const std::string& prefix) {
    std::vector<std::string> out;
    for (int i = 0; out.size() < 400; ++i) {
      std::string k = prefix + std::to_string(i);
      if (cluster_->MasterOf(KeySlot(k)) == master) out.push_back(k);
    }
    return out;
  };
  std::vector<std::string> on_a = keys_of(a, "order:"), on_c = keys_of(c, "other:");
  ASSERT_TRUE(sender->Command({"GET", on_a[0]}).ok());  // the map is loaded
  cluster_->MoveSlots(300, a, b);
  cluster_->MoveSlots(300, c, b);
  auto moved_to_b = [&](const std::vector<std::string>& keys) {
    std::vector<std::string> out;
    for (const auto& k : keys) {
      if (cluster_->MasterOf(KeySlot(k)) == b) out.push_back(k);
    }
    return out;
  };
  std::vector<std::string> moved = moved_to_b(on_a), moved_c = moved_to_b(on_c);
  ASSERT_GE(moved.size(), 1u);
  ASSERT_GE(moved_c.size(), 1u);
  // "running" goes to a (the old map) and is answered MOVED, unread. A read on c meets a MOVED too: the map
  // is reloaded without a's replies being read. "succeeded" then goes to b directly.
  for (const auto& k : moved) ASSERT_TRUE(sender->Send({{"SET", k, "running"}}).ok());
  ASSERT_TRUE(sender->Pipeline({{"GET", moved_c[0]}}).ok());
  for (const auto& k : moved) ASSERT_TRUE(sender->Send({{"SET", k, "succeeded"}}).ok());
  ASSERT_TRUE(sender->AwaitSent().ok());
  for (const auto& k : moved) {
    auto g = client_->Command({"GET", k});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(g->str, "succeeded") << k;
  }
  EXPECT_EQ(sender->DeferredErrors(), 0);
  cluster_->MoveSlots(300, b, a);
  cluster_->MoveSlots(300, b, c);
}

TEST_F(RedisClusterTest, PooledCommandsWorkAndAsyncRedisRefusesCluster) {
  PooledRedisCommands pooled(cluster_->config());
  LuaScript get("return redis.call('GET', KEYS[1])");
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string k = "pool:" + std::to_string(t) + ":" + std::to_string(i);
        if (!pooled.Command({"SET", k, "x"}).ok()) ++failures;
        auto e = pooled.Eval(get, {k}, {});
        if (!e.ok() || e->str != "x") ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  AsyncRedis async(cluster_->config());
  auto r = async.Command({"PING"});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
}

TEST(RedisClientStandardTest, MastersAndCommandOnNameTheOneServer) {
  testing::RedisServer server;
  auto client = Connect(server.config());
  ASSERT_NE(client, nullptr);
  std::string self = "127.0.0.1:" + std::to_string(server.port());
  EXPECT_EQ(client->Masters(), std::vector<std::string>{self});
  EXPECT_TRUE(client->CommandOn(self, {"PING"}).ok());
  EXPECT_EQ(client->CommandOn("127.0.0.1:1", {"PING"}).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(client->Command({"SET", "scan:a", "1"}).ok());
  int seen = 0;
  ASSERT_TRUE(ScanAll(*client, "scan:*", 100, [&](const std::vector<std::string>& k) {
                seen += static_cast<int>(k.size());
                return true;
              }).ok());
  EXPECT_EQ(seen, 1);
}

// A command sent without waiting, redirected to a node that cannot be reached when it is resent (the slot moved
// there, then the node died): AwaitSent says the command was not confirmed instead of OK.
TEST(RedisClusterFailoverTest, ASentCommandWhoseRedirectionCannotBeFollowedIsNotConfirmed) {
  RedisCluster cluster;
  auto sender = Connect(cluster.config());
  ASSERT_NE(sender, nullptr);
  auto masters = cluster.Masters();
  ASSERT_EQ(masters.size(), 3u);
  const std::string from = masters[0], to = masters[1];
  const std::string key = KeyOn(cluster, from, "lost-resend:");
  const std::string other = KeyOn(cluster, from, "lost-resend-other:");
  ASSERT_TRUE(sender->Command({"SET", other, "1"}).ok());  // the sender's map says `from` serves the key
  const int slot = KeySlot(key);
  cluster.BeginMigration(slot, to);
  cluster.FinishMigration(slot, to);
  ASSERT_EQ(cluster.KillMasterOf(slot), to);
  ASSERT_TRUE(sender->Send({{"SET", key, "v"}}).ok());  // `from` answers MOVED to the dead node
  // A command on `from` reads that reply and resends the SET to `to`, which refuses the connection.
  (void)sender->Pipeline({{"GET", other}});
  Status s = sender->AwaitSent();
  EXPECT_FALSE(s.ok()) << "a command that never reached a node was confirmed";
}

// A master SIGKILLed: its replica is promoted and the client follows, failing with kUnavailable meanwhile.
TEST(RedisClusterFailoverTest, ClientRecoversAfterMasterKilledAndReplicaPromoted) {
  RedisCluster cluster;
  auto client = Connect(cluster.config());
  ASSERT_NE(client, nullptr);
  const std::string key = "failover:key";
  int slot = KeySlot(key);
  ASSERT_TRUE(client->Command({"SET", key, "survives"}).ok());
  std::string old_master = cluster.MasterOf(slot);
  // Make sure the replica has the write before the crash (WAIT counts this connection's writes).
  auto w = client->CommandOn(old_master, {"WAIT", "1", "2000"});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->integer, 1);

  cluster.KillMasterOf(slot);
  int unavailable = 0, other_errors = 0;
  std::string other;
  bool recovered = testing::WaitUntil([&] {
    auto g = client->Command({"GET", key});
    if (g.ok()) {
      EXPECT_EQ(g->str, "survives");
      return true;
    }
    if (g.status().code() == StatusCode::kUnavailable) {
      ++unavailable;
    } else {
      ++other_errors;
      other = g.status().ToString();
    }
    return false;
  }, 30000);
  ASSERT_TRUE(recovered) << "unavailable=" << unavailable << " other=" << other;
  EXPECT_GT(unavailable, 0);
  EXPECT_EQ(other_errors, 0) << other;
  // The client may have found the promoted replica before every node heard of it: ask the test's own view
  // only once all live nodes agree (a node still gossiping the old map made this flaky under ASan).
  cluster.WaitForFailover();
  std::string new_master = cluster.MasterOf(slot);
  EXPECT_NE(new_master, old_master);
  auto masters = client->Masters();
  EXPECT_EQ(std::count(masters.begin(), masters.end(), new_master), 1);
  EXPECT_EQ(std::count(masters.begin(), masters.end(), old_master), 0);
  // Writes to every master work again.
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < 100; ++i) cmds.push_back({"SET", "after:" + std::to_string(i), "1"});
  auto r = client->Pipeline(cmds);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const auto& v : *r) EXPECT_FALSE(v.is_error()) << v.str;
}

}  // namespace
}  // namespace streamfleet
