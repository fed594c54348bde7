#include "streamfleet/chunks/live_buffers.h"

#include <unordered_set>

namespace streamfleet {

Status ForEachLiveBuffer(RedisClient& redis, const KeySchema& keys, int page_size,
                         const std::function<bool(const std::vector<LiveBufferLength>&)>& on_page) {
  // ZSCAN may return a member twice (a rehash between calls): each is reported once.
  std::unordered_set<std::string> seen;
  for (int shard = 0; shard < keys.control_shards(); ++shard) {
    const std::string zset = keys.DeadlinesKey(shard);
    std::string cursor = "0";
    do {
      auto r = redis.Command({"ZSCAN", zset, cursor, "COUNT", std::to_string(page_size)});
      if (!r.ok()) return r.status();
      if (r->elements.size() != 2) return Status::Internal("unexpected ZSCAN reply for " + zset);
      cursor = r->elements[0].str;
      std::vector<LiveBufferLength> page;
      const auto& flat = r->elements[1].elements;  // member, score, member, score, ...
      for (size_t i = 0; i + 1 < flat.size(); i += 2) {
        GenerationId g;
        // A member that is not a generation's (written by something else) is no buffer.
        if (!KeySchema::ParseMember(flat[i].str, &g) || !seen.insert(flat[i].str).second) continue;
        page.push_back({g, keys.BufferKey(g), 0});
      }
      if (page.empty()) continue;
      std::vector<std::vector<std::string>> llens;
      llens.reserve(page.size());
      for (const auto& b : page) llens.push_back({"LLEN", b.key});
      auto lens = redis.Pipeline(llens);
      if (!lens.ok()) return lens.status();
      for (size_t i = 0; i < page.size() && i < lens->size(); ++i) {
        if ((*lens)[i].type == RedisValue::Type::kInteger) page[i].llen = (*lens)[i].integer;
      }
      if (!on_page(page)) return Status::Ok();
    } while (cursor != "0");
  }
  return Status::Ok();
}

}  // namespace streamfleet
