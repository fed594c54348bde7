#pragma once
// Test support: a real Redis Cluster on loopback (3 masters + 3 replicas), owned by the test.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/testing/redis_server.h"

namespace streamfleet::testing {

class RedisCluster {
 public:
  // Starts the six servers, joins them with `redis-cli --cluster create --cluster-replicas 1` and waits
  // until every node reports cluster_state:ok and all 16384 slots are served. Throws on failure.
  RedisCluster();
  ~RedisCluster();  // stops every server
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  RedisConfig config() const;                        // cluster mode, every node a seed
  std::string url() const;                           // REDIS_URL value: redis://h1:p1,h2:p2,...
  std::map<std::string, std::string> env() const;    // REDIS_URL + REDIS_CLUSTER
  std::vector<std::string> nodes() const;            // host:port of every node started, live or not

  // Asks a live node (CLUSTER SLOTS) who serves `slot` now.
  std::string MasterOf(int slot) const;
  std::vector<std::string> Masters() const;
  std::string NodeId(const std::string& node) const;  // CLUSTER MYID

  // SIGKILLs the master serving `slot`; returns its host:port.
  std::string KillMasterOf(int slot);
  // Waits until the live nodes agree on a slot map that covers every slot with live masters and say
  // cluster_state:ok (a replica of each killed master promoted). Throws after `timeout_ms`.
  void WaitForFailover(int timeout_ms = 20000);

  // Moves `n` slots with `redis-cli --cluster reshard` from one master to another (host:port).
  void MoveSlots(int n, const std::string& from_master, const std::string& to_master);
  // The steps of a manual migration, so a test can hold one open (ASK): mark `slot` MIGRATING on its
  // master and IMPORTING on `to_master`; then move its keys (MIGRATE) and assign it (SETSLOT NODE).
  void BeginMigration(int slot, const std::string& to_master);
  void FinishMigration(int slot, const std::string& to_master);

  void FlushAll();  // FLUSHALL on every live master

 private:
  // One command on one node (throws on a connection error; error replies come back as a Status).
  StatusOr<RedisValue> On(const std::string& node, const std::vector<std::string>& argv) const;
  std::string AnyLiveNode() const;
  void WaitUntilStable(int timeout_ms);
  void WaitForReplicas(int timeout_ms);  // every master has one replica, synced

  std::vector<std::unique_ptr<RedisServer>> servers_;
  std::vector<bool> alive_;
  std::map<int, std::string> migrating_from_;  // slot -> source master, for FinishMigration
};

}  // namespace streamfleet::testing
