#include "streamfleet/testing/redis_cluster.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "streamfleet/redis/cluster_slots.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet::testing {

namespace {

constexpr int kNodes = 6;  // 3 masters + 3 replicas

std::string NodeName(int port) { return "127.0.0.1:" + std::to_string(port); }

// Runs a redis-cli --cluster command; its output goes to a log file quoted in the exception on failure.
void RunRedisCli(const std::string& args) {
  std::string log = TempPath("sf-redis-cli") + ".log";
  std::string cmd = "redis-cli " + args + " >" + log + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream in(log);
  std::stringstream out;
  out << in.rdbuf();
  std::remove(log.c_str());
  if (rc != 0) throw std::runtime_error("`" + cmd + "` failed (" + std::to_string(rc) + "):\n" + out.str());
}

void Sleep(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

RedisCluster::RedisCluster() {
  std::string create = "--cluster create";
  for (int i = 0; i < kNodes; ++i) {
    // node-timeout 1000: a killed master is failed over in ~2 s instead of the default 15 s. The bus port
    // is chosen too: its default, port + 10000, is past 65535 for half of the ports FreePort() returns.
    servers_.push_back(std::make_unique<RedisServer>("--cluster-enabled yes --cluster-config-file nodes.conf "
                                                     "--cluster-node-timeout 1000 --cluster-port " +
                                                     std::to_string(FreePort())));
    alive_.push_back(true);
    create += " " + NodeName(servers_.back()->port());
  }
  RunRedisCli(create + " --cluster-replicas 1 --cluster-yes");
  WaitUntilStable(30000);
  WaitForReplicas(30000);
}

void RedisCluster::WaitForReplicas(int timeout_ms) {
  // A replica that has not finished its first sync would lose the data of a failover test.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string why;
  while (std::chrono::steady_clock::now() < deadline) {
    bool ok = true;
    for (const auto& m : Masters()) {
      auto info = On(m, {"INFO", "replication"});
      if (!info.ok() || info->str.find("connected_slaves:1") == std::string::npos ||
          info->str.find("state=online") == std::string::npos) {
        ok = false;
        why = m + " has no online replica";
        break;
      }
    }
    if (ok) return;
    Sleep(100);
  }
  throw std::runtime_error("redis cluster: " + why);
}

RedisCluster::~RedisCluster() = default;  // each RedisServer stops its process

std::vector<std::string> RedisCluster::nodes() const {
  std::vector<std::string> out;
  for (const auto& s : servers_) out.push_back(NodeName(s->port()));
  return out;
}

RedisConfig RedisCluster::config() const {
  RedisConfig c = servers_[0]->config();
  c.cluster = true;
  c.seeds = nodes();
  return c;
}

std::string RedisCluster::url() const {
  std::string u = "redis://";
  auto n = nodes();
  for (size_t i = 0; i < n.size(); ++i) u += (i ? "," : "") + n[i];
  return u;
}

std::map<std::string, std::string> RedisCluster::env() const {
  return {{"REDIS_URL", url()}, {"REDIS_CLUSTER", "true"}};
}

StatusOr<RedisValue> RedisCluster::On(const std::string& node, const std::vector<std::string>& argv) const {
  RedisConfig c = servers_[0]->config();
  auto hp = SplitHostPort(node);
  if (!hp) throw std::runtime_error("bad node " + node);
  c.host = hp->first;
  c.port = hp->second;
  auto client = RedisClient::Connect(c);
  if (!client.ok()) return client.status();
  return (*client)->Command(argv);
}

std::string RedisCluster::AnyLiveNode() const {
  for (size_t i = 0; i < servers_.size(); ++i) {
    if (alive_[i]) return NodeName(servers_[i]->port());
  }
  throw std::runtime_error("no live cluster node");
}

std::string RedisCluster::MasterOf(int slot) const {
  auto r = On(AnyLiveNode(), {"CLUSTER", "SLOTS"});
  if (!r.ok()) throw std::runtime_error("CLUSTER SLOTS: " + r.status().ToString());
  auto ranges = ParseClusterSlots(*r, "127.0.0.1");
  if (!ranges.ok()) throw std::runtime_error(ranges.status().ToString());
  for (const auto& range : *ranges) {
    if (slot >= range.first && slot <= range.last) return range.master;
  }
  throw std::runtime_error("slot " + std::to_string(slot) + " not served");
}

std::vector<std::string> RedisCluster::Masters() const {
  auto r = On(AnyLiveNode(), {"CLUSTER", "SLOTS"});
  if (!r.ok()) throw std::runtime_error("CLUSTER SLOTS: " + r.status().ToString());
  auto ranges = ParseClusterSlots(*r, "127.0.0.1");
  if (!ranges.ok()) throw std::runtime_error(ranges.status().ToString());
  std::set<std::string> masters;
  for (const auto& range : *ranges) masters.insert(range.master);
  return {masters.begin(), masters.end()};
}

std::string RedisCluster::NodeId(const std::string& node) const {
  auto r = On(node, {"CLUSTER", "MYID"});
  if (!r.ok()) throw std::runtime_error("CLUSTER MYID on " + node + ": " + r.status().ToString());
  return r->str;
}

void RedisCluster::WaitUntilStable(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::set<std::string> live;
  for (size_t i = 0; i < servers_.size(); ++i) {
    if (alive_[i]) live.insert(NodeName(servers_[i]->port()));
  }
  std::string why;
  while (std::chrono::steady_clock::now() < deadline) {
    bool ok = true;
    std::string first_map;
    for (const auto& node : live) {
      auto info = On(node, {"CLUSTER", "INFO"});
      if (!info.ok() || info->str.find("cluster_state:ok") == std::string::npos) {
        ok = false;
        why = node + " not ok";
        break;
      }
      auto slots = On(node, {"CLUSTER", "SLOTS"});
      auto ranges = slots.ok() ? ParseClusterSlots(*slots, "127.0.0.1") : StatusOr<std::vector<SlotRange>>(slots.status());
      if (!ranges.ok()) {
        ok = false;
        why = node + ": " + ranges.status().ToString();
        break;
      }
      // Every slot served by a live master, and every live node agreeing on who.
      std::map<int, std::string> by_first;
      int covered = 0;
      for (const auto& range : *ranges) {
        covered += range.last - range.first + 1;
        by_first[range.first] = std::to_string(range.last) + "@" + range.master;
        if (!live.count(range.master)) ok = false;
      }
      std::string map;
      for (const auto& [f, rest] : by_first) map += std::to_string(f) + "-" + rest + ";";
      if (covered != kClusterSlots) ok = false;
      if (first_map.empty()) first_map = map;
      if (map != first_map) ok = false;
      if (!ok) {
        why = node + " sees " + map;
        break;
      }
    }
    if (ok) return;
    Sleep(100);
  }
  throw std::runtime_error("redis cluster not stable: " + why);
}

std::string RedisCluster::KillMasterOf(int slot) {
  std::string master = MasterOf(slot);
  for (size_t i = 0; i < servers_.size(); ++i) {
    if (alive_[i] && NodeName(servers_[i]->port()) == master) {
      servers_[i]->Kill();
      alive_[i] = false;
      return master;
    }
  }
  throw std::runtime_error("master " + master + " is not one of ours");
}

void RedisCluster::WaitForFailover(int timeout_ms) { WaitUntilStable(timeout_ms); }

void RedisCluster::MoveSlots(int n, const std::string& from_master, const std::string& to_master) {
  RunRedisCli("--cluster reshard " + AnyLiveNode() + " --cluster-from " + NodeId(from_master) + " --cluster-to " +
              NodeId(to_master) + " --cluster-slots " + std::to_string(n) + " --cluster-yes");
  WaitUntilStable(20000);
}

void RedisCluster::BeginMigration(int slot, const std::string& to_master) {
  std::string from = MasterOf(slot);
  std::string s = std::to_string(slot);
  // IMPORTING first, then MIGRATING: the order redis-cli uses, so no ASK points at a node not yet importing.
  auto a = On(to_master, {"CLUSTER", "SETSLOT", s, "IMPORTING", NodeId(from)});
  if (!a.ok()) throw std::runtime_error("SETSLOT IMPORTING: " + a.status().ToString());
  auto b = On(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", NodeId(to_master)});
  if (!b.ok()) throw std::runtime_error("SETSLOT MIGRATING: " + b.status().ToString());
  migrating_from_[slot] = from;
}

void RedisCluster::FinishMigration(int slot, const std::string& to_master) {
  std::string from = migrating_from_.at(slot);
  std::string s = std::to_string(slot);
  auto to = SplitHostPort(to_master);
  for (;;) {
    auto keys = On(from, {"CLUSTER", "GETKEYSINSLOT", s, "100"});
    if (!keys.ok()) throw std::runtime_error("GETKEYSINSLOT: " + keys.status().ToString());
    if (keys->elements.empty()) break;
    std::vector<std::string> argv = {"MIGRATE", to->first, std::to_string(to->second), "", "0", "5000", "KEYS"};
    for (const auto& k : keys->elements) argv.push_back(k.str);
    auto m = On(from, argv);
    if (!m.ok()) throw std::runtime_error("MIGRATE: " + m.status().ToString());
  }
  // Destination first (ends IMPORTING), then the source, then the others: the order of the Redis docs, so
  // no node sends a client back and forth between two nodes that both think the other owns the slot.
  std::string to_id = NodeId(to_master);
  std::vector<std::string> order = {to_master, from};
  for (const auto& node : Masters()) {
    if (node != to_master && node != from) order.push_back(node);
  }
  for (const auto& node : order) {
    auto r = On(node, {"CLUSTER", "SETSLOT", s, "NODE", to_id});
    if (!r.ok()) throw std::runtime_error("SETSLOT NODE on " + node + ": " + r.status().ToString());
  }
  // The replicas learn the new owner by gossip only, and take it only from a config epoch above the one they
  // hold for the slot: a slot moved back to a node whose epoch is below its last owner's was never taken, and
  // WaitUntilStable gave up after 20 s ("not stable", one node still naming the old owner). BUMPEPOCH gives
  // the new owner the greatest epoch (a no-op when it has it already).
  auto bump = On(to_master, {"CLUSTER", "BUMPEPOCH"});
  if (!bump.ok()) throw std::runtime_error("CLUSTER BUMPEPOCH: " + bump.status().ToString());
  migrating_from_.erase(slot);
  WaitUntilStable(20000);
}

void RedisCluster::FlushAll() {
  for (const auto& node : Masters()) {
    auto r = On(node, {"FLUSHALL"});
    if (!r.ok()) throw std::runtime_error("FLUSHALL on " + node + ": " + r.status().ToString());
  }
}

}  // namespace streamfleet::testing
