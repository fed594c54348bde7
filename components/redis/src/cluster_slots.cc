#include "streamfleet/redis/cluster_slots.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace streamfleet {

uint16_t Crc16(std::string_view data) {
  // Bitwise rather than table-driven: 16 shifts per byte cost nothing next to a network round trip, and
  // there is no table to get wrong.
  uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc ^= static_cast<uint16_t>(byte) << 8;
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

std::string_view HashedPart(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) return key.substr(open + 1, close - open - 1);
  }
  return key;
}

int KeySlot(std::string_view key) { return Crc16(HashedPart(key)) & (kClusterSlots - 1); }

std::optional<std::pair<std::string, int>> SplitHostPort(const std::string& node) {
  auto colon = node.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  int port = 0;
  const char* b = node.data() + colon + 1;
  const char* e = node.data() + node.size();
  auto [p, ec] = std::from_chars(b, e, port);
  if (b == e || ec != std::errc() || p != e || port <= 0 || port > 65535) return std::nullopt;
  return std::make_pair(node.substr(0, colon), port);
}

namespace {

// A CLUSTER SLOTS node entry: [host, port, id, ...].
std::optional<std::string> NodeName(const RedisValue& v, const std::string& fallback_host) {
  if (!v.is_array() || v.elements.size() < 2) return std::nullopt;
  std::string host = v.elements[0].str;
  if (host.empty() || host == "?") host = fallback_host;
  long long port = v.elements[1].AsInt();
  if (port <= 0 || port > 65535) return std::nullopt;
  return host + ":" + std::to_string(port);
}

}  // namespace

StatusOr<std::vector<SlotRange>> ParseClusterSlots(const RedisValue& reply, const std::string& fallback_host) {
  if (!reply.is_array()) return Status::Internal("CLUSTER SLOTS: not an array");
  std::vector<SlotRange> out;
  for (const auto& r : reply.elements) {
    if (!r.is_array() || r.elements.size() < 3) return Status::Internal("CLUSTER SLOTS: malformed range");
    SlotRange range;
    range.first = static_cast<int>(r.elements[0].AsInt());
    range.last = static_cast<int>(r.elements[1].AsInt());
    if (range.first < 0 || range.last >= kClusterSlots || range.first > range.last) {
      return Status::Internal("CLUSTER SLOTS: bad slot range");
    }
    auto master = NodeName(r.elements[2], fallback_host);
    if (!master) return Status::Internal("CLUSTER SLOTS: malformed master entry");
    range.master = *master;
    for (size_t i = 3; i < r.elements.size(); ++i) {
      if (auto replica = NodeName(r.elements[i], fallback_host)) range.replicas.push_back(*replica);
    }
    out.push_back(std::move(range));
  }
  return out;
}

SlotMap::SlotMap() : owner_(kClusterSlots, -1) {}

int SlotMap::IndexOf(const std::string& node) {
  auto it = std::find(nodes_.begin(), nodes_.end(), node);
  if (it != nodes_.end()) return static_cast<int>(it - nodes_.begin());
  nodes_.push_back(node);
  return static_cast<int>(nodes_.size() - 1);
}

void SlotMap::Assign(const std::vector<SlotRange>& ranges) {
  nodes_.clear();
  std::fill(owner_.begin(), owner_.end(), -1);
  for (const auto& r : ranges) {
    int16_t idx = static_cast<int16_t>(IndexOf(r.master));
    std::fill(owner_.begin() + r.first, owner_.begin() + r.last + 1, idx);
  }
}

void SlotMap::Set(int slot, const std::string& node) {
  if (slot < 0 || slot >= kClusterSlots) return;
  owner_[slot] = static_cast<int16_t>(IndexOf(node));
}

std::optional<std::string> SlotMap::NodeOf(int slot) const {
  if (slot < 0 || slot >= kClusterSlots || owner_[slot] < 0) return std::nullopt;
  return nodes_[owner_[slot]];
}

std::vector<std::string> SlotMap::Masters() const {
  std::set<int16_t> used(owner_.begin(), owner_.end());
  std::vector<std::string> out;
  for (int16_t i : used) {
    if (i >= 0) out.push_back(nodes_[i]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace streamfleet
