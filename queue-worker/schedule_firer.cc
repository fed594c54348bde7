#include "queue-worker/schedule_firer.h"

#include <algorithm>
#include <charconv>

#include "streamfleet/base/log.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet::worker {

namespace {

// KEYS[1] = the schedule's last-fired key; ARGV[1] = an occurrence (ms). Raises the key to it, never lowers
// it (a slow worker must not move a schedule back).
const LuaScript& RaiseScript() {
  static const LuaScript s(R"(
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
)");
  return s;
}

int64_t ParseMs(const std::string& s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() ? v : 0;
}

}  // namespace

ScheduleFirer::ScheduleFirer(const Config& config, TaskKeys keys, prometheus::Family<prometheus::Counter>& fired)
    : config_(config), keys_(std::move(keys)), fired_(fired), next_due_(config.schedules.size(), 0) {}

Status ScheduleFirer::FireDue(RedisClient& redis, int64_t now_ms) {
  for (size_t i = 0; i < config_.schedules.size(); ++i) {
    const Schedule& s = config_.schedules[i];
    const std::string key = keys_.ScheduleLastFired(s.name);
    if (next_due_[i] == 0) {
      auto last = redis.Command({"GET", key});
      if (!last.ok()) return last.status();
      int64_t from = last->is_nil() ? 0 : ParseMs(last->str);
      if (from == 0) {
        // First sight fleet-wide: start from now (SET NX: a worker that got here first keeps its value).
        from = s.cron.Prev(now_ms).value_or(now_ms);
        auto set = redis.Command({"SET", key, std::to_string(from), "NX"});
        if (!set.ok()) return set.status();
      }
      auto next = s.cron.Next(from);
      next_due_[i] = next.value_or(INT64_MAX);
    }
    if (now_ms < next_due_[i]) continue;
    // The latest occurrence due (one firing for however many were missed).
    const int64_t due = s.cron.Prev(now_ms).value_or(next_due_[i]);
    const int64_t following = s.cron.Next(now_ms).value_or(INT64_MAX);
    EnqueueOptions o = EnqueueOptions::FromConfig(config_);
    o.queue = s.queue;
    o.unique_key = "schedule:" + s.name + ":" + std::to_string(due);
    // Held long enough for every worker to see the occurrence, not forever (an @every 1s schedule).
    o.unique_ttl_s = std::clamp<int64_t>(following == INT64_MAX ? 86400 : (following - due) / 500, 60, 7 * 86400);
    // Key and add in one script: a worker dying between them must not leave the occurrence "enqueued".
    auto e = EnqueueTask(redis, keys_, s.type, s.payload, o, now_ms);
    if (!e.ok()) return e.status();
    auto raised = redis.Eval(RaiseScript(), {key}, {std::to_string(due)});
    if (!raised.ok()) return raised.status();
    if (!e->duplicate) {
      fired_.Add({{"schedule", s.name}}).Increment();
      SF_LOG_INFO("schedule {} ({}) fired: task {} of type {}", s.name, s.cron.text(), e->id, s.type);
    }
    next_due_[i] = following;
  }
  return Status::Ok();
}

}  // namespace streamfleet::worker
