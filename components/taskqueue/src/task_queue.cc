#include "streamfleet/taskqueue/task_queue.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "cancel_markers_lua.h"
#include "streamfleet/base/random.h"
#include "streamfleet/base/time.h"

namespace streamfleet {

namespace {

// How long a unique key is first claimed for on a cluster, before the task is in (docs/task-protocol.md).
constexpr int64_t kUniqueClaimTtlS = 30;

// A member that is not "<queue>|<envelope>" (written by hand, or by a producer with a bug: the scheduled set
// is writable by every producer), or whose queue key cannot take it (a key of another type), is dead-lettered
// whole, with the reason. The script raised an error on it after removing it: the member was lost without a
// trace and the housekeeper's round ended there. No source_stream: nothing to requeue it to (a requeue skips it).
constexpr const char* kMalformedScheduledLua = R"(
local function malformed(dlq, zset, m, now, why)
  redis.call('XADD', dlq, 'MAXLEN', '~', 1000000, '*', 'scheduled_set', zset, 'reason', why,
    'times_delivered', '0', 'failed_at_ms', now, 'e', m)
  redis.call('ZREM', zset, m)
end
local function move(dlq, zset, m, now, stream, envelope)
  -- pcall: a queue key of another type refuses the XADD; out of memory refuses the dead letter too, and the
  -- member then waits for the next round.
  local r = redis.pcall('XADD', stream, '*', 'e', envelope)
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'OOM', 1, true) then return redis.error_reply(r.err) end
    malformed(dlq, zset, m, now, 'scheduled member not movable to ' .. stream .. ': ' .. r.err)
  else
    redis.call('ZREM', zset, m)
  end
end
local NO_QUEUE = 'malformed scheduled member: not "<queue>|<envelope>"'
)";

// KEYS: 1 scheduled zset, 2 task dead-letter stream. ARGV: 1 now, 2 limit, 3 queue key prefix ("{p}:queue:").
const LuaScript& MoveDueScript() {
  static const LuaScript s(std::string(kMalformedScheduledLua) + R"(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local bar = string.find(m, '|', 1, true)
  if not bar or bar == 1 then
    malformed(KEYS[2], KEYS[1], m, ARGV[1], NO_QUEUE)
  else
    local err = move(KEYS[2], KEYS[1], m, ARGV[1], ARGV[3] .. string.sub(m, 1, bar - 1), string.sub(m, bar + 1))
    if err then return err end
  end
end
return #due
)");
  return s;
}

// Cluster mode, one queue shard. KEYS: 1 its scheduled zset, 2 its stream, 3 its dead-letter stream.
// ARGV: 1 now, 2 limit.
const LuaScript& MoveDueShardScript() {
  static const LuaScript s(std::string(kMalformedScheduledLua) + R"(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local bar = string.find(m, '|', 1, true)
  if not bar or bar == 1 then
    malformed(KEYS[3], KEYS[1], m, ARGV[1], NO_QUEUE)
  else
    local err = move(KEYS[3], KEYS[1], m, ARGV[1], KEYS[2], string.sub(m, bar + 1))
    if err then return err end
  end
end
return #due
)");
  return s;
}

// Cluster mode, one queue shard. KEYS: 1 its pause flag, 2 its stream. ARGV: 1 group, 2 consumer, 3 count.
// {-1} paused, {0} open and empty, {1, XREADGROUP reply}.
const LuaScript& NextTaskShardScript() {
  static const LuaScript s(std::string(kCancelMarkersLua) + R"(
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1} end
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[2], '>')
local skipped = {}
if r then
  r[1][2] = drop_cancelled(KEYS[3], KEYS[2], ARGV[1], r[1][2], skipped)
  if #r[1][2] > 0 then return {1, r, skipped} end
end
return {0, skipped}
)");
  return s;
}

// The delivery must still be pending: if another consumer (one that claimed it while this one was still
// running it) has already retried or finished it, a second retry would start a second chain. Checked with
// XPENDING, not by acking first: the write that can be refused (ZADD, XADD under maxmemory) must come before
// any write, since a script is not rolled back and an ack without its retry would lose the task.
constexpr const char* kStillPendingLua = R"(
local function still_pending(stream, group, id, owner)
  if owner == '' then return #redis.call('XPENDING', stream, group, id, id, 1) == 1 end
  return #redis.call('XPENDING', stream, group, id, id, 1, owner) == 1
end
)";

// KEYS: 1 scheduled zset, 2 stream. ARGV: 1 run_at, 2 member, 3 group, 4 entry id, 5 owner ('' = any
// consumer). 1: scheduled and acked; 0: the entry was no longer pending (on the owner), nothing written.
const LuaScript& RetryScript() {
  static const LuaScript s(std::string(kStillPendingLua) + R"(
if not still_pending(KEYS[2], ARGV[3], ARGV[4], ARGV[5]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), ARGV[2])
return redis.call('XACK', KEYS[2], ARGV[3], ARGV[4])
)");
  return s;
}

// KEYS[1] = paused set, KEYS[2] = cancel markers, KEYS[3..] = queue streams in the order to try; ARGV[1] =
// group, ARGV[2] = consumer, ARGV[3] = count, ARGV[4..] = the queue names of KEYS[3..]. The pause check, the
// non-blocking reads and the cancel check in one round trip: {1, XREADGROUP reply, skipped ids} for the
// tasks found, or {0, {open queue names}, skipped ids} when none is waiting.
const LuaScript& NextTaskScript() {
  static const LuaScript s(std::string(kCancelMarkersLua) + R"(
local paused = {}
for _, q in ipairs(redis.call('SMEMBERS', KEYS[1])) do paused[q] = true end
local open, skipped = {}, {}
for i = 3, #KEYS do
  local name = ARGV[i + 1]
  if not paused[name] then
    open[#open + 1] = name
    local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[i], '>')
    if r then
      r[1][2] = drop_cancelled(KEYS[2], KEYS[i], ARGV[1], r[1][2], skipped)
      if #r[1][2] > 0 then return {1, r, skipped} end
    end
  end
end
return {0, open, skipped}
)");
  return s;
}

// KEYS[1] = cancel markers, KEYS[2..] = the stream of each entry; ARGV[1] = group, ARGV[2k], ARGV[2k+1] = the
// entry id and task id of KEYS[k+1]. The cancel check for entries a blocking XREADGROUP returned: acks the
// marked ones and returns their task ids.
const LuaScript& DropCancelledScript() {
  static const LuaScript s(R"(
local skipped = {}
if redis.call('EXISTS', KEYS[1]) == 0 then return skipped end
for k = 2, #KEYS do
  local id = ARGV[2 * k - 1]
  if id ~= '' and redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('XACK', KEYS[k], ARGV[1], ARGV[2 * k - 2])
    skipped[#skipped + 1] = id
  end
end
return skipped
)");
  return s;
}

// KEYS: 1 dlq stream, 2 stream. ARGV: 1 group, 2 entry id, 3 envelope, 4 reason, 5 times delivered, 6 now.
// As RetryScript: written only while the delivery is still pending (on ARGV[7], the owner; '' = any
// consumer), the dead letter before the ack.
const LuaScript& DeadLetterScript() {
  static const LuaScript s(std::string(kStillPendingLua) + R"(
if not still_pending(KEYS[2], ARGV[1], ARGV[2], ARGV[7]) then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', 1000000, '*', 'source_stream', KEYS[2], 'source_id', ARGV[2],
  'group', ARGV[1], 'reason', ARGV[4], 'times_delivered', ARGV[5], 'failed_at_ms', ARGV[6], 'e', ARGV[3])
return redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
)");
  return s;
}

}  // namespace

// KEYS[1] = a unique key; ARGV[1] = the task id that set it. Deletes the key only while it names that task.
// (Also a periodic task's mark, ARGV[1] = the period this worker set.)
const LuaScript& ReleaseUniqueKeyScript() {
  static const LuaScript s(R"(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)");
  return s;
}

namespace {

void AppendStrings(const RedisValue& v, std::vector<std::string>& out) {
  for (const RedisValue& s : v.elements) out.push_back(s.str);
}

std::string NewId() {
  static const char* hex = "0123456789abcdef";
  // 20 hex digits from two 64-bit draws (4 bits per digit) instead of one draw per digit.
  std::string id(20, '0');
  uint64_t bits = RandomU64();
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 16) bits = RandomU64();
    id[i] = hex[bits & 15];
    bits >>= 4;
  }
  return id;
}

}  // namespace

void AppendTaskStatus(const TaskKeys& keys, const std::string& id, const std::string& state,
                      std::vector<std::string> fields, int64_t ttl_s, std::vector<std::vector<std::string>>& cmds) {
  if (ttl_s <= 0 || id.empty()) return;
  std::string key = keys.Status(id);
  std::vector<std::string> hset = {"HSET", key, "state", state};
  hset.reserve(hset.size() + fields.size());
  for (std::string& f : fields) hset.push_back(std::move(f));
  cmds.push_back(std::move(hset));
  cmds.push_back({"EXPIRE", std::move(key), std::to_string(ttl_s)});
}

namespace {

// What enqueuing one task writes: its status record (unless status records are off) and its add, the XADD to
// its queue or the ZADD of a delayed task. Sent as a pipeline (AppendEnqueueCommands) or as the arguments of
// GuardedEnqueueScript.
struct TaskWrites {
  std::string state;                       // the status record's state (AppendTaskStatus)
  std::vector<std::string> status_fields;  // its other field/value pairs
  int64_t status_ttl_s = 0;                // 0 = no status record (status records off)
  std::string add_key;                     // the queue stream, or the scheduled zset
  std::string member;                      // the envelope (XADD), "queue|envelope" (ZADD)
  std::string score;                       // run_at ms; "" = XADD
};

TaskWrites PlanEnqueue(const TaskKeys& keys, const std::string& type, const std::string& payload,
                       const EnqueueOptions& opts, int64_t now_ms, EnqueueResult& out) {
  // Reused by this thread from task to task: its strings keep their capacity.
  thread_local v1::TaskEnvelope e;
  e.Clear();
  e.set_id(out.id);
  e.set_type(type);
  e.set_payload(payload);
  e.set_attempt(0);
  e.set_enqueued_at_ms(now_ms);
  e.set_run_at_ms(opts.run_at_ms);
  e.set_unique_key(opts.unique_key);
  e.set_queue(opts.queue);
  TaskWrites w;
  out.scheduled = opts.run_at_ms > now_ms;
  std::string stream = keys.Queue(opts.queue, keys.ShardFor(opts.unique_key));
  w.state = out.scheduled ? "scheduled" : "pending";
  w.status_fields = {"type", type, "queue", opts.queue, "attempts", "0", "enqueued_at_ms", std::to_string(now_ms)};
  if (out.scheduled) {
    w.status_fields.push_back("run_at_ms");
    w.status_fields.push_back(std::to_string(opts.run_at_ms));
  }
  w.status_ttl_s = opts.status_ttl_s;
  if (out.scheduled) {
    w.add_key = keys.ScheduledOf(stream);
    w.score = std::to_string(opts.run_at_ms);
    w.member = opts.queue + "|" + e.SerializeAsString();
  } else {
    w.add_key = std::move(stream);
    w.member = e.SerializeAsString();
  }
  return w;
}

// The commands that enqueue one non-unique task, status hash first (unless status records are off): Redis
// runs a pipeline in order, so a fast worker can never finish the task before its "pending" status lands
// (and overwrite "succeeded").
void AppendEnqueueCommands(const TaskKeys& keys, const std::string& type, const std::string& payload,
                           const EnqueueOptions& opts, int64_t now_ms, EnqueueResult& out,
                           std::vector<std::vector<std::string>>& cmds) {
  TaskWrites w = PlanEnqueue(keys, type, payload, opts, now_ms, out);
  AppendTaskStatus(keys, out.id, w.state, std::move(w.status_fields), w.status_ttl_s, cmds);
  if (w.score.empty()) {
    cmds.push_back({"XADD", std::move(w.add_key), "*", "e", std::move(w.member)});
  } else {
    cmds.push_back({"ZADD", std::move(w.add_key), std::move(w.score), std::move(w.member)});
  }
}

Status CheckEnqueue(const std::string& type, const EnqueueOptions& opts) {
  if (!ValidQueueName(opts.queue)) return Status::InvalidArgument("invalid queue name \"" + opts.queue + "\"");
  if (type.empty()) return Status::InvalidArgument("empty task type");
  if (!opts.unique_key.empty() && opts.unique_ttl_s <= 0) {
    return Status::InvalidArgument("unique_for must be positive");
  }
  return Status::Ok();
}

bool IsStatusWrite(const std::vector<std::string>& cmd) { return cmd[0] == "HSET" || cmd[0] == "EXPIRE"; }

// Sends AppendEnqueueCommands' commands. The ZADD/XADD must succeed; the status writes before them are best
// effort. A cluster splits a pipeline per master and the masters' order is not the callers', so there the
// status writes go first in a round trip of their own.
Status RunEnqueue(RedisCommands& redis, const TaskKeys& keys, const std::vector<std::vector<std::string>>& cmds) {
  const std::vector<std::vector<std::string>>* send = &cmds;  // standard mode: all in one round trip
  std::vector<std::vector<std::string>> statuses, adds;
  if (keys.cluster()) {
    for (const auto& cmd : cmds) (IsStatusWrite(cmd) ? statuses : adds).push_back(cmd);
    if (!statuses.empty()) {
      auto s = redis.Pipeline(statuses);
      if (!s.ok()) return s.status();
    }
    send = &adds;
  }
  auto r = redis.Pipeline(*send);
  if (!r.ok()) return r.status();
  for (size_t i = 0; i < r->size(); ++i) {
    if (!IsStatusWrite((*send)[i]) && (*r)[i].is_error()) return TranslateRedisError((*r)[i].str);
  }
  return Status::Ok();
}

}  // namespace

// KEYS: 1 the guard; 2 the task's status record (absent: none). ARGV: 1 the guard's kind: 'u' a unique key
// (ARGV[2] the task id, ARGV[3] its TTL in s) or 'p' a periodic task's last period (ARGV[2] the interval in
// ms, ARGV[3] the mark's TTL in ms; the period is Redis' clock's, so the workers' clocks do not matter and a
// period fires once however far apart they are); 4 the add: 'x' (XADD to ARGV[5] of field e = ARGV[6]), 'z'
// (ZADD to ARGV[5] of member ARGV[6] with score ARGV[7]) or '' (none: the guard alone is taken, for a cluster
// whose queue is in another slot); 8 the status TTL in s; 9.. the status record's field/value pairs.
// The add's key is an argument, not a declared key: ACLs grant producers the scheduled set write-only
// (deploy/redis/users.acl, %W~), which Redis refuses for a script's declared keys. The script runs on the
// standard schema only, where that is allowed.
// The add goes first and through pcall: a failed add writes nothing, so the guard is never left taken for a
// task that does not exist (and the script is one step for Redis: no crash falls between).
// Reply {1, guard value} (the task id, or the period fired), {0, the holder's task id or ''} when taken.
const LuaScript& GuardedEnqueueScript() {
  // No newline before the first line: the text is docs/task-protocol.md's "enqueue script" byte for byte, and
  // producers in other languages send its SHA-1 (EVALSHA), which must name this same script.
  static const LuaScript s(R"(local ttl = tonumber(ARGV[3])
if not ttl or ttl < 1 or ttl ~= math.floor(ttl) then return redis.error_reply('ERR invalid guard TTL') end
local guard
if ARGV[1] == 'u' then
  local holder = redis.call('GET', KEYS[1])
  if holder then return {0, holder} end
  guard = ARGV[2]
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local period = math.floor(now / tonumber(ARGV[2]))
  local last = tonumber(redis.call('GET', KEYS[1]) or '')
  if last and last >= period then return {0, ''} end
  guard = string.format('%d', period)
end
if ARGV[4] ~= '' then
  local added
  if ARGV[4] == 'x' then
    added = redis.pcall('XADD', ARGV[5], '*', 'e', ARGV[6])
  else
    added = redis.pcall('ZADD', ARGV[5], ARGV[7], ARGV[6])
  end
  if type(added) == 'table' and added.err then return added end
  if KEYS[2] then
    -- Best effort, as in a pipelined enqueue: the task is in.
    redis.pcall('HSET', KEYS[2], unpack(ARGV, 9))
    redis.pcall('EXPIRE', KEYS[2], ARGV[8])
  end
end
redis.call('SET', KEYS[1], guard, ARGV[1] == 'u' and 'EX' or 'PX', ARGV[3])
return {1, guard}
)");
  return s;
}

namespace {

// GuardedEnqueueScript's KEYS and ARGV after the guard's own (KEYS[1]; ARGV 1-3): w's writes for task `id`
// (its status record as AppendTaskStatus would write it), or none when w is null.
void AppendGuardedWrites(const TaskKeys& keys, const std::string& id, const TaskWrites* w, GuardedCall& call) {
  if (w == nullptr) {
    call.args.insert(call.args.end(), {"", "", "", "", "0"});
    return;
  }
  call.args.insert(call.args.end(), {w->score.empty() ? "x" : "z", w->add_key, w->member, w->score});
  if (w->status_ttl_s <= 0) {  // AppendTaskStatus' rule: no record
    call.args.push_back("0");
    return;
  }
  call.keys.push_back(keys.Status(id));
  call.args.insert(call.args.end(), {std::to_string(w->status_ttl_s), "state", w->state});
  call.args.insert(call.args.end(), w->status_fields.begin(), w->status_fields.end());
}

}  // namespace

StatusOr<std::vector<std::vector<std::string>>> EnqueueCommands(const TaskKeys& keys, const std::string& type,
                                                                const std::string& payload,
                                                                const EnqueueOptions& opts, int64_t now_ms,
                                                                EnqueueResult& out) {
  SF_RETURN_IF_ERROR(CheckEnqueue(type, opts));
  if (out.id.empty()) out.id = opts.id.empty() ? NewId() : opts.id;
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(3);
  AppendEnqueueCommands(keys, type, payload, opts, now_ms, out, cmds);
  return cmds;
}

std::string NewTaskId() { return NewId(); }

StatusOr<GuardedCall> UniqueEnqueueCall(const TaskKeys& keys, const std::string& type, const std::string& payload,
                                        const EnqueueOptions& opts, int64_t now_ms, EnqueueResult& out) {
  SF_RETURN_IF_ERROR(CheckEnqueue(type, opts));
  if (opts.unique_key.empty()) return Status::InvalidArgument("UniqueEnqueueCall takes a unique task");
  if (out.id.empty()) out.id = opts.id.empty() ? NewId() : opts.id;
  const TaskWrites w = PlanEnqueue(keys, type, payload, opts, now_ms, out);
  GuardedCall call{{keys.Unique(opts.unique_key)}, {"u", out.id, std::to_string(opts.unique_ttl_s)}};
  AppendGuardedWrites(keys, out.id, &w, call);
  return call;
}

Status ReadUniqueEnqueueReply(const StatusOr<RedisValue>& reply, EnqueueResult& out) {
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return TranslateRedisError(reply->str);
  if (!reply->is_array() || reply->elements.size() != 2) return Status::Internal("unique enqueue: unexpected reply");
  if (reply->elements[0].AsInt() == 0) {
    out.duplicate = true;
    out.scheduled = false;
    out.id = reply->elements[1].str;
  }
  return Status::Ok();
}

StatusOr<EnqueueResult> EnqueueTask(RedisCommands& redis, const TaskKeys& keys, const std::string& type,
                                    const std::string& payload, const EnqueueOptions& opts, int64_t now_ms) {
  SF_RETURN_IF_ERROR(CheckEnqueue(type, opts));
  EnqueueResult out;
  out.id = opts.id.empty() ? NewId() : opts.id;
  if (!opts.unique_key.empty() && !keys.cluster()) {
    // Key, add and status in one script: no crash or failed add can leave the key naming a task that was
    // never added (a retry would be answered "duplicate" of nothing until the key expires).
    auto call = UniqueEnqueueCall(keys, type, payload, opts, now_ms, out);
    if (!call.ok()) return call.status();
    SF_RETURN_IF_ERROR(ReadUniqueEnqueueReply(redis.Eval(GuardedEnqueueScript(), call->keys, call->args), out));
    return out;
  }
  // A cluster keeps the unique key in another slot than the queue: docs/task-protocol.md's steps. The key is
  // claimed for kUniqueClaimTtlS only and held for unique_ttl_s once the task is in, so a producer that dies
  // between the two leaves a key naming nothing for seconds, not for the whole unique_ttl_s.
  const int64_t claim_s = std::min(kUniqueClaimTtlS, opts.unique_ttl_s);
  if (!opts.unique_key.empty()) {
    auto r = redis.Command({"SET", keys.Unique(opts.unique_key), out.id, "NX", "EX", std::to_string(claim_s)});
    if (!r.ok()) return r.status();
    if (r->is_nil()) {
      out.duplicate = true;
      auto holder = redis.Command({"GET", keys.Unique(opts.unique_key)});
      if (holder.ok() && !holder->is_nil()) out.id = holder->str;
      return out;
    }
  }
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(3);
  AppendEnqueueCommands(keys, type, payload, opts, now_ms, out, cmds);
  Status added = RunEnqueue(redis, keys, cmds);
  if (!added.ok() && !opts.unique_key.empty()) {
    // The key names a task that was not added: release it (if it is still ours), or a retry of this enqueue
    // would be answered "duplicate" of nothing until the claim runs out. Best effort: Redis may be gone.
    (void)redis.Eval(ReleaseUniqueKeyScript(), {keys.Unique(opts.unique_key)}, {out.id});
  }
  SF_RETURN_IF_ERROR(added);
  if (!opts.unique_key.empty() && opts.unique_ttl_s > claim_s) {
    // Best effort: the task is in (a failure here only shortens the dedupe to the claim). XX: a claim that ran
    // out meanwhile is not made again (the task is in either way).
    (void)redis.Command({"SET", keys.Unique(opts.unique_key), out.id, "XX", "EX", std::to_string(opts.unique_ttl_s)});
  }
  return out;
}

StatusOr<bool> EnqueuePeriodic(RedisCommands& redis, const TaskKeys& keys, const std::string& name,
                               int64_t interval_ms, const std::string& type, const EnqueueOptions& opts,
                               int64_t now_ms) {
  SF_RETURN_IF_ERROR(CheckEnqueue(type, opts));
  if (interval_ms <= 0) return Status::InvalidArgument("periodic task " + name + ": interval must be above 0");
  EnqueueResult out;
  out.id = opts.id.empty() ? NewId() : opts.id;
  // Kept two intervals and a second past its period: while it lives no worker fires that period again, and
  // once it is gone nobody has fired for two intervals, so firing the current period is right.
  GuardedCall call{{keys.Periodic(name)}, {"p", std::to_string(interval_ms), std::to_string(interval_ms * 2 + 1000)}};
  if (!keys.cluster()) {
    const TaskWrites w = PlanEnqueue(keys, type, "{}", opts, now_ms, out);
    AppendGuardedWrites(keys, out.id, &w, call);
  } else {
    AppendGuardedWrites(keys, out.id, nullptr, call);
  }
  auto r = redis.Eval(GuardedEnqueueScript(), call.keys, call.args);
  if (!r.ok()) return r.status();
  if (!r->is_array() || r->elements.size() != 2) return Status::Internal("periodic enqueue: unexpected reply");
  if (r->elements[0].AsInt() == 0) return false;
  if (!keys.cluster()) return true;
  // The period is ours: add the task, and give the period back if that fails, so the next round fires it.
  std::vector<std::vector<std::string>> cmds;
  AppendEnqueueCommands(keys, type, "{}", opts, now_ms, out, cmds);
  Status added = RunEnqueue(redis, keys, cmds);
  if (!added.ok()) (void)redis.Eval(ReleaseUniqueKeyScript(), {keys.Periodic(name)}, {r->elements[1].str});
  SF_RETURN_IF_ERROR(added);
  return true;
}

StatusOr<std::vector<EnqueueResult>> EnqueueTasks(RedisCommands& redis, const TaskKeys& keys,
                                                  const std::vector<TaskToEnqueue>& tasks, int64_t now_ms) {
  std::vector<EnqueueResult> out(tasks.size());
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(tasks.size() * 3);
  for (size_t i = 0; i < tasks.size(); ++i) {
    const TaskToEnqueue& t = tasks[i];
    SF_RETURN_IF_ERROR(CheckEnqueue(t.type, t.options));
    if (!t.options.unique_key.empty()) {
      return Status::InvalidArgument("EnqueueTasks does not take unique tasks (use EnqueueTask)");
    }
    out[i].id = t.options.id.empty() ? NewId() : t.options.id;
    AppendEnqueueCommands(keys, t.type, t.payload, t.options, now_ms, out[i], cmds);
  }
  if (cmds.empty()) return out;
  SF_RETURN_IF_ERROR(RunEnqueue(redis, keys, cmds));
  return out;
}

StatusOr<int64_t> MoveDueTasks(RedisClient& redis, const TaskKeys& keys, int64_t now_ms, int limit,
                               const std::vector<std::string>& queues) {
  if (keys.cluster()) {
    std::vector<std::vector<std::string>> cmds;
    for (const auto& stream : keys.QueueStreams(queues)) {
      cmds.push_back(RedisClient::EvalArgv(MoveDueShardScript(), {keys.ScheduledOf(stream), stream, keys.DeadLettersOf(stream)},
                                           {std::to_string(now_ms), std::to_string(limit)}));
    }
    if (cmds.empty()) return int64_t{0};
    redis.Register(MoveDueShardScript());
    auto r = redis.Pipeline(cmds);
    if (!r.ok()) return r.status();
    int64_t moved = 0;
    for (const RedisValue& v : *r) {
      if (v.is_error()) return TranslateRedisError(v.str);
      moved += v.integer;
    }
    return moved;
  }
  auto r = redis.Eval(MoveDueScript(), {keys.Scheduled(), keys.DeadLetters()},
                      {std::to_string(now_ms), std::to_string(limit), keys.Queue("")});
  if (!r.ok()) return r.status();
  return static_cast<int64_t>(r->integer);
}

StatusOr<bool> ScheduleRetry(RedisClient& redis, const TaskKeys& keys, const std::string& stream,
                             const std::string& entry_id, const v1::TaskEnvelope& next, int64_t run_at_ms,
                             const std::string& owner) {
  auto r = redis.Eval(RetryScript(), {keys.ScheduledOf(stream), stream},
                      {std::to_string(run_at_ms), next.queue() + "|" + next.SerializeAsString(), TaskKeys::Group(),
                       entry_id, owner});
  if (!r.ok()) return r.status();
  return r->integer == 1;
}

StatusOr<bool> DeadLetterTask(RedisClient& redis, const TaskKeys& keys, const std::string& stream,
                              const std::string& entry_id, const std::string& raw_envelope, const std::string& reason,
                              int64_t times_delivered, const std::string& owner) {
  auto r = redis.Eval(DeadLetterScript(), {keys.DeadLettersOf(stream), stream},
                      {TaskKeys::Group(), entry_id, raw_envelope, reason, std::to_string(times_delivered),
                       std::to_string(WallClockMs()), owner});
  if (!r.ok()) return r.status();
  return r->integer == 1;
}

namespace {

StatusOr<NextTask> ReadNextShardedTasks(RedisClient& redis, const TaskKeys& keys, const std::string& group,
                                        const std::string& consumer, const std::vector<std::string>& queues,
                                        int count) {
  // Shards are read `width` at a time, each up to `per_shard`: all of a queue's shards in one round trip
  // when the batch is at least one per shard, else `count` shards per round trip reading one each, so a
  // slot never holds more than it asked for (a long task must not keep tasks other slots could run).
  count = std::max(1, count);
  const int shards = keys.shards();
  const int width = std::min(count, shards);
  const std::string per_shard = std::to_string((count + width - 1) / width);
  const int start = static_cast<int>(RandomU64() % static_cast<unsigned>(shards));  // no shard is always first
  redis.Register(NextTaskShardScript());
  NextTask out;
  std::vector<std::vector<std::string>> cmds;
  for (const auto& q : queues) {
    bool open = false;
    for (int first = 0; first < shards; first += width) {
      for (int i = first; i < std::min(shards, first + width); ++i) {
        const std::string stream = keys.Queue(q, (start + i) % shards);
        cmds.push_back(RedisClient::EvalArgv(NextTaskShardScript(),
                                             {keys.PausedFlagOf(stream), stream, keys.CancelledOf(stream)},
                                             {group, consumer, per_shard}));
      }
      auto r = redis.Pipeline(cmds);
      if (!r.ok()) return r.status();
      // One shard's error (a master failing over) does not discard what the others delivered: those tasks are
      // this consumer's now, and dropped they waited a visibility timeout and counted a delivery.
      Status failed = Status::Ok();
      for (const RedisValue& v : *r) {
        if (v.is_error() || !v.is_array() || v.elements.empty()) {
          if (failed.ok()) {
            failed = v.is_error() ? TranslateRedisError(v.str) : Status::Internal("next task script: unexpected reply");
          }
          continue;
        }
        int64_t state = v.elements[0].AsInt();
        open = open || state >= 0;
        if (state == 1 && v.elements.size() == 3) {
          for (auto& e : ParseStreamReply(v.elements[1])) out.entries.push_back(std::move(e));
        }
        if (state >= 0) AppendStrings(v.elements.back(), out.cancelled);
      }
      if (!out.entries.empty() || (!failed.ok() && !out.cancelled.empty())) {
        out.shard_error = failed;
        return out;
      }
      if (!failed.ok()) return failed;
      cmds.clear();
    }
    if (open) out.open_queues.push_back(q);
  }
  return out;
}

}  // namespace

StatusOr<NextTask> ReadNextTasks(RedisClient& redis, const TaskKeys& keys, const std::string& group,
                                 const std::string& consumer, const std::vector<std::string>& queues, int count) {
  if (keys.cluster()) return ReadNextShardedTasks(redis, keys, group, consumer, queues, count);
  std::vector<std::string> k = {keys.Paused(), keys.Cancelled()};
  for (const auto& q : queues) k.push_back(keys.Queue(q));
  std::vector<std::string> args = {group, consumer, std::to_string(std::max(1, count))};
  args.reserve(3 + queues.size());
  for (const auto& q : queues) args.push_back(q);
  auto r = redis.Eval(NextTaskScript(), k, args);
  if (!r.ok()) return r.status();
  if (!r->is_array() || r->elements.size() != 3) return Status::Internal("next task script: unexpected reply");
  NextTask out;
  AppendStrings(r->elements[2], out.cancelled);
  if (r->elements[0].AsInt() == 1) {
    out.entries = ParseStreamReply(r->elements[1]);
    return out;
  }
  AppendStrings(r->elements[1], out.open_queues);
  return out;
}

StatusOr<std::vector<std::string>> DropCancelled(RedisClient& redis, const TaskKeys& keys,
                                                 std::vector<StreamEntry>& entries) {
  if (entries.empty()) return std::vector<std::string>{};
  std::vector<std::string> k = {keys.CancelledOf(entries.front().stream)};
  std::vector<std::string> args = {TaskKeys::Group()};
  thread_local v1::TaskEnvelope e;
  for (const StreamEntry& entry : entries) {
    const std::string* raw = entry.Field("e");
    k.push_back(entry.stream);
    args.push_back(entry.id);
    args.push_back(raw != nullptr && e.ParseFromString(*raw) ? e.id() : "");  // undecodable: the worker's
  }
  auto r = redis.Eval(DropCancelledScript(), k, args);
  if (!r.ok()) return r.status();
  std::vector<std::string> skipped;
  AppendStrings(*r, skipped);
  if (!skipped.empty()) {
    // args holds each entry's task id at 2 + 2i (decoded once, above). The script took each marker once, and
    // acked the first entry of that id in the read: only that one is dropped here. Two entries of one task id
    // (enqueued twice) were both dropped, and the second, never acked, waited unleased for a reclaim.
    std::unordered_multiset<std::string> gone(skipped.begin(), skipped.end());
    std::vector<StreamEntry> kept;
    for (size_t i = 0; i < entries.size(); ++i) {
      auto it = gone.find(args[2 + 2 * i]);
      if (it == gone.end()) {
        kept.push_back(std::move(entries[i]));
      } else {
        gone.erase(it);
      }
    }
    entries = std::move(kept);
  }
  return skipped;
}

}  // namespace streamfleet
