#include "streamfleet/redis/redis_scan.h"

namespace streamfleet {

Status ScanAll(RedisClient& client, const std::string& pattern, int count,
               const std::function<bool(const std::vector<std::string>& keys)>& on_batch) {
  std::vector<std::string> masters = client.Masters();
  if (masters.empty()) return Status::Unavailable("redis: no master to scan (cluster unreachable)");
  for (const std::string& node : masters) {
    std::string cursor = "0";
    do {
      auto r = client.CommandOn(node, {"SCAN", cursor, "MATCH", pattern, "COUNT", std::to_string(count)});
      if (!r.ok()) return r.status();
      if (!r->is_array() || r->elements.size() != 2) return Status::Internal("SCAN: unexpected reply from " + node);
      cursor = r->elements[0].str;
      std::vector<std::string> keys;
      keys.reserve(r->elements[1].elements.size());
      for (const auto& k : r->elements[1].elements) keys.push_back(k.str);
      if (!keys.empty() && !on_batch(keys)) return Status::Ok();
    } while (cursor != "0");
  }
  return Status::Ok();
}

}  // namespace streamfleet
