#include "queue-worker/event_forwarder.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "streamfleet/base/keys.h"
#include "streamfleet/base/log.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/chunks/fleet_events.h"

namespace streamfleet::worker {

EventForwarder::EventForwarder(const Config& config, const TaskKeys& keys)
    : config_(config), keys_(keys), stream_(KeySchema::FromConfig(config).EventsStream()) {}

StatusOr<std::string> EventForwarder::EventBody(const StreamEntry& entry) {
  auto ev = DecodeFleetEvent(entry);
  if (!ev.ok()) return ev.status();
  // The webhook is the compaction notice (EVENTS_WEBHOOK_URL); the other lifecycle events are for the live
  // events route and are acked without one.
  if (ev->type != "generation.compacted") return Status::NotFound(ev->type + " is not forwarded");
  return ev->json;
}

namespace {

// KEYS[1] = the events stream; ARGV[1] = the group. Reply {unread, length, gap}: Redis 7's count of the
// events added that the group has not read (entries-added - entries-read; -1 when Redis cannot tell), the
// stream's length, and 1 when the stream's first entry is past the group's last delivered one (a gap: the
// trimming removed events the group had not read), else 0.
const LuaScript& EventsBacklogScript() {
  static const LuaScript s(R"(
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, 0} end
local function fields(a)
  local m = {}
  for i = 1, #a, 2 do m[a[i]] = a[i + 1] end
  return m
end
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local s = fields(redis.call('XINFO', 'STREAM', KEYS[1]))
local g
for _, gi in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local m = fields(gi)
  if m['name'] == ARGV[1] then g = m end
end
if not g then return {-1, s['length'], 0} end
local read = g['entries-read']
if not read then
  -- Redis cannot tell (a group made on a new, empty stream has it nil until its first read): known only
  -- when the group has read nothing at all.
  if g['last-delivered-id'] ~= '0-0' then return {-1, s['length'], 0} end
  read = 0
end
local gap = s['first-entry'] and before(g['last-delivered-id'], s['first-entry'][1])
return {s['entries-added'] - read, s['length'], gap and 1 or 0}
)");
  return s;
}

}  // namespace

StatusOr<int64_t> EventForwarder::CountLost(RedisClient& redis, bool drained) {
  auto r = redis.Eval(EventsBacklogScript(), {stream_}, {Group()});
  if (!r.ok()) return r.status();
  if (!r->is_array() || r->elements.size() != 3) return Status::Internal("events backlog: unexpected reply");
  const int64_t unread = r->elements[0].AsInt(), length = r->elements[1].AsInt();
  if (unread < 0) return 0;
  if (drained) {
    // Nothing is left to read: what Redis still counts as unread is its counters' drift (after a gap it may
    // go on counting the lost events as unread), not events.
    unread_drift_ = unread;
    return 0;
  }
  if (r->elements[2].AsInt() == 0) return 0;
  // A gap: every event still in the stream is unread, and what Redis counts as unread beyond them and the
  // drift is gone. Counted by every worker that sees the gap (and again by one restarted while it is open):
  // an alert on any increase is what the count is for.
  const int64_t lost = std::max<int64_t>(0, unread - length - unread_drift_);
  unread_drift_ += lost;
  return lost;
}

Status EventForwarder::Forward(RedisClient& redis, const std::vector<StreamEntry>& entries, int64_t now_ms,
                               Round& round) {
  // The entries in, in order: with their enqueue (a unique task: the key is the event's stream id, so an event
  // delivered twice, by a crash between enqueue and XACK, enqueues one task) or without one (skipped).
  std::vector<std::string> acks = {"XACK", stream_, Group()};
  std::vector<std::vector<std::string>> calls;
  std::vector<const StreamEntry*> called;
  Status failed = Status::Ok();
  for (const auto& e : entries) {
    auto body = EventBody(e);
    if (!body.ok()) {
      if (body.status().code() != StatusCode::kNotFound) {
        SF_LOG_WARN("events {} {}: {}; acked without a webhook", stream_, e.id, body.status().ToString());
      }
      ++round.skipped;
      acks.push_back(e.id);
      continue;
    }
    nlohmann::json payload = {{"url", config_.events_webhook_url}, {"body", nlohmann::json::parse(*body)}};
    EnqueueOptions o = EnqueueOptions::FromConfig(config_);
    o.unique_key = "event:" + e.id;
    o.unique_ttl_s = 86400;  // far longer than any redelivery of the entry
    if (keys_.cluster()) {
      // The unique key and the queue are in different slots: EnqueueTask's round trips, one event at a time.
      auto r = EnqueueTask(redis, keys_, "webhook", payload.dump(), o, now_ms);
      if (!r.ok()) {
        failed = r.status();  // not acked: redelivered, and the unique key dedupes it
        break;
      }
      ++round.forwarded;
      acks.push_back(e.id);
      continue;
    }
    EnqueueResult out;
    auto call = UniqueEnqueueCall(keys_, "webhook", payload.dump(), o, now_ms, out);
    if (!call.ok()) return call.status();
    calls.push_back(RedisClient::EvalArgv(GuardedEnqueueScript(), call->keys, call->args));
    called.push_back(&e);
  }
  if (!calls.empty()) {
    redis.Register(GuardedEnqueueScript());
    auto replies = redis.Pipeline(calls);
    if (!replies.ok()) return replies.status();
    for (size_t i = 0; i < replies->size(); ++i) {
      EnqueueResult out;
      Status s = ReadUniqueEnqueueReply(std::move((*replies)[i]), out);
      if (!s.ok()) {
        if (failed.ok()) failed = s;
        continue;
      }
      ++round.forwarded;
      acks.push_back(called[i]->id);
    }
  }
  if (acks.size() > 3) {
    auto ack = redis.Command(acks);
    if (!ack.ok()) return ack.status();
  }
  return failed;
}

StatusOr<EventForwarder::Round> EventForwarder::ForwardOnce(RedisClient& redis, const std::string& consumer,
                                                            int64_t now_ms, int count, int64_t budget_ms) {
  if (!group_ready_) {
    auto r = redis.Command({"XGROUP", "CREATE", stream_, Group(), "$", "MKSTREAM"});
    if (!r.ok() && r.status().code() != StatusCode::kAlreadyExists) return r.status();
    group_ready_ = true;
  }
  Round round;
  auto lost = CountLost(redis, false);
  if (!lost.ok()) return lost.status();
  if (*lost > 0) {
    round.lost = *lost;
    SF_LOG_ERROR("events {}: {} events were trimmed (MAXLEN) before group {} read them: their webhooks are lost; "
                 "the forwarder fell behind (workers down or too few)",
                 stream_, *lost, Group());
  }
  auto claimed = ClaimIdle(redis, stream_, Group(), consumer, config_.visibility_timeout_ms, count);
  if (!claimed.ok()) return claimed.status();
  std::vector<StreamEntry> entries;
  for (auto& c : *claimed) entries.push_back(std::move(c.entry));
  SF_RETURN_IF_ERROR(Forward(redis, entries, now_ms, round));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(budget_ms);
  do {
    auto read = redis.Command(
        {"XREADGROUP", "GROUP", Group(), consumer, "COUNT", std::to_string(count), "STREAMS", stream_, ">"});
    if (!read.ok()) {
      if (read.status().code() == StatusCode::kFailedPrecondition) group_ready_ = false;  // NOGROUP: stream deleted
      return read.status();
    }
    entries = ParseStreamReply(*read);
    SF_RETURN_IF_ERROR(Forward(redis, entries, now_ms, round));
  } while (static_cast<int>(entries.size()) == count && std::chrono::steady_clock::now() < deadline);
  if (static_cast<int>(entries.size()) < count) SF_RETURN_IF_ERROR(CountLost(redis, true).status());
  return round;
}

}  // namespace streamfleet::worker
