#include "queue-worker/event_forwarder.h"

#include "queue-worker/webhook.h"

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

// KEYS[1] = the events stream; ARGV[1] = the group. How many events the stream's trimming removed before
// the group read them, counted once: when the stream's first entry is past the group's last delivered one (a
// gap), Redis 7's count of what the group has not read (entries-added - entries-read) beyond what the stream
// still holds (all of it past the gap) is gone. The script then sets the group's entries-read to match
// (XGROUP SETID ... ENTRIESREAD), so Redis counts only the events still there as unread: the next gap counts
// from there, and another worker running this script sees no loss left to count. 0 when there is no gap.
const LuaScript& CountTrimmedUnreadScript() {
  static const LuaScript s(R"(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
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
if not s['first-entry'] then return 0 end
local g
for _, gi in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local m = fields(gi)
  if m['name'] == ARGV[1] then g = m end
end
if not g or not before(g['last-delivered-id'], s['first-entry'][1]) then return 0 end
local read = g['entries-read']
if not read then
  -- Redis cannot tell (a group made on a new, empty stream has it nil until its first read): known only
  -- when the group has read nothing at all.
  if g['last-delivered-id'] ~= '0-0' then return 0 end
  read = 0
end
local lost = s['entries-added'] - read - s['length']
redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], g['last-delivered-id'], 'ENTRIESREAD', s['entries-added'] - s['length'])
if lost < 0 then return 0 end
return lost
)");
  return s;
}

}  // namespace

Status EventForwarder::Forward(RedisClient& redis, const std::vector<StreamEntry>& entries, int64_t now_ms,
                               Round& round) {
  // The entries in, in order: with their enqueue (a unique task: the key is the event's stream id, so an event
  // delivered twice, by a crash between enqueue and XACK, enqueues one task) or without one (skipped).
  std::vector<std::string> acks = {"XACK", stream_, Group()};
  std::vector<std::vector<std::string>> calls;
  std::vector<const StreamEntry*> called;
  Status failed = Status::Ok();
  // Counted into `round` once acked: an entry whose XACK fails is delivered again and counted then.
  int64_t forwarded = 0, skipped = 0;
  for (const auto& e : entries) {
    auto body = EventBody(e);
    if (!body.ok()) {
      if (body.status().code() != StatusCode::kNotFound) {
        SF_LOG_WARN("events {} {}: {}; acked without a webhook", stream_, e.id, body.status().ToString());
      }
      ++skipped;
      acks.push_back(e.id);
      continue;
    }
    // The URL by name, looked up when the task runs: a hook URL often carries its token, and a task's payload
    // is shown by dead letters, the admin UI and task records.
    nlohmann::json payload = {{"url_from", kEventsWebhookUrlFrom}, {"body", nlohmann::json::parse(*body)}};
    if (!config_.task_signing_secret.empty()) {
      // Over the body as the handler serializes it again (webhook.cc), so the two agree byte for byte.
      payload["attest"] = EventsWebhookAttestation(
          config_.task_signing_secret,
          payload["body"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
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
      ++forwarded;
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
      ++forwarded;
      acks.push_back(called[i]->id);
    }
  }
  if (acks.size() > 3) {
    auto ack = redis.Command(acks);
    if (!ack.ok()) return ack.status();
    // Only what this XACK took out of the group's pending list: entries another worker claimed (a batch slower
    // than VISIBILITY_TIMEOUT) and acked were counted by that worker. Which of them were skips is not known;
    // the total is exact.
    const int64_t acked = ack->AsInt();
    if (acked < forwarded + skipped) {
      forwarded = std::min(forwarded, acked);
      skipped = acked - forwarded;
    }
  }
  round.forwarded += forwarded;
  round.skipped += skipped;
  return failed;
}

Status EventForwarder::CountTrimmedUnread(RedisClient& redis, Round& round) {
  auto lost = redis.Eval(CountTrimmedUnreadScript(), {stream_}, {Group()});
  if (!lost.ok()) return lost.status();
  if (lost->AsInt() > 0) {
    round.lost += lost->AsInt();
    SF_LOG_ERROR("events {}: {} events were trimmed (MAXLEN) before group {} read them: their webhooks are lost; "
                 "the forwarder fell behind (workers down or too few)",
                 stream_, lost->AsInt(), Group());
  }
  return Status::Ok();
}

Status EventForwarder::ForwardOnce(RedisClient& redis, const std::string& consumer, int64_t now_ms, int count,
                                   Round& round, int64_t budget_ms) {
  if (!group_ready_) {
    auto r = redis.Command({"XGROUP", "CREATE", stream_, Group(), "$", "MKSTREAM"});
    if (!r.ok() && r.status().code() != StatusCode::kAlreadyExists) return r.status();
    group_ready_ = true;
  }
  auto claimed = ClaimIdle(redis, stream_, Group(), consumer, config_.visibility_timeout_ms, count);
  if (!claimed.ok()) {
    if (claimed.status().code() == StatusCode::kFailedPrecondition) group_ready_ = false;  // NOGROUP
    return claimed.status();
  }
  std::vector<StreamEntry> entries;
  for (auto& c : *claimed) entries.push_back(std::move(c.entry));
  SF_RETURN_IF_ERROR(Forward(redis, entries, now_ms, round));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(budget_ms);
  do {
    // Before every read: a read past a gap would leave it uncounted.
    SF_RETURN_IF_ERROR(CountTrimmedUnread(redis, round));
    auto read = redis.Command(
        {"XREADGROUP", "GROUP", Group(), consumer, "COUNT", std::to_string(count), "STREAMS", stream_, ">"});
    if (!read.ok()) {
      if (read.status().code() == StatusCode::kFailedPrecondition) group_ready_ = false;  // NOGROUP: stream deleted
      return read.status();
    }
    entries = ParseStreamReply(*read);
    SF_RETURN_IF_ERROR(Forward(redis, entries, now_ms, round));
  } while (static_cast<int>(entries.size()) == count && std::chrono::steady_clock::now() < deadline);
  return Status::Ok();
}

}  // namespace streamfleet::worker
