#include "streamfleet/taskqueue/task_limits.h"

namespace streamfleet {

namespace {

std::string Tag(const std::string& prefix, const std::string& type) { return "{" + prefix + ":limit:" + type + "}"; }

// KEYS: 1 running permits, 2 this second's start counter. ARGV: 1 max running (0 = none), 2 per second
// (0 = none), 3 token, 4 now ms, 5 lease expiry ms. 0 admitted (permit taken), 1 too many running, 2 rate.
const LuaScript& AcquireScript() {
  static const LuaScript s(R"(
local max_running, per_second = tonumber(ARGV[1]), tonumber(ARGV[2])
if max_running > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
  if redis.call('ZCARD', KEYS[1]) >= max_running then return 1 end
end
if per_second > 0 then
  local n = redis.call('INCR', KEYS[2])
  if n == 1 then redis.call('PEXPIRE', KEYS[2], 2000) end
  if n > per_second then return 2 end
end
if max_running > 0 then redis.call('ZADD', KEYS[1], ARGV[5], ARGV[3]) end
return 0
)");
  return s;
}

}  // namespace

std::string TaskPermitToken(const std::string& stream, const std::string& entry_id, int64_t delivery) {
  return stream + "/" + entry_id + "/" + std::to_string(delivery);
}

std::string TaskPermitsKey(const std::string& prefix, const std::string& type) { return Tag(prefix, type) + ":running"; }

StatusOr<LimitOutcome> AcquireTaskPermit(RedisCommands& redis, const std::string& prefix, const std::string& type,
                                         const TaskLimit& limit, const std::string& token, int64_t now_ms,
                                         int64_t lease_ms) {
  auto r = redis.Eval(AcquireScript(),
                      {TaskPermitsKey(prefix, type), Tag(prefix, type) + ":rate:" + std::to_string(now_ms / 1000)},
                      {std::to_string(limit.max_running), std::to_string(limit.per_second), token,
                       std::to_string(now_ms), std::to_string(now_ms + lease_ms)});
  if (!r.ok()) return r.status();
  switch (r->AsInt()) {
    case 0: return LimitOutcome::kAdmitted;
    case 1: return LimitOutcome::kTooManyRunning;
    default: return LimitOutcome::kRateExceeded;
  }
}

Status ExtendTaskPermit(RedisCommands& redis, const std::string& permits_key, const std::string& token,
                        int64_t expires_at_ms) {
  auto r = redis.Command({"ZADD", permits_key, "XX", std::to_string(expires_at_ms), token});
  return r.ok() ? Status::Ok() : r.status();
}

Status ReleaseTaskPermit(RedisCommands& redis, const std::string& prefix, const std::string& type,
                         const std::string& token) {
  return redis.Send({{"ZREM", TaskPermitsKey(prefix, type), token}});
}

}  // namespace streamfleet
