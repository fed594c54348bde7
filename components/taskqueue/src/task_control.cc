#include "streamfleet/taskqueue/task_control.h"

namespace streamfleet {

namespace {

bool Cancellable(const std::string& state) {
  return state == "pending" || state == "scheduled" || state == "retry_scheduled";
}

// KEYS: 1 status record, 2 cancel markers. ARGV: 1 task id, 2 now ms, 3 record TTL s, 4 drop markers older
// than this. The state check, the marker and the record in one step: a worker that reads the task after it
// sees the marker. Returns {0} (no record), {1, state} (cancelled now), {2, state} (nothing changed).
const LuaScript& CancelScript() {
  static const LuaScript s(R"(
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0} end
if state ~= 'pending' and state ~= 'scheduled' and state ~= 'retry_scheduled' then return {2, state} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'cancelled_at_ms', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, state}
)");
  return s;
}

// KEYS: 1 status record. ARGV: 1 now ms, 2 record TTL s. The record alone: "cancelled" if it still says the
// task waits. Returns {0} (no record), {1, state} (cancelled now), {2, state} (nothing changed).
const LuaScript& CancelRecordScript() {
  static const LuaScript s(R"(
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0} end
if state ~= 'pending' and state ~= 'scheduled' and state ~= 'retry_scheduled' then return {2, state} end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'cancelled_at_ms', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, state}
)");
  return s;
}

StatusOr<RedisValue> CancelRecord(RedisCommands& redis, const TaskKeys& keys, const std::string& id,
                                  int64_t record_ttl_s, int64_t now_ms) {
  auto r = redis.Eval(CancelRecordScript(), {keys.Status(id)}, {std::to_string(now_ms), std::to_string(record_ttl_s)});
  if (!r.ok()) return r.status();
  if (!r->is_array() || r->elements.empty()) return Status::Internal("cancel record script: unexpected reply");
  return r;
}

CancelResult Outcome(const std::string& state) {
  if (state == "cancelled") return {CancelOutcome::kAlreadyCancelled, state};
  if (Cancellable(state)) return {CancelOutcome::kCancelled, state};
  return {CancelOutcome::kTooLate, state};
}

// Cluster schema: the record and the markers live on different masters, so no script spans them. The
// markers go first, in a round trip of their own (a worker reading the task from then on skips it), then the
// record, by a script that checks its state as it writes it: read, then written, a task that started in
// between ended up "cancelled" while it ran or after it succeeded. Too late by then, the markers are taken
// back (a retry of the task would otherwise be skipped).
StatusOr<CancelResult> CancelSharded(RedisCommands& redis, const TaskKeys& keys, const std::string& id,
                                     int64_t record_ttl_s, int64_t now_ms) {
  auto r = redis.Command({"HMGET", keys.Status(id), "state", "queue"});
  if (!r.ok()) return r.status();
  if (!r->is_array() || r->elements.size() != 2 || r->elements[0].is_nil()) return CancelResult{};
  const std::string state = r->elements[0].str;
  const std::string queue = r->elements[1].str;
  if (!Cancellable(state)) return Outcome(state);
  if (!ValidQueueName(queue)) return Status::Internal("task " + id + " has a record without a valid queue");
  std::vector<std::vector<std::string>> marks, unmarks;
  const std::string now = std::to_string(now_ms);
  for (const std::string& stream : keys.QueueShards(queue)) {
    marks.push_back({"ZREMRANGEBYSCORE", keys.CancelledOf(stream), "-inf",
                     "(" + std::to_string(now_ms - kCancelMarkerTtlMs)});
    marks.push_back({"ZADD", keys.CancelledOf(stream), now, id});
    unmarks.push_back({"ZREM", keys.CancelledOf(stream), id});
  }
  auto marked = redis.Pipeline(marks);
  if (!marked.ok()) return marked.status();
  for (const RedisValue& v : *marked) {
    if (v.is_error()) return TranslateRedisError(v.str);
  }
  auto rec = CancelRecord(redis, keys, id, record_ttl_s, now_ms);
  if (!rec.ok()) return rec.status();  // the markers stay: the caller retries, and a retry meets them
  if (rec->elements[0].AsInt() == 1) return CancelResult{CancelOutcome::kCancelled, state};
  const std::string now_state = rec->elements.size() > 1 ? rec->elements[1].str : "";
  // Another cancel got there first (a double click, a client's retry): the markers are its too, so they stay.
  // Otherwise the task started or the record is gone: taken back (best effort: a marker left behind is
  // dropped by a later cancel's trim).
  if (now_state != "cancelled") (void)redis.Pipeline(unmarks);
  if (rec->elements[0].AsInt() == 0) return CancelResult{};
  return Outcome(now_state);
}

}  // namespace

const std::string* TaskRecord::Field(const std::string& name) const {
  for (const auto& [k, v] : fields) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string TaskRecord::state() const {
  const std::string* s = Field("state");
  return s ? *s : "";
}

StatusOr<std::optional<TaskRecord>> ReadTaskRecord(RedisCommands& redis, const TaskKeys& keys, const std::string& id) {
  auto r = redis.Command({"HGETALL", keys.Status(id)});
  if (!r.ok()) return r.status();
  if (r->elements.empty()) return std::optional<TaskRecord>();
  TaskRecord rec;
  rec.id = id;
  for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
    rec.fields.emplace_back(r->elements[i].str, r->elements[i + 1].str);
  }
  return std::optional<TaskRecord>(std::move(rec));
}

StatusOr<bool> RecordSkippedTaskCancelled(RedisCommands& redis, const TaskKeys& keys, const std::string& id,
                                          int64_t record_ttl_s, int64_t now_ms) {
  if (record_ttl_s <= 0 || id.empty()) return false;
  auto r = CancelRecord(redis, keys, id, record_ttl_s, now_ms);
  if (!r.ok()) return r.status();
  return r->elements[0].AsInt() == 1;
}

StatusOr<CancelResult> CancelTask(RedisCommands& redis, const TaskKeys& keys, const std::string& id,
                                  int64_t record_ttl_s, int64_t now_ms) {
  if (id.empty()) return Status::InvalidArgument("empty task id");
  // No record can exist without a TTL; the markers alone would be a cancel nobody can see.
  if (record_ttl_s <= 0) return CancelResult{};
  if (keys.cluster()) return CancelSharded(redis, keys, id, record_ttl_s, now_ms);
  auto r = redis.Eval(CancelScript(), {keys.Status(id), keys.Cancelled()},
                      {id, std::to_string(now_ms), std::to_string(record_ttl_s),
                       std::to_string(now_ms - kCancelMarkerTtlMs)});
  if (!r.ok()) return r.status();
  if (!r->is_array() || r->elements.empty()) return Status::Internal("cancel script: unexpected reply");
  if (r->elements[0].AsInt() == 0) return CancelResult{};
  return Outcome(r->elements.size() > 1 ? r->elements[1].str : "");
}

}  // namespace streamfleet
