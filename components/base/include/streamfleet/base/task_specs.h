#pragma once
// The queue-worker's per-task-type specs (TASK_POLICY, PERIODIC_TASKS, TASK_TIMEOUTS). LoadConfig (config.h)
// parses them, so a malformed spec stops the process at start with an error naming its variable, and the
// worker only ever sees the parsed values in its Config. The parsers are public for the tests and for tools
// that check a spec before deploying it.
//
// Each parser's error message completes "NAME=... is malformed: expected ..." (LoadConfig adds the name) and
// quotes the item it refused.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "streamfleet/base/cron.h"
#include "streamfleet/base/status.h"

namespace streamfleet {

// Queue names are [a-z0-9_.-]{1,64}: they become key names. Here, and not in the task queue, because
// PERIODIC_TASKS names queues and is checked at configuration loading.
bool ValidQueueName(const std::string& name);

// How often a task type is attempted and how long it waits between attempts (exponential from base_ms,
// capped at cap_ms, jittered). The defaults are TASK_MAX_ATTEMPTS, TASK_BACKOFF_BASE and TASK_BACKOFF_CAP's.
struct RetryPolicy {
  int max_attempts = 5;
  int64_t base_ms = 1000;
  int64_t cap_ms = 300000;
};

// A task fired once per `interval_ms` fleet-wide (whichever worker wins the period's SET NX).
struct PeriodicTask {
  std::string name, type, queue = "default";
  int64_t interval_ms = 0;
};

// A task fired at each occurrence of a cron expression (SCHEDULES), with its payload, once fleet-wide.
struct Schedule {
  std::string name;
  CronSchedule cron;
  std::string type;
  std::string payload = "{}";  // JSON text
  std::string queue = "default";
};

// SCHEDULES: a JSON array of {"name", "cron" (cron.h: 5 fields, a macro or "@every 30s"), "type",
// "payload"? (any JSON, default {}), "queue"?}; names unique, [A-Za-z0-9_.:-]{1,100} (they become key names).
StatusOr<std::vector<Schedule>> ParseSchedules(const std::string& json_text);

// A type's fleet-wide limits (TASK_LIMITS): at most max_running tasks of it running at once across every
// worker, at most per_second started per second (a fixed one-second window); 0 = no such limit.
struct TaskLimit {
  int64_t max_running = 0;
  int64_t per_second = 0;
};

// TASK_LIMITS: "type=max_running/per_second,..." (numbers >= 0, not both 0); a later item for a type wins.
StatusOr<std::map<std::string, TaskLimit>> ParseTaskLimits(const std::string& spec);

// TASK_POLICY: "type=attempts/base_ms/cap_ms,..." (attempts >= 1, milliseconds >= 0); a later item for the
// same type wins.
StatusOr<std::map<std::string, RetryPolicy>> ParseTaskPolicies(const std::string& spec);

// PERIODIC_TASKS: "name=type@interval[@queue],..." with an interval like 30s / 5m (a bare number is seconds)
// and a valid queue name (default "default").
StatusOr<std::vector<PeriodicTask>> ParsePeriodicTasks(const std::string& spec);

// TASK_TIMEOUTS: "type=duration,..." with durations like 30s / 10m (a bare number is seconds); 0 = no
// timeout for that type. A later item for the same type wins.
StatusOr<std::map<std::string, int64_t>> ParseTaskTimeouts(const std::string& spec);

}  // namespace streamfleet
