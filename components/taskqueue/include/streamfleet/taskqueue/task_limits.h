#pragma once
// Fleet-wide limits per task type (TASK_LIMITS, streamfleet/base/task_specs.h), what BullMQ's limiter and
// Celery's rate_limit give: at most max_running tasks of the type running at once across every worker, and at
// most per_second started per second. Both are kept in Redis under the type's hash tag (one script, also on
// a cluster):
//   {prefix:limit:<type>}:running      zset of permits (TaskPermitToken of the delivery) by lease expiry (unix ms)
//   {prefix:limit:<type>}:rate:<sec>   starts in that second (expires after 2 s)
// A permit is released when its task ends; the running task's heartbeat renews it; one whose worker died
// expires with its lease (the task's timeout, else kDefaultPermitLeaseMs from the last heartbeat), so a crash
// holds a slot of the limit at most that long.
//
// Thread-safety: stateless functions over the caller's client. Errors: Redis' (the worker then leaves the
// task pending, as after any Redis error on its read path: it comes back after VISIBILITY_TIMEOUT).
#include <cstdint>
#include <string>

#include "streamfleet/base/task_specs.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

inline constexpr int64_t kDefaultPermitLeaseMs = 10 * 60 * 1000;

enum class LimitOutcome { kAdmitted, kTooManyRunning, kRateExceeded };

// Takes a permit for one task of `type` (token: unique per delivery) at now_ms, or says which limit holds it
// back (nothing taken then).
StatusOr<LimitOutcome> AcquireTaskPermit(RedisCommands& redis, const std::string& prefix, const std::string& type,
                                         const TaskLimit& limit, const std::string& token, int64_t now_ms,
                                         int64_t lease_ms);
// Moves a held permit's expiry to expires_at_ms (the running task's heartbeat); a released one stays released.
Status ExtendTaskPermit(RedisCommands& redis, const std::string& permits_key, const std::string& token,
                        int64_t expires_at_ms);
// Gives the permit back (sent without waiting: RedisCommands::Send).
Status ReleaseTaskPermit(RedisCommands& redis, const std::string& prefix, const std::string& type,
                         const std::string& token);
// The permit token of a delivery: its stream, entry id and delivery count. An entry id alone is unique within
// one stream only: two queues, or two shards of one, give out the same `<ms>-0` in the same millisecond, and
// two tasks then shared one permit (the second ZADD replaced the first; the first's release freed the
// second's). The delivery count tells a worker whose lease lapsed from the one that claimed the task after
// it: both ran on one permit, and the first one's release freed the second's.
std::string TaskPermitToken(const std::string& stream, const std::string& entry_id, int64_t delivery);
// The key of a type's running permits (for tests and operators).
std::string TaskPermitsKey(const std::string& prefix, const std::string& type);

}  // namespace streamfleet
