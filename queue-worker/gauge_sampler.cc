#include "queue-worker/gauge_sampler.h"

#include <algorithm>

#include "streamfleet/base/time.h"
#include "queue-worker/queues.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet::worker {

void GaugeSampler::Sample() {
  std::lock_guard<std::mutex> l(mu_);
  metrics_.abandoned.Set(static_cast<double>(Watchdog::AbandonedNow()));
  // Counted when scraped, not kept per task: two updates of one shared atomic per task, from every slot
  // thread, cost more than a no-op task's own work.
  int busy = 0;
  for (const auto& slot : watchdog_.Slots()) {
    std::lock_guard<std::mutex> sl(slot->mu);
    busy += slot->running != nullptr;
  }
  metrics_.busy.Set(busy);
  const std::vector<std::string> queues = QueueNames(config_);
  std::vector<std::vector<std::string>> zcards;
  for (const auto& z : keys_.AllScheduled(queues)) zcards.push_back({"ZCARD", z});
  auto z = redis_->Pipeline(zcards);
  if (z.ok()) {
    double n = 0;
    for (const RedisValue& v : *z) n += v.is_error() ? 0 : static_cast<double>(v.integer);
    metrics_.scheduled.Set(n);
  }
  std::vector<std::string> streams = keys_.QueueStreams(queues);
  for (const auto& d : keys_.AllDeadLetters(queues)) streams.push_back(d);
  metrics_.stream_gauges.Sample(*redis_, streams);
  for (const auto& q : queues) {
    // A queue waits as long as its oldest shard.
    double oldest = 0;
    bool any = false;
    for (const auto& stream : keys_.QueueShards(q)) {
      auto age = OldestWaitingSeconds(*redis_, stream);
      if (!age.ok()) continue;
      oldest = std::max(oldest, *age);
      any = true;
    }
    if (any) metrics_.oldest_waiting.Add({{"queue", q}}).Set(oldest);
  }
}

StatusOr<double> OldestWaitingSeconds(RedisClient& redis, const std::string& stream) {
  auto st = GetStreamStats(redis, stream);
  if (!st.ok()) return st.status();
  std::string after = "0-0";
  for (const auto& g : st->groups) {
    if (g.name == TaskKeys::Group()) after = g.last_delivered_id;
  }
  auto r = redis.Command({"XRANGE", stream, "(" + after, "+", "COUNT", "1"});
  if (!r.ok()) return r.status();
  auto e = ParseEntries(stream, *r);
  if (e.empty()) return 0.0;
  return std::max<double>(0, static_cast<double>(WallClockMs() - StreamIdMs(e[0].id)) / 1000.0);
}

}  // namespace streamfleet::worker
