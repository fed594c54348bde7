// Handlers run inline on their slot's thread; the per-process watchdog keeps leases, enforces timeouts and
// replaces a slot thread whose handler ignores cancellation (queue-worker/watchdog.h, slot_threads.h).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "streamfleet/redis/stream_admin.h"
#include "support/wait.h"
#include "worker/worker_fixture.h"

namespace streamfleet::worker {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

double MetricValue(prometheus::Registry& r, const std::string& name) {
  for (const auto& f : r.Collect()) {
    if (f.name == name && !f.metric.empty()) return f.metric[0].gauge.value + f.metric[0].counter.value;
  }
  return -1;
}

// Runs WorkerService::Run on a thread of its own until Stop().
class Running {
 public:
  explicit Running(WorkerService& w) : thread_([this, &w] { w.Run(stop_); }) {}
  ~Running() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Two tasks that succeed only if both run at the same time (each waits up to 2 s for the other): they prove
// that two slots are free.
struct Pair {
  std::atomic<int> arrived{0};
  std::atomic<int> met{0};
  Status Meet() {
    ++arrived;
    bool both = testing::WaitUntil([&] { return arrived.load() >= 2; }, 2000);
    if (both) ++met;
    return both ? Status::Ok() : Status::Unavailable("the other task of the pair never ran alongside");
  }
};

TEST_F(WorkerTest, HandlerIgnoringCancellationIsAbandonedAndItsSlotThreadReplaced) {
  // Shared with the handler, which outlives the test's stack frame only if abandonment failed to be undone.
  auto release = std::make_shared<std::atomic<bool>>(false);
  auto started = std::make_shared<std::atomic<bool>>(false);
  auto returned = std::make_shared<std::atomic<bool>>(false);
  handlers_.Register("stubborn", [release, started, returned](TaskContext&) {
    started->store(true);
    while (!release->load()) std::this_thread::sleep_for(milliseconds(5));  // ignores Cancelled()
    returned->store(true);
    return Status::Ok();
  });
  Pair pair;
  handlers_.Register("pair", [&pair](TaskContext&) { return pair.Meet(); });
  auto& w = Make({{"WORKER_CONCURRENCY", "2"},
                  {"CONSUMER_NAME", "abandon"},
                  {"TASK_TIMEOUTS", "stubborn=100ms"},
                  {"TASK_TIMEOUT_GRACE", "100ms"}});
  std::string id = Enqueue("stubborn");
  Running run(w);
  ASSERT_TRUE(testing::WaitUntil([&] { return started->load(); }));
  ASSERT_TRUE(testing::WaitUntil([&] { return StatusField(id, "state") == "retry_scheduled"; }))
      << "the replacement thread retries the abandoned attempt";
  EXPECT_NE(StatusField(id, "error").find("handler abandoned"), std::string::npos) << StatusField(id, "error");
  EXPECT_EQ(Watchdog::AbandonedNow(), 1);
  w.SampleGauges();
  EXPECT_EQ(MetricValue(registry_, "streamfleet_worker_abandoned_handlers"), 1);

  // The stubborn handler still holds its old thread: both slots must be free to run the pair together.
  Enqueue("pair");
  Enqueue("pair");
  ASSERT_TRUE(testing::WaitUntil([&] { return w.Processed("pair", "succeeded") + w.Processed("pair", "retried") == 2; }));
  EXPECT_EQ(pair.met.load(), 2) << "two slots ran at once while the abandoned handler ran on";
  EXPECT_FALSE(returned->load());

  // Stop does not wait for the abandoned thread (it is detached), and nothing it does later counts.
  auto t0 = SteadyClock::now();
  run.Stop();
  EXPECT_LT(SteadyClock::now() - t0, milliseconds(2000));
  release->store(true);
  ASSERT_TRUE(testing::WaitUntil([&] { return Watchdog::AbandonedNow() == 0; })) << "the gauge falls back";
  EXPECT_TRUE(returned->load());
  EXPECT_EQ(w.Processed("stubborn", "succeeded"), 0) << "the abandoned attempt's late OK is not an ack";
  EXPECT_EQ(StatusField(id, "state"), "retry_scheduled");
  auto st = GetStreamStats(*redis_, keys_.Queue("default"));
  EXPECT_EQ(st->groups[0].pending, 0) << "the retry took the stubborn task out of the PEL";
}

// A task running for several heartbeat periods (VISIBILITY_TIMEOUT 200ms: one per ~66ms) under Run keeps its
// lease through the watchdog: another worker's housekeeper never takes it over.
TEST_F(WorkerTest, WatchdogKeepsALongInlineTaskFromBeingTakenOver) {
  std::atomic<int> calls{0};
  handlers_.Register("long", [&](TaskContext&) {
    ++calls;
    std::this_thread::sleep_for(milliseconds(900));
    return Status::Ok();
  });
  auto& a = Make({{"WORKER_CONCURRENCY", "1"}, {"CONSUMER_NAME", "a"}});
  auto& b = Make();
  std::string id = Enqueue("long");
  Running run(a);
  ASSERT_TRUE(testing::WaitUntil([&] { return calls.load() == 1; }));
  for (int i = 0; i < 14; ++i) {  // 700ms: three and a half visibility timeouts
    ASSERT_TRUE(b.HousekeepOnce(*redis_, "b").ok());
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(testing::WaitUntil([&] { return StatusField(id, "state") == "succeeded"; }));
  EXPECT_EQ(calls.load(), 1) << "a live worker's task was taken over";
  EXPECT_GE(MetricValue(registry_, "streamfleet_worker_lease_extensions_total"), 3);
}

// Tasks read ahead wait behind a long task that runs inline; the watchdog renews their leases too, so no
// other worker takes them over, and each runs exactly once.
TEST_F(WorkerTest, ReadAheadTasksKeepTheirLeasesWhileALongTaskRunsInline) {
  std::map<std::string, int> runs;
  std::mutex mu;
  handlers_.Register("t", [&](TaskContext& c) {
    int n = 0;
    {
      std::lock_guard<std::mutex> l(mu);
      n = ++runs[c.task.id()];
    }
    if (n == 1 && c.task.payload() == "long") std::this_thread::sleep_for(milliseconds(800));
    return Status::Ok();
  });
  auto& w = Make();
  auto& b = Make();
  // All four on one shard, read in one batch in enqueue order (the long one first): a cluster-mode batch
  // reads prefetch / shards from each shard.
  auto unique = UniqueKeysOnOneShard(4, "lease");
  EnqueueOptions o;
  o.unique_key = unique[0];
  Enqueue("t", "long", o);
  for (int i = 1; i < 4; ++i) {
    o.unique_key = unique[i];
    Enqueue("t", "{}", o);
  }
  Slot slot("w");
  slot.prefetch = 4 * keys_.shards();
  std::thread first([&] { ASSERT_EQ(*w.PollBatch(*redis_, slot, 10), 1); });
  ASSERT_TRUE(testing::WaitUntil([&] {
    std::lock_guard<std::mutex> l(mu);
    return !runs.empty();
  }));
  auto other = RedisClient::Connect(RedisConfigForTest()).value();
  for (int i = 0; i < 12; ++i) {  // 600ms: three visibility timeouts
    ASSERT_TRUE(b.HousekeepOnce(*other, "b").ok());
    std::this_thread::sleep_for(milliseconds(50));
  }
  first.join();
  EXPECT_EQ(slot.held.size(), 3u) << "still held by the first worker";
  // The long task's ack went out as it finished, or (status records on) waits only for the next task's
  // "running" write: never for the batch.
  EXPECT_EQ(Pending("default"), 3 + (slot.ack_deferred ? 1 : 0)) << "a finished task has no lease";
  ASSERT_EQ(*w.PollBatch(*redis_, slot, 10), 1);
  EXPECT_EQ(Pending("default"), 2 + (slot.ack_deferred ? 1 : 0)) << "the long task's ack went with the next task";
  while (!slot.held.empty()) ASSERT_EQ(*w.PollBatch(*redis_, slot, 10), 1);
  ASSERT_TRUE(w.FlushSlot(*redis_, slot).ok());
  EXPECT_EQ(runs.size(), 4u);
  for (auto& [id, n] : runs) EXPECT_EQ(n, 1) << id << " ran twice: its lease was not kept";
  EXPECT_EQ(Pending("default"), 0);
}

// The other side of the above: a read-ahead task whose lease this worker could not renew (Redis away for
// longer than VISIBILITY_TIMEOUT) and that another worker claimed meanwhile. The renewal result was ignored
// for read-ahead tasks and they ran here too, each twice fleet-wide; the heartbeat that finds a held task
// owned elsewhere now drops it, and it runs only where it was claimed.
TEST_F(WorkerTest, AReadAheadTaskAnotherWorkerTookOverIsNotRunHere) {
  std::map<std::string, int> runs;
  std::mutex mu;
  std::atomic<bool> release{false};
  handlers_.Register("t", [&](TaskContext& c) {
    {
      std::lock_guard<std::mutex> l(mu);
      ++runs[c.task.payload()];
    }
    while (c.task.payload() == "long" && !release.load()) std::this_thread::sleep_for(milliseconds(5));
    return Status::Ok();
  });
  auto& w = Make();
  auto unique = UniqueKeysOnOneShard(4, "taken");
  EnqueueOptions o;
  o.unique_key = unique[0];
  Enqueue("t", "long", o);
  for (int i = 1; i < 4; ++i) {
    o.unique_key = unique[i];
    Enqueue("t", "{\"n\":" + std::to_string(i) + "}", o);
  }
  Slot slot("w");
  slot.prefetch = 4 * keys_.shards();
  std::thread first([&] { ASSERT_EQ(*w.PollBatch(*redis_, slot, 10), 1); });
  ASSERT_TRUE(testing::WaitUntil([&] {
    std::lock_guard<std::mutex> l(mu);
    return runs.count("long") == 1;
  }));
  std::vector<std::pair<std::string, std::string>> held;  // stream, id
  {
    std::lock_guard<std::mutex> l(slot.watch->mu);
    for (const auto& e : slot.held) held.emplace_back(e.stream, e.id);
  }
  ASSERT_EQ(held.size(), 3u);
  auto other = RedisClient::Connect(RedisConfigForTest()).value();
  for (const auto& [stream, id] : held) {  // what another worker's housekeeper does once the lease ran out
    ASSERT_TRUE(other->Command({"XCLAIM", stream, TaskKeys::Group(), "thief", "0", id}).ok());
  }
  EXPECT_TRUE(testing::WaitUntil([&] { return !slot.HoldsAny(); }, 2000)) << "the next heartbeat drops them";
  release = true;
  first.join();
  while (*w.PollBatch(*redis_, slot, 10) > 0) {
  }
  ASSERT_TRUE(w.FlushSlot(*redis_, slot).ok());
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(runs, (std::map<std::string, int>{{"long", 1}})) << "a task another worker owns ran here";
  EXPECT_EQ(Pending("default"), 3) << "still the other worker's to run";
}

// A running task another worker claimed (its lease ran out here) and that then fails here before a heartbeat
// noticed: the failure is not this worker's to settle. Before, its retry went in (the entry was still pending,
// on the claimant) while the claimant ran it too, and the task ran once more later.
TEST_F(WorkerTest, AFailureOfATaskAnotherWorkerClaimedMeanwhileSchedulesNoRetry) {
  auto other = RedisClient::Connect(RedisConfigForTest()).value();
  handlers_.Register("t", [&](TaskContext&) {
    // What another worker's housekeeper does once this one's lease ran out: it owns the delivery now.
    for (const auto& s : keys_.QueueShards("default")) {
      auto p = other->Command({"XPENDING", s, TaskKeys::Group(), "-", "+", "10"});
      if (!p.ok()) continue;
      for (const auto& e : p->elements) {
        EXPECT_TRUE(other->Command({"XCLAIM", s, TaskKeys::Group(), "thief", "0", e.elements[0].str}).ok());
      }
    }
    return Status::Unavailable("failed here after the takeover");
  });
  auto& w = Make();
  Enqueue("t");
  Slot slot("w");
  ASSERT_EQ(*w.PollBatch(*redis_, slot, 10), 1);
  ASSERT_TRUE(w.FlushSlot(*redis_, slot).ok());
  for (const auto& z : keys_.AllScheduled({"default"})) {
    EXPECT_EQ(redis_->Command({"ZCARD", z})->integer, 0) << "no retry from a worker that no longer owns it";
  }
  EXPECT_TRUE(DeadLetters().empty());
  EXPECT_EQ(Pending("default"), 1) << "still the claimant's to run and settle";
  EXPECT_EQ(MetricValue(registry_, "streamfleet_worker_retries_total"), 0) << "no retry of its own counted";
}

// The same take-over seen by the slot before any heartbeat could: no renewal got through for half a visibility
// timeout (Redis away; here the slot's last confirmation is made old by hand), another worker claimed the held
// tasks, and the slot is about to start one. It asks first, and runs only what is still its own.
TEST_F(WorkerTest, ASlotWhoseLeasesLapsedAsksBeforeRunningAHeldTask) {
  std::map<std::string, int> runs;
  std::mutex mu;
  handlers_.Register("t", [&](TaskContext& c) {
    std::lock_guard<std::mutex> l(mu);
    ++runs[c.task.payload()];
    return Status::Ok();
  });
  auto& w = Make();
  auto unique = UniqueKeysOnOneShard(3, "lapsed");
  for (int i = 0; i < 3; ++i) {
    EnqueueOptions o;
    o.unique_key = unique[i];
    Enqueue("t", "{\"n\":" + std::to_string(i) + "}", o);
  }
  Slot slot("w");
  slot.prefetch = 3 * keys_.shards();
  ASSERT_EQ(*w.PollBatch(*redis_, slot, 10), 1);
  std::vector<std::pair<std::string, std::string>> held;  // stream, id
  {
    std::lock_guard<std::mutex> l(slot.watch->mu);
    for (const auto& e : slot.held) held.emplace_back(e.stream, e.id);
    slot.watch->leases_confirmed_at = WatchClock::now() - milliseconds(1000);  // five visibility timeouts ago
  }
  ASSERT_EQ(held.size(), 2u);
  // The first held task was taken over; the second is still the slot's.
  ASSERT_TRUE(redis_->Command({"XCLAIM", held[0].first, TaskKeys::Group(), "thief", "0", held[0].second}).ok());
  while (slot.HoldsAny()) (void)*w.PollBatch(*redis_, slot, 10);
  ASSERT_TRUE(w.FlushSlot(*redis_, slot).ok());
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(runs.size(), 2u) << "the task another worker owns ran here";
  for (auto& [payload, n] : runs) EXPECT_EQ(n, 1) << payload;
  EXPECT_EQ(Pending("default"), 1) << "the thief's, still to run there";
}

// The housekeeping thread runs what it takes over from a dead worker inline. Due delayed tasks (and retries,
// periodic tasks, cron occurrences) are moved by another thread, so a long taken-over task does not hold
// them back: the delayed task runs on the free slot while the taken-over one is still running.
TEST_F(WorkerTest, ADeadWorkersLongTaskDoesNotHoldBackDueDelayedTasks) {
  auto release = std::make_shared<std::atomic<bool>>(false);
  auto started = std::make_shared<std::atomic<bool>>(false);
  handlers_.Register("long", [release, started](TaskContext&) {
    started->store(true);
    testing::WaitUntil([&] { return release->load(); }, 10000);
    return Status::Ok();
  });
  std::atomic<int> quick{0};
  handlers_.Register("quick", [&quick](TaskContext&) {
    ++quick;
    return Status::Ok();
  });
  auto& w = Make({{"WORKER_CONCURRENCY", "1"}, {"CONSUMER_NAME", "alive"}});
  std::string long_id = Enqueue("long");
  ASSERT_EQ(ReadAs("dead", "default").size(), 1u);  // taken by a worker that then died
  EnqueueOptions later;
  later.run_at_ms = kStart + 60'000;
  Enqueue("quick", "{}", later);
  std::this_thread::sleep_for(milliseconds(250));  // past VISIBILITY_TIMEOUT 200ms: reclaimable
  Running run(w);
  ASSERT_TRUE(testing::WaitUntil([&] { return started->load(); })) << "the housekeeper took the task over";
  clock_.Advance(60'000);  // the delayed task is due now
  EXPECT_TRUE(testing::WaitUntil([&] { return quick.load() == 1; }, 3000))
      << "the due delayed task waited for the taken-over task";
  EXPECT_FALSE(release->load());
  release->store(true);
  ASSERT_TRUE(testing::WaitUntil([&] { return StatusField(long_id, "state") == "succeeded"; }));
  EXPECT_EQ(quick.load(), 1);
}

// streamfleet_worker_busy is counted from the slots when scraped (not updated per task).
TEST_F(WorkerTest, BusyGaugeCountsTheSlotsRunningATask) {
  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  handlers_.Register("hold", [&](TaskContext&) {
    ++started;
    while (!release.load()) std::this_thread::sleep_for(milliseconds(5));
    return Status::Ok();
  });
  auto& w = Make({{"WORKER_CONCURRENCY", "3"}, {"CONSUMER_NAME", "busy"}});
  Enqueue("hold");
  Enqueue("hold");
  Running run(w);
  ASSERT_TRUE(testing::WaitUntil([&] { return started.load() == 2; }));
  w.SampleGauges();
  EXPECT_EQ(MetricValue(registry_, "streamfleet_worker_busy"), 2);
  release = true;
  ASSERT_TRUE(testing::WaitUntil([&] { return w.Processed("hold", "succeeded") == 2; }));
  w.SampleGauges();
  EXPECT_EQ(MetricValue(registry_, "streamfleet_worker_busy"), 0);
}

// A slot whose queues are all paused checks again every kPausedPollMs, not every BLOCK time (500ms in Run):
// RESUME takes effect at once. Four rounds, so the old 0-500ms wait would pass by luck 1 time in 16.
TEST_F(WorkerTest, ResumedQueueIsServedWithinThePausedPoll) {
  std::atomic<int> calls{0};
  handlers_.Register("t", [&](TaskContext&) {
    ++calls;
    return Status::Ok();
  });
  auto& w = Make({{"WORKER_CONCURRENCY", "1"}, {"CONSUMER_NAME", "resume"}, {"QUEUES", "default:1"}});
  Running run(w);
  for (int round = 1; round <= 4; ++round) {
    SetPaused("default", true);
    // A read blocked before the pause still takes what arrives (up to its 500ms BLOCK): wait that out, so the
    // slot is polling the paused queue.
    std::this_thread::sleep_for(milliseconds(600));
    Enqueue("t");
    std::this_thread::sleep_for(milliseconds(120 * round % 500));
    EXPECT_EQ(calls.load(), round - 1) << "a paused queue was served";
    auto t0 = SteadyClock::now();
    SetPaused("default", false);
    while (calls.load() < round && SteadyClock::now() - t0 < milliseconds(2000)) std::this_thread::sleep_for(milliseconds(2));
    // Half Run's BLOCK time (500ms), whatever kPausedPollMs says.
    EXPECT_LT(SteadyClock::now() - t0, milliseconds(250)) << "round " << round;
  }
}

}  // namespace
}  // namespace streamfleet::worker
