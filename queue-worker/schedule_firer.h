#pragma once
// Fires SCHEDULES (streamfleet/base/task_specs.h): each occurrence of a schedule's cron expression enqueues
// its task (type, payload, queue) once fleet-wide, however many workers run this.
//
// How "once" holds: the occurrence is enqueued with the unique key `schedule:<name>:<occurrence ms>`, so of
// the workers that see it due only the first enqueues (task_queue.h, unique keys); then the schedule's
// `{prefix}:schedule:<name>` is raised to that occurrence. A worker that starts reads it and waits for the
// next occurrence after it; when the whole fleet was down over one or more occurrences, the latest of them
// fires once on return (not once per missed tick). A schedule seen for the first time starts from now: its
// past occurrences do not fire.
//
// Thread-safety: one thread (the housekeeper's). Errors: Redis' (the occurrence is tried again next round).
#include <cstdint>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>

#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/taskqueue/task_keys.h"

namespace streamfleet::worker {

class ScheduleFirer {
 public:
  // fired: counted per firing this process did (the worker's streamfleet_worker_schedules_fired_total).
  ScheduleFirer(const Config& config, TaskKeys keys, prometheus::Family<prometheus::Counter>& fired);

  // Enqueues every schedule whose next occurrence is at or before now_ms. Costs no Redis call while none is
  // due (except each schedule's first look).
  Status FireDue(RedisClient& redis, int64_t now_ms);

 private:
  const Config& config_;
  TaskKeys keys_;
  prometheus::Family<prometheus::Counter>& fired_;
  std::vector<int64_t> next_due_;  // per schedule; 0 = not read from Redis yet
};

}  // namespace streamfleet::worker
