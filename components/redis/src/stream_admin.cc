#include "streamfleet/redis/stream_admin.h"

#include <sys/time.h>

#include <charconv>

namespace streamfleet {

namespace {

std::pair<uint64_t, uint64_t> SplitId(const std::string& id) {
  uint64_t ms = 0, seq = 0;
  auto dash = id.find('-');
  std::from_chars(id.data(), id.data() + (dash == std::string::npos ? id.size() : dash), ms);
  if (dash != std::string::npos) std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
  return {ms, seq};
}

int64_t WallMs() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000;
}

// KEYS: 1 stream. ARGV: 1 group, 2 consumer, 3 entry id.
const LuaScript& LeaseScript() {
  static const LuaScript s(R"(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
)");
  return s;
}

// Deletes consumer ARGV[2] of group ARGV[1] on stream KEYS[1] only if it holds no pending entry (returns 0;
// -1 when it was kept).
const LuaScript& DeleteIdleConsumerScript() {
  static const LuaScript s(R"(
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 0
)");
  return s;
}

}  // namespace

StatusOr<bool> ExtendLease(RedisClient& redis, const std::string& stream, const std::string& group,
                           const std::string& consumer, const std::string& id) {
  auto r = redis.Eval(LeaseScript(), {stream}, {group, consumer, id});
  if (!r.ok()) return r.status();
  return r->integer == 1;
}

StatusOr<int64_t> RedisTimeMs(RedisClient& redis) {
  auto t = redis.Command({"TIME"});
  if (!t.ok()) return t.status();
  if (!t->is_array() || t->elements.size() != 2) return Status::Internal("TIME: unexpected reply");
  try {
    return std::stoll(t->elements[0].str) * 1000 + std::stoll(t->elements[1].str) / 1000;
  } catch (const std::exception&) {
    return Status::Internal("TIME: unexpected reply");
  }
}

int64_t StreamIdMs(const std::string& id) { return static_cast<int64_t>(SplitId(id).first); }

int CompareStreamIds(const std::string& a, const std::string& b) {
  auto x = SplitId(a), y = SplitId(b);
  if (x < y) return -1;
  if (y < x) return 1;
  return 0;
}

Status EnsureGroup(RedisClient& redis, const std::string& stream, const std::string& group) {
  auto r = redis.Command({"XGROUP", "CREATE", stream, group, "0", "MKSTREAM"});
  if (r.ok() || r.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
  return r.status();
}

StatusOr<std::vector<ClaimedEntry>> ClaimIdle(RedisClient& redis, const std::string& stream, const std::string& group,
                                              const std::string& consumer, int64_t min_idle_ms, int count,
                                              std::string* cursor) {
  const std::string start = cursor != nullptr && !cursor->empty() ? *cursor : "0-0";
  auto r = redis.Command({"XAUTOCLAIM", stream, group, consumer, std::to_string(min_idle_ms), start, "COUNT",
                          std::to_string(count)});
  if (!r.ok()) return r.status();
  std::vector<ClaimedEntry> out;
  if (cursor != nullptr) *cursor = "0-0";
  if (!r->is_array() || r->elements.size() < 2) return out;
  if (cursor != nullptr) *cursor = r->elements[0].str;
  // Redis 7: [cursor, entries, deleted ids]. Deleted (trimmed) ids are gone for good: ack them.
  if (r->elements.size() >= 3 && !r->elements[2].elements.empty()) {
    std::vector<std::string> ack = {"XACK", stream, group};
    for (const auto& id : r->elements[2].elements) ack.push_back(id.str);
    auto a = redis.Command(ack);
    if (!a.ok()) return a.status();
  }
  auto entries = ParseEntries(stream, r->elements[1]);
  if (entries.empty()) return out;
  std::vector<std::vector<std::string>> cmds;
  for (const auto& e : entries) cmds.push_back({"XPENDING", stream, group, e.id, e.id, "1"});
  auto p = redis.Pipeline(cmds);
  if (!p.ok()) return p.status();
  for (size_t i = 0; i < entries.size(); ++i) {
    ClaimedEntry c;
    c.entry = std::move(entries[i]);
    const RedisValue& pv = (*p)[i];
    // [[id, consumer, idle, times_delivered]]
    if (pv.is_array() && !pv.elements.empty() && pv.elements[0].elements.size() >= 4) {
      c.times_delivered = pv.elements[0].elements[3].integer;
    }
    out.push_back(std::move(c));
  }
  return out;
}

namespace {

// An XINFO's refusal for a stream nobody wrote to yet, or a group its consumers have not created yet: nothing
// there to trim or remove, not a failure.
bool NothingThere(const Status& s) {
  const std::string& message = s.message();
  return message.find("no such key") != std::string::npos || message.find("NOGROUP") != std::string::npos;
}

}  // namespace

StatusOr<int64_t> TrimAcknowledged(RedisClient& redis, const std::string& stream, int64_t keep_ms) {
  auto groups = redis.Command({"XINFO", "GROUPS", stream});
  if (!groups.ok()) {
    if (NothingThere(groups.status())) return int64_t{0};
    return groups.status();
  }
  if (groups->elements.empty()) return int64_t{0};  // no group: nobody consumes; leave it to MAXLEN policies
  std::string safe;
  for (const auto& g : groups->elements) {
    std::string name, last;
    for (const auto& [k, v] : ParsePairs(g)) {
      if (k == "name") name = v.str;
      if (k == "last-delivered-id") last = v.str;
    }
    std::string bound = last;
    auto p = redis.Command({"XPENDING", stream, name});
    if (!p.ok()) return p.status();
    // Summary form: [count, smallest id, greatest id, consumers].
    if (p->elements.size() >= 2 && p->elements[0].integer > 0 && !p->elements[1].is_nil()) {
      if (CompareStreamIds(p->elements[1].str, bound) < 0) bound = p->elements[1].str;
    }
    if (safe.empty() || CompareStreamIds(bound, safe) < 0) safe = bound;
  }
  if (safe.empty() || safe == "0-0") return int64_t{0};
  if (keep_ms > 0) {
    // Ids of XADD * are the server's clock in ms: keep what it added in the last keep_ms. Its own TIME,
    // not ours, so clock skew between hosts does not shrink or stretch the window.
    auto now = RedisTimeMs(redis);
    if (!now.ok()) return now.status();
    const int64_t now_ms = *now;
    if (now_ms <= keep_ms) return int64_t{0};
    std::string window = std::to_string(now_ms - keep_ms) + "-0";
    if (CompareStreamIds(window, safe) < 0) safe = window;
  }
  // MINID removes entries with ids strictly lower than `safe`: all delivered and acknowledged.
  auto t = redis.Command({"XTRIM", stream, "MINID", safe});
  if (!t.ok()) return t.status();
  return static_cast<int64_t>(t->integer);
}

StatusOr<bool> DeleteConsumerWithoutPending(RedisClient& redis, const std::string& stream, const std::string& group,
                                            const std::string& consumer) {
  auto d = redis.Eval(DeleteIdleConsumerScript(), {stream}, {group, consumer});
  if (!d.ok()) return d.status();
  return d->integer == 0;
}

StatusOr<int64_t> RemoveDeadConsumers(RedisClient& redis, const std::string& stream, const std::string& group,
                                      int64_t idle_ms) {
  auto r = redis.Command({"XINFO", "CONSUMERS", stream, group});
  if (!r.ok()) {
    if (NothingThere(r.status())) return int64_t{0};
    return r.status();
  }
  int64_t removed = 0;
  for (const auto& c : r->elements) {
    std::string name;
    int64_t pending = 0, idle = 0;
    for (const auto& [k, v] : ParsePairs(c)) {
      if (k == "name") name = v.str;
      if (k == "pending") pending = v.integer;
      if (k == "idle") idle = v.integer;
    }
    if (pending == 0 && idle > idle_ms) {
      // Checked again where it is deleted: the consumer may have read an entry since XINFO, and DELCONSUMER
      // drops its pending entries (that entry would be in no pending list and never delivered again).
      auto d = DeleteConsumerWithoutPending(redis, stream, group, name);
      if (!d.ok()) return d.status();
      if (*d) ++removed;
    }
  }
  return removed;
}

StatusOr<StreamStats> GetStreamStats(RedisClient& redis, const std::string& stream, bool with_consumers) {
  StreamStats st;
  st.stream = stream;
  auto len = redis.Command({"XLEN", stream});
  if (!len.ok()) return len.status();
  st.length = len->integer;
  if (st.length == 0) {
    auto exists = redis.Command({"EXISTS", stream});
    if (!exists.ok()) return exists.status();
    if (exists->integer == 0) return st;
  }
  auto groups = redis.Command({"XINFO", "GROUPS", stream});
  if (!groups.ok()) return groups.status();
  int64_t now = WallMs();
  for (const auto& g : groups->elements) {
    GroupStats gs;
    for (const auto& [k, v] : ParsePairs(g)) {
      if (k == "name") gs.name = v.str;
      if (k == "consumers") gs.consumers = v.integer;
      if (k == "pending") gs.pending = v.integer;
      if (k == "last-delivered-id") gs.last_delivered_id = v.str;
      if (k == "lag") gs.lag = v.is_nil() ? -1 : v.integer;
    }
    if (gs.pending > 0) {
      auto p = redis.Command({"XPENDING", stream, gs.name});
      if (p.ok() && p->elements.size() >= 2 && !p->elements[1].is_nil()) {
        int64_t ms = StreamIdMs(p->elements[1].str);
        gs.oldest_pending_seconds = ms > 0 && now > ms ? static_cast<double>(now - ms) / 1000.0 : 0.0;
      }
    }
    if (with_consumers) {
      auto cs = redis.Command({"XINFO", "CONSUMERS", stream, gs.name});
      if (!cs.ok()) return cs.status();
      for (const auto& c : cs->elements) {
        ConsumerStats one;
        for (const auto& [k, v] : ParsePairs(c)) {
          if (k == "name") one.name = v.str;
          if (k == "pending") one.pending = v.integer;
          if (k == "idle") one.idle_ms = v.integer;
        }
        gs.consumer_list.push_back(std::move(one));
      }
    }
    st.groups.push_back(gs);
  }
  return st;
}

Status DeadLetter(RedisClient& redis, const std::string& dlq_stream, const StreamEntry& entry,
                  const std::string& group, const std::string& reason, int64_t times_delivered) {
  std::vector<std::string> cmd = {"XADD", dlq_stream, "MAXLEN", "~", "1000000", "*",
                                  "source_stream", entry.stream, "source_id", entry.id, "group", group,
                                  "reason", reason, "times_delivered", std::to_string(times_delivered),
                                  "failed_at_ms", std::to_string(WallMs())};
  for (const auto& [k, v] : entry.fields) {
    cmd.push_back(k);
    cmd.push_back(v);
  }
  auto r = redis.Command(cmd);
  return r.status();
}

bool ValidStreamId(std::string_view id) {
  // Digits alone are not enough: Redis refuses a part past UINT64_MAX and SplitId reads it as 0, so such an
  // id was accepted, then every XRANGE from it failed and an events stream resumed there sent nothing.
  auto part = [](std::string_view d) {
    if (d.empty() || d.size() > 20) return false;
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), v);  // unsigned: no sign accepted
    return ec == std::errc() && end == d.data() + d.size();
  };
  auto dash = id.find('-');
  return dash != std::string_view::npos && part(id.substr(0, dash)) && part(id.substr(dash + 1));
}

}  // namespace streamfleet
