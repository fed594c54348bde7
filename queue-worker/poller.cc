#include "queue-worker/poller.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "queue-worker/queues.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_control.h"

namespace streamfleet::worker {

StatusOr<int> Poller::PollBatch(RedisClient& redis, Slot& slot, int block_ms) {
  if (!slot.HoldsAny()) {
    auto entries = ReadBatch(redis, slot, block_ms);
    if (!entries.ok()) return entries.status();
    if (entries->empty()) return 0;
    Hold(slot, std::move(*entries));
  }
  std::optional<StreamEntry> entry = slot.TakeHeld();
  if (!entry) return 0;  // the watchdog dropped what was held: another worker took it over
  if (executor_.Execute(redis, *entry, 1, slot) == kAbandoned) return kAbandoned;
  if (!slot.HoldsAny()) {
    slot.prefetch = slot.batch_fast ? std::min(slot.prefetch * 2, std::max(1, config_.worker_prefetch)) : 1;
  }
  return 1;
}

StatusOr<std::vector<StreamEntry>> Poller::ReadBatch(RedisClient& redis, Slot& slot, int block_ms) {
  if (!slot.finished.empty()) {
    // Acks a connection error held back: before more work, so they are not owed for longer than needed.
    Status flushed = Flush(redis, slot);
    redis_health_.Report(flushed, "ack tasks");
    if (!flushed.ok()) return flushed;
  }
  auto next = ReadNextTasks(redis, lifecycle_.keys(), TaskKeys::Group(), slot.consumer, WeightedOrder(config_.queues),
                            slot.prefetch);
  redis_health_.Report(next.status(), "poll queues");
  if (!next.ok()) return next.status();
  Skipped(redis, next->cancelled);
  // A shard that failed while others answered: logged (at most once a minute: not reported to redis_health,
  // which the answering shards' success would flip back every poll), so a shard that keeps failing is seen.
  if (!next->shard_error.ok()) {
    const int64_t now = WallClockMs();
    int64_t last = shard_error_logged_ms_.load();
    if (now - last >= 60'000 && shard_error_logged_ms_.compare_exchange_strong(last, now)) {
      SF_LOG_WARN("a queue shard failed while the others answered (logged once a minute): {}",
                  next->shard_error.ToString());
    }
  }
  if (!next->entries.empty()) return std::move(next->entries);
  if (next->open_queues.empty()) {  // every queue paused
    // Not the whole BLOCK time: a resumed queue is served within kPausedPollMs (one cheap script call per slot
    // per period while paused).
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(block_ms, kPausedPollMs)));
    return std::vector<StreamEntry>{};
  }
  if (lifecycle_.keys().cluster()) {
    // No blocking XREADGROUP over several streams in a cluster (they live on different masters).
    IdleWait(slot, block_ms);
    return std::vector<StreamEntry>{};
  }
  return BlockingRead(redis, slot, next->open_queues, block_ms);
}

StatusOr<std::vector<StreamEntry>> Poller::BlockingRead(RedisClient& redis, Slot& slot,
                                                        const std::vector<std::string>& open_queues, int block_ms) {
  std::vector<std::string> cmd = {"XREADGROUP", "GROUP", TaskKeys::Group(), slot.consumer, "COUNT",
                                  std::to_string(slot.prefetch), "BLOCK", std::to_string(block_ms), "STREAMS"};
  for (const auto& q : open_queues) cmd.push_back(lifecycle_.keys().Queue(q));
  for (size_t i = 0; i < open_queues.size(); ++i) cmd.push_back(">");
  auto r = redis.Command(cmd, block_ms);
  if (!r.ok()) return r.status();
  std::vector<StreamEntry> entries = ParseStreamReply(*r);
  // The next-task script checks cancel markers as it reads; a blocking read cannot, so one more call does.
  auto skipped = DropCancelled(redis, lifecycle_.keys(), entries);
  if (!skipped.ok()) return skipped.status();  // the entries stay pending: taken over after the visibility timeout
  Skipped(redis, *skipped);
  return entries;
}

void Poller::Skipped(RedisClient& redis, const std::vector<std::string>& cancelled_ids) {
  if (cancelled_ids.empty()) return;
  cancelled_.Increment(static_cast<double>(cancelled_ids.size()));
  for (const auto& id : cancelled_ids) {
    SF_LOG_INFO("skipped cancelled task {}", id);
    // Usually it says "cancelled" already; a retry of a task that ran before its cancel says "retry_scheduled".
    auto r = RecordSkippedTaskCancelled(redis, lifecycle_.keys(), id, lifecycle_.record_ttl_s(), WallClockMs());
    if (!r.ok()) SF_LOG_WARN("skipped cancelled task {}: its record not updated: {}", id, r.status().ToString());
  }
}

void Poller::IdleWait(Slot& slot, int block_ms) {
  // Polling instead of blocking: 1 ms doubling up to the BLOCK time (at most 50 ms), so an idle slot costs
  // Redis little and a busy one never sleeps (the compactor's IdlePoll on the chunk path).
  slot.idle_ms = std::min<int64_t>({slot.idle_ms == 0 ? 1 : slot.idle_ms * 2, std::max(1, block_ms), 50});
  std::this_thread::sleep_for(std::chrono::milliseconds(slot.idle_ms));
}

void Poller::Hold(Slot& slot, std::vector<StreamEntry> entries) {
  slot.idle_ms = 0;
  executor_.Watch(slot);
  std::lock_guard<std::mutex> l(slot.watch->mu);
  slot.held.assign(std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end()));
  slot.watch->LeasesDeliveredNow();
  slot.batch_fast = true;
}

StatusOr<int> Poller::PollOnce(RedisClient& redis, const std::string& consumer, int block_ms) {
  Slot slot(consumer);
  auto ran = PollBatch(redis, slot, block_ms);
  // A cluster-mode read may hold more tasks than the slot's prefetch (ReadNextTasks): this slot dies with
  // the call, so it runs them all rather than leave them pending until another worker claims them.
  while (ran.ok() && *ran > 0 && slot.HoldsAny()) {
    auto more = PollBatch(redis, slot, block_ms);
    if (!more.ok()) {
      ran = more;
      break;
    }
    *ran += *more;
  }
  Status flushed = Flush(redis, slot);
  if (!ran.ok()) return ran;
  if (!flushed.ok()) return flushed;
  return ran;
}

void Poller::FlushAndReport(RedisClient& redis, Slot& slot, const char* what) {
  // Only a flush that talked to Redis says something about it: an empty one succeeds without a round trip,
  // and reporting that as "reachable again" logged a recovery at shutdown while Redis was down all along.
  bool owed = !slot.finished.empty();
  Status s = Flush(redis, slot);
  if (owed) redis_health_.Report(s, what);
}

}  // namespace streamfleet::worker
