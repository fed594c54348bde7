#include "streamfleet/chunks/consumed_watermark.h"

#include <algorithm>

#include "streamfleet/redis/stream_admin.h"

namespace streamfleet {

StatusOr<int64_t> ConsumedWatermarkMs(RedisCommands& redis, const std::vector<std::string>& streams,
                                      const std::string& group) {
  // Round trip 1: per stream, the group's oldest pending entry (XPENDING summary) and its read position.
  std::vector<std::vector<std::string>> cmds;
  for (const auto& s : streams) {
    cmds.push_back({"XPENDING", s, group});
    cmds.push_back({"XINFO", "GROUPS", s});
  }
  auto r = redis.Pipeline(cmds);
  if (!r.ok()) return r.status();
  int64_t wm = 0;
  auto lower = [&wm](const std::string& id) {
    int64_t ms = StreamIdMs(id);
    if (ms <= 0) return;
    wm = wm == 0 ? ms - 1 : std::min(wm, ms - 1);
  };
  // Round trip 2: the first entry after the group's last-delivered id, for streams that may have one.
  std::vector<std::vector<std::string>> next;
  for (size_t i = 0; i < streams.size(); ++i) {
    const RedisValue& pending = (*r)[2 * i];
    const RedisValue& groups = (*r)[2 * i + 1];
    // A missing stream or group (errors "no such key" / NOGROUP): nothing of it is behind.
    if (pending.is_error() || groups.is_error()) continue;
    if (pending.elements.size() >= 2 && pending.elements[0].integer > 0) lower(pending.elements[1].str);
    for (const auto& g : groups.elements) {
      std::string name, last;
      int64_t lag = -1;
      for (const auto& [k, v] : ParsePairs(g)) {
        if (k == "name") name = v.str;
        if (k == "last-delivered-id") last = v.str;
        if (k == "lag") lag = v.is_nil() ? -1 : v.integer;
      }
      if (name != group || lag == 0) continue;  // lag -1 (Redis cannot tell): look
      next.push_back({"XRANGE", streams[i], "(" + last, "+", "COUNT", "1"});
    }
  }
  if (!next.empty()) {
    auto n = redis.Pipeline(next);
    if (!n.ok()) return n.status();
    for (const auto& v : *n) {
      if (v.is_error()) return TranslateRedisError(v.str);
      if (!v.elements.empty() && !v.elements[0].elements.empty()) lower(v.elements[0].elements[0].str);
    }
  }
  return wm;
}

}  // namespace streamfleet
