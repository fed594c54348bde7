#pragma once
// Redis Cluster's key -> slot function and the slot map a cluster client routes by.
//
// Why in its own file: the slot of a key must match what the servers compute bit for bit (CRC16/XMODEM of
// the hash tag, mod 16384), and it is tested against CLUSTER KEYSLOT on a real cluster
// (components/redis/tests/redis_cluster_test.cc), separately from the routing that uses it.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "streamfleet/redis/redis.h"
#include "streamfleet/base/status.h"

namespace streamfleet {

inline constexpr int kClusterSlots = 16384;

// CRC16-CCITT (XMODEM: poly 0x1021, init 0), the checksum Redis Cluster hashes keys with.
uint16_t Crc16(std::string_view data);

// The part of a key Redis Cluster hashes: a non-empty "{tag}" (first '{', then the first '}' after it) when
// there is one, else the whole key ("{}" and an unclosed '{' count as no tag). Keys sharing it share a slot.
std::string_view HashedPart(std::string_view key);

// The slot of a key: CRC16 of HashedPart(key) mod 16384.
int KeySlot(std::string_view key);

// One range of CLUSTER SLOTS: [first, last] served by `master` ("host:port"), with its replicas.
struct SlotRange {
  int first = 0;
  int last = 0;
  std::string master;
  std::vector<std::string> replicas;
};

// Parses a CLUSTER SLOTS reply. A node advertised with an empty host (a node that does not know its own
// address) gets `fallback_host`, the host the reply came from.
StatusOr<std::vector<SlotRange>> ParseClusterSlots(const RedisValue& reply, const std::string& fallback_host);

// slot -> master. Compact (a node index per slot) because every cluster client holds one.
class SlotMap {
 public:
  SlotMap();
  void Assign(const std::vector<SlotRange>& ranges);  // replaces the whole map
  void Set(int slot, const std::string& node);        // one slot moved (a MOVED reply)
  // The master serving `slot`, or nullopt when no node covers it (a cluster missing slots).
  std::optional<std::string> NodeOf(int slot) const;
  // Every node currently serving at least one slot, sorted (a stable order for "any master").
  std::vector<std::string> Masters() const;
  bool empty() const { return nodes_.empty(); }

 private:
  int IndexOf(const std::string& node);
  std::vector<std::string> nodes_;
  std::vector<int16_t> owner_;  // index into nodes_, -1 = uncovered
};

// Splits "host:port" (the port is the text after the last ':'); nullopt when malformed.
std::optional<std::pair<std::string, int>> SplitHostPort(const std::string& node);

}  // namespace streamfleet
