// The queue-worker against a real redis-server.
#include "queue-worker/worker_service.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "streamfleet/base/envelope_version.h"
#include "streamfleet/cache/generation_cache.h"
#include "streamfleet/redis/stream_admin.h"
#include "support/tcp_proxy.h"
#include "support/wait.h"
#include "worker/worker_fixture.h"

namespace streamfleet::worker {
namespace {

TEST_F(WorkerTest, RunsATaskAndKeepsItsResult) {
  std::vector<std::string> seen;
  handlers_.Register("echo", [&](TaskContext& c) {
    seen.push_back(c.task.payload());
    c.result = "done";
    return Status::Ok();
  });
  auto& w = Make();
  std::string id = Enqueue("echo", R"({"x":1})");
  EXPECT_EQ(Drain(w), 1);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], R"({"x":1})");
  EXPECT_EQ(StatusField(id, "state"), "succeeded");
  EXPECT_EQ(StatusField(id, "result"), "done");
  EXPECT_EQ(StatusField(id, "worker"), "w") << "the consumer that ran it, not its stream entry id";
  EXPECT_NE(StatusField(id, "entry_id").find('-'), std::string::npos);
  EXPECT_GT(redis_->Command({"TTL", keys_.Status(id)})->integer, 0);
  EXPECT_EQ(w.Processed("echo", "succeeded"), 1);
}

TEST_F(WorkerTest, RetriesWithBackoffThroughTheClockThenSucceeds) {
  int calls = 0;
  handlers_.Register("flaky", [&](TaskContext&) {
    return ++calls < 3 ? Status::Unavailable("upstream down") : Status::Ok();
  });
  auto& w = Make();
  std::string id = Enqueue("flaky");
  EXPECT_EQ(Drain(w), 1);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(StatusField(id, "state"), "retry_scheduled");
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(Drain(w), 0) << "not due yet: the retry waits in Redis";
  clock_.Advance(1'001);  // first retry: within [0.5s, 1s]
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(Drain(w), 1);
  EXPECT_EQ(calls, 2);
  clock_.Advance(999);  // second retry: within [1s, 2s] - maybe not yet
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  Drain(w);
  clock_.Advance(1'001);
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  Drain(w);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(StatusField(id, "state"), "succeeded");
  EXPECT_EQ(StatusField(id, "attempts"), "3");
  EXPECT_TRUE(DeadLetters().empty());
}

TEST_F(WorkerTest, LastFailureGoesToTheDeadLetterStreamWithHistory) {
  handlers_.Register("broken", [](TaskContext&) -> Status { throw std::runtime_error("kaboom"); });
  auto& w = Make();
  std::string id = Enqueue("broken");
  for (int i = 0; i < 5; ++i) {
    Drain(w);
    clock_.Advance(20'000);
    ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  }
  auto dlq = DeadLetters();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_NE(dlq[0].Field("reason")->find("failed after 3 attempts"), std::string::npos) << *dlq[0].Field("reason");
  v1::TaskEnvelope e;
  ASSERT_TRUE(e.ParseFromString(*dlq[0].Field("e")));
  ASSERT_EQ(e.errors_size(), 3);
  EXPECT_NE(e.errors(0).find("kaboom"), std::string::npos);
  EXPECT_EQ(StatusField(id, "state"), "dead");
  EXPECT_EQ(w.Processed("broken", "retried"), 2);
}

// The queue streams were never trimmed: every task ever enqueued stayed in its stream, and Redis (noeviction)
// would end by refusing the fleet's writes. The housekeeper trims them, every 10 s, below what the group still
// holds: finished tasks go; a task a dead consumer holds and tasks not read yet stay and still run. Consumers
// idle past DEAD_CONSUMER_IDLE with nothing pending leave the group.
TEST_F(WorkerTest, TheHousekeeperTrimsFinishedTasksFromTheQueueStreams) {
  handlers_.Register("echo", [](TaskContext&) { return Status::Ok(); });
  auto& w = Make({{"DEAD_CONSUMER_IDLE", "1s"}});
  for (int i = 0; i < 30; ++i) Enqueue("echo");
  EXPECT_EQ(Drain(w), 30);
  EXPECT_EQ(QueueLen("default"), 30);
  Enqueue("echo");
  ASSERT_EQ(ReadAs("gone", "default").size(), 1u);  // held by a consumer that died
  Enqueue("echo");
  Enqueue("echo");
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  // Standard mode: the three kept. A cluster's shards each keep their last delivered entry too (MINID stops
  // at the group's last-delivered id, which may be a finished task's).
  if (ClusterRun()) {
    EXPECT_LE(QueueLen("default"), 3 + kTestQueueShards);
  } else {
    EXPECT_EQ(QueueLen("default"), 3);
  }
  EXPECT_EQ(Pending("default"), 1);
  EXPECT_EQ(Drain(w), 2) << "the tasks not read yet still run";

  for (int i = 0; i < 20; ++i) Enqueue("echo");
  EXPECT_EQ(Drain(w), 20);
  const int64_t before = QueueLen("default");
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(QueueLen("default"), before) << "not again within 10 s";
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past VISIBILITY_TIMEOUT and DEAD_CONSUMER_IDLE
  clock_.Advance(10'000);
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());  // trims, then takes the dead consumer's task over
  EXPECT_EQ(Pending("default"), 0) << "the dead consumer's task was taken over and run";
  clock_.Advance(10'000);
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_LE(QueueLen("default"), ClusterRun() ? kTestQueueShards : 1)
      << "of " << before << ": a stream keeps at most its last delivered entry (MINID stops at it)";

  std::set<std::string> consumers;
  for (const auto& s : keys_.QueueShards("default")) {
    auto r = redis_->Command({"XINFO", "CONSUMERS", s, TaskKeys::Group()});
    ASSERT_TRUE(r.ok());
    for (const auto& c : r->elements) {
      for (auto& [k, v] : ParsePairs(c)) {
        if (k == "name") consumers.insert(v.str);
      }
    }
  }
  EXPECT_EQ(consumers.count("gone"), 0u) << "idle past DEAD_CONSUMER_IDLE with nothing pending once its task was taken";

  // A queue whose stream is not there (yet: the housekeeper's first round may come before the slots created
  // it) is nothing to trim; the round goes on. (Its error's message was read from a destroyed Status: the
  // sanitizer run of the fleet test aborted on it once.)
  for (const auto& s : keys_.QueueShards("low")) ASSERT_TRUE(redis_->Command({"DEL", s}).ok());
  clock_.Advance(10'000);
  Status round = w.HousekeepOnce(*redis_, "hk");  // the trim passes over it; the reclaim reports the missing group
  EXPECT_TRUE(round.ok() || round.message().find("NOGROUP") != std::string::npos) << round.ToString();
  ASSERT_TRUE(w.EnsureGroups(*redis_).ok());
  Enqueue("echo");
  clock_.Advance(10'000);
  round = w.HousekeepOnce(*redis_, "hk");
  ASSERT_TRUE(round.ok()) << round.ToString();
  EXPECT_EQ(Drain(w), 1);
}

// A scheduled-set member without "<queue>|" (the set is writable by every producer) made the move script fail
// on every round: the housekeeper's round ended there, and no delayed task, retry, periodic task or reclaim
// went on, on every worker. It is dead-lettered whole, with the reason, and the due tasks beside it move on.
TEST_F(WorkerTest, AMalformedScheduledMemberIsDeadLetteredAndTheDueTasksMoveOn) {
  std::vector<std::string> seen;
  handlers_.Register("echo", [&](TaskContext& c) {
    seen.push_back(c.task.payload());
    return Status::Ok();
  });
  auto& w = Make();
  EnqueueOptions o;
  o.run_at_ms = kStart + 1'000;
  Enqueue("echo", R"({"n":1})", o);
  const std::string zset = keys_.ScheduledOf(keys_.QueueShards("default").front());
  ASSERT_TRUE(redis_->Command({"ZADD", zset, "0", "no queue here"}).ok());
  ASSERT_TRUE(redis_->Command({"ZADD", zset, "1", "|no queue name"}).ok());
  std::set<std::string> want = {"no queue here", "|no queue name"};
  if (!ClusterRun()) {  // a queue whose key is something else than a stream (a cluster shard's names its stream)
    ASSERT_TRUE(redis_->Command({"SET", keys_.Queue("odd"), "not a stream"}).ok());
    ASSERT_TRUE(redis_->Command({"ZADD", zset, "2", "odd|envelope"}).ok());
    want.insert("odd|envelope");
  }
  clock_.Advance(1'000);
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(Drain(w), 1);
  EXPECT_EQ(seen, std::vector<std::string>{R"({"n":1})"});
  EXPECT_EQ(redis_->Command({"ZCARD", zset})->integer, 0);
  auto dlq = DeadLetters();
  ASSERT_EQ(dlq.size(), want.size());
  std::set<std::string> kept;
  for (const auto& d : dlq) {
    const std::string& why = *d.Field("reason");
    EXPECT_TRUE(why.find("malformed scheduled member") != std::string::npos ||
                why.find("not movable to " + keys_.Queue("odd")) != std::string::npos) << why;
    EXPECT_EQ(d.Field("source_stream"), nullptr) << "nothing to requeue it to: a requeue of all skips it";
    kept.insert(*d.Field("e"));
  }
  EXPECT_EQ(kept, want) << "kept whole, for a look";
  auto requeued = RequeueDeadLetters(*redis_, *configs_.back(), "");
  ASSERT_TRUE(requeued.ok()) << requeued.status().ToString();
  EXPECT_EQ(*requeued, 0);
}

TEST_F(WorkerTest, UnknownTypesAndUndecodableEnvelopesAreDeadLetteredAtOnce) {
  auto& w = Make();
  Enqueue("no.such.type");
  ASSERT_TRUE(redis_->Command({"XADD", keys_.Queue("default"), "*", "e", "\xff\x01garbage"}).ok());
  Drain(w);
  auto dlq = DeadLetters();
  ASSERT_EQ(dlq.size(), 2u);
  std::set<std::string> reasons = {*dlq[0].Field("reason"), *dlq[1].Field("reason")};
  EXPECT_TRUE(reasons.count("unknown task type \"no.such.type\""));
  EXPECT_TRUE(reasons.count("undecodable TaskEnvelope"));
  EXPECT_EQ(Pending("default"), 0);
}

// Input that can never run is dead-lettered on its first delivery (no retries), the worker carries on, and
// the task's status record says "dead" with the reason instead of "pending" until it expires: an unknown
// type, a payload nested 100000 levels deep (refused by TaskContext::PayloadJson before anything recurses
// on it) and an envelope of a newer version.
TEST_F(WorkerTest, DeadLetteredTasksHaveADeadStatusWithTheReason) {
  RegisterBuiltins(handlers_, clock_);
  auto& w = Make();
  const std::string unknown = Enqueue("no.such.type");
  const std::string deep = Enqueue("generation.compact", R"({"organization_id":1,"generation_id":2,"x":)" +
                                                             std::string(100000, '[') + std::string(100000, ']') + "}");
  // An optional field of the wrong type threw a JSON type error, retried as an internal error.
  const std::string typed = Enqueue("generation.compact", R"({"organization_id":1,"generation_id":2,"scenario_id":"7"})");
  v1::TaskEnvelope future;
  future.set_id("from-the-future");
  future.set_type("noop");
  future.set_version(kTaskEnvelopeVersion + 1);
  std::vector<std::vector<std::string>> status;
  AppendTaskStatus(keys_, future.id(), "pending", {"attempts", "0"}, 3600, status);
  ASSERT_TRUE(redis_->Pipeline(status).ok());
  ASSERT_TRUE(redis_->Command({"XADD", keys_.Queue("default"), "*", "e", future.SerializeAsString()}).ok());
  Drain(w);
  EXPECT_EQ(DeadLetters().size(), 4u) << "all at once, on their first delivery";
  for (const auto& z : keys_.AllScheduled({"default"})) {
    EXPECT_EQ(redis_->Command({"ZCARD", z})->integer, 0) << "no retry scheduled";
  }
  EXPECT_EQ(Pending("default"), 0);
  const std::map<std::string, std::string> causes = {{unknown, "unknown task type \"no.such.type\""},
                                                     {deep, "nested deeper than"},
                                                     {typed, "payload must be"},
                                                     {future.id(), "version 2 is newer"}};
  for (const auto& [id, cause] : causes) {
    EXPECT_EQ(StatusField(id, "state"), "dead") << id;
    EXPECT_NE(StatusField(id, "error").find(cause), std::string::npos) << StatusField(id, "error");
    EXPECT_GT(redis_->Command({"TTL", keys_.Status(id)})->integer, 0) << "TASK_RESULT_TTL applies";
  }
  EXPECT_EQ(StatusField(deep, "attempts"), "1");
  std::string later = Enqueue("noop");
  Drain(w);
  EXPECT_EQ(StatusField(later, "state"), "succeeded") << "the worker carries on";
}

// A task whose workers keep dying is dead-lettered by the housekeeper past MAX_DELIVERIES: its status says so.
TEST_F(WorkerTest, TaskPastMaxDeliveriesHasADeadStatus) {
  handlers_.Register("t", [](TaskContext&) { return Status::Ok(); });
  auto& w = Make({{"MAX_DELIVERIES", "1"}});
  const std::string id = Enqueue("t");
  ASSERT_EQ(ReadAs("doomed", "default").size(), 1u);  // delivered once, to a worker that dies
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // VISIBILITY_TIMEOUT 200ms
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(DeadLetters().size(), 1u);
  EXPECT_EQ(StatusField(id, "state"), "dead");
  EXPECT_NE(StatusField(id, "error").find("(MAX_DELIVERIES)"), std::string::npos) << StatusField(id, "error");
}

// With TASK_RESULT_TTL=0 there are no status records: dead-lettering writes none either.
TEST_F(WorkerTest, DeadLetteringWritesNoStatusRecordWhenTheyAreOff) {
  auto& w = Make({{"TASK_RESULT_TTL", "0"}});
  EnqueueOptions o;
  o.status_ttl_s = 0;
  const std::string id = Enqueue("no.such.type", "{}", o);
  Drain(w);
  EXPECT_EQ(DeadLetters().size(), 1u);
  EXPECT_EQ(redis_->Command({"EXISTS", keys_.Status(id)})->integer, 0);
}

// A hand-made envelope claiming INT32_MAX (or negative) attempts: no overflow (UBSan runs this), the
// failure is dead-lettered at once as a task with no attempts left.
TEST_F(WorkerTest, EnvelopeWithAbsurdAttemptCountIsDeadLetteredWithoutOverflow) {
  handlers_.Register("fails", [](TaskContext&) { return Status::Unavailable("down"); });
  auto& w = Make();
  for (int32_t attempt : {std::numeric_limits<int32_t>::max(), -5}) {
    v1::TaskEnvelope t;
    t.set_id("absurd" + std::to_string(attempt));
    t.set_type("fails");
    t.set_queue("default");
    t.set_attempt(attempt);
    ASSERT_TRUE(redis_->Command({"XADD", keys_.Queue("default"), "*", "e", t.SerializeAsString()}).ok());
  }
  EXPECT_EQ(Drain(w), 2);
  auto dlq = DeadLetters();
  ASSERT_EQ(dlq.size(), 2u);
  for (const auto& d : dlq) EXPECT_NE(d.Field("reason")->find("failed after"), std::string::npos) << *d.Field("reason");
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Scheduled()}).value().integer, 0) << "no retry scheduled";
}

// A retry goes back to the queue the task was read from, not to one its envelope names (a hand-written envelope
// naming a queue no worker reads waited there for ever).
TEST_F(WorkerTest, ARetryGoesBackToTheQueueTheTaskWasReadFrom) {
  int calls = 0;
  handlers_.Register("flaky", [&](TaskContext&) { return ++calls < 2 ? Status::Unavailable("down") : Status::Ok(); });
  auto& w = Make();
  v1::TaskEnvelope t;
  t.set_id("misnamed");
  t.set_type("flaky");
  t.set_queue("nobody-reads-this");
  ASSERT_TRUE(redis_->Command({"XADD", keys_.Queue("default"), "*", "e", t.SerializeAsString()}).ok());
  EXPECT_EQ(Drain(w), 1);
  clock_.Advance(1'001);
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(redis_->Command({"EXISTS", keys_.Queue("nobody-reads-this")}).value().integer, 0);
  EXPECT_EQ(Drain(w), 1);
  EXPECT_EQ(calls, 2);
}

TEST_F(WorkerTest, DelayedTaskRunsOnlyWhenDueAndUniqueKeysDedupe) {
  int calls = 0;
  handlers_.Register("t", [&](TaskContext&) {
    ++calls;
    return Status::Ok();
  });
  auto& w = Make();
  EnqueueOptions o;
  o.run_at_ms = kStart + 30'000;
  o.unique_key = "report:42";
  auto first = EnqueueTask(*redis_, keys_, "t", "{}", o, kStart);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->scheduled);
  auto dup = EnqueueTask(*redis_, keys_, "t", "{}", o, kStart);
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->id, first->id);
  // Held for unique_ttl_s once the task is in (the cluster schema claims it for 30 s before the add).
  const int64_t held = redis_->Command({"TTL", keys_.Unique("report:42")})->integer;
  EXPECT_GT(held, 30);
  EXPECT_LE(held, o.unique_ttl_s);
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  Drain(w);
  EXPECT_EQ(calls, 0);
  clock_.Advance(30'000);
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk2").ok());  // a second worker moves nothing twice
  Drain(w);
  EXPECT_EQ(calls, 1);
}

TEST_F(WorkerTest, TaskOfADeadWorkerIsTakenOverAndCompleted) {
  int calls = 0;
  handlers_.Register("t", [&](TaskContext&) {
    ++calls;
    return Status::Ok();
  });
  auto& w = Make();
  Enqueue("t");
  // A worker takes the task and is SIGKILLed before finishing.
  ASSERT_EQ(ReadAs("dead", "default").size(), 1u);
  EXPECT_EQ(Drain(w), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // past VISIBILITY_TIMEOUT 200ms: reclaimable
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "alive").ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(Pending("default"), 0);
}

// XAUTOCLAIM looks at 10 x COUNT pending entries per call. Housekeeping restarted at the start of the pending
// list every round, so a dead worker's task behind 150 tasks a live worker keeps fresh was never reached.
TEST_F(WorkerTest, ADeadWorkersTaskBehindManyLiveOnesIsReached) {
  if (ClusterRun()) GTEST_SKIP() << "one stream: the standard schema's";
  int calls = 0;
  handlers_.Register("t", [&](TaskContext&) {
    ++calls;
    return Status::Ok();
  });
  auto& w = Make();
  for (int i = 0; i < 150; ++i) Enqueue("t");
  auto live = ReadAs("alive", "default", 150);
  ASSERT_EQ(live.size(), 150u);
  Enqueue("t");
  ASSERT_EQ(ReadAs("dead", "default").size(), 1u);
  std::vector<std::string> renew = {"XCLAIM", TaskKeys("streamfleet").Queue("default"), TaskKeys::Group(), "alive",
                                    "0"};
  for (const auto& e : live) renew.push_back(e.id);
  renew.push_back("JUSTID");
  for (int round = 0; round < 20 && calls == 0; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // past VISIBILITY_TIMEOUT 200ms
    ASSERT_TRUE(redis_->Command(renew).ok());                     // the live worker's heartbeat
    ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  }
  EXPECT_EQ(calls, 1) << "the dead worker's task ran, and none of the live worker's";
}

// A housekeeping round goes on past a step or a queue that fails (in a Redis Cluster, a node that is down
// holds some of the keys, not all; here a key replaced by another kind): the periodic task still fires when
// the delayed tasks' set cannot be read, and a dead worker's task in one queue is still taken over when
// another queue's stream cannot be; the round reports the failure.
TEST_F(WorkerTest, AHousekeepingRoundGoesOnPastAFailingStepOrQueue) {
  if (ClusterRun()) GTEST_SKIP() << "standard mode: the broken keys are named by hand";
  handlers_.Register("echo", [](TaskContext&) { return Status::Ok(); });
  auto& w = Make({{"PERIODIC_TASKS", "tick=noop@1h@low"}});
  Enqueue("echo");
  ASSERT_EQ(ReadAs("gone", "default").size(), 1u);  // held by a consumer that died
  ASSERT_TRUE(redis_->Command({"DEL", keys_.Scheduled(), keys_.Queue("critical")}).ok());
  ASSERT_TRUE(redis_->Command({"SET", keys_.Scheduled(), "not a sorted set"}).ok());
  ASSERT_TRUE(redis_->Command({"SET", keys_.Queue("critical"), "not a stream"}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past VISIBILITY_TIMEOUT (200 ms)
  auto round = w.HousekeepOnce(*redis_, "hk");
  EXPECT_FALSE(round.ok()) << "the failing steps are reported";
  EXPECT_EQ(QueueLen("low"), 1) << "the periodic task fired although the delayed tasks could not be moved";
  EXPECT_EQ(Pending("default"), 0) << "the dead consumer's task was taken over although 'critical' failed";
  EXPECT_EQ(w.Processed("echo", "succeeded"), 1);
}

// Three workers, three periods of Redis' clock: one task each. Each round starts just after a period
// begins (the period is Redis' TIME, not the workers' clocks), so all three workers see the same one (they
// have almost 2 s for it).
TEST_F(WorkerTest, PeriodicTaskFiresOncePerPeriodAcrossThreeWorkers) {
  auto& a = Make({{"PERIODIC_TASKS", "tick=noop@2s"}});
  auto& b = Make({{"PERIODIC_TASKS", "tick=noop@2s"}});
  auto& c = Make({{"PERIODIC_TASKS", "tick=noop@2s"}});
  for (int period = 0; period < 3; ++period) {
    auto t = redis_->Command({"TIME"});
    ASSERT_TRUE(t.ok());
    const int64_t us_into = (std::stoll(t->elements[0].str) % 2) * 1'000'000 + std::stoll(t->elements[1].str);
    std::this_thread::sleep_for(std::chrono::microseconds(2'000'000 - us_into + 20'000));
    for (auto* w : {&a, &b, &c}) ASSERT_TRUE(w->HousekeepOnce(*redis_, "hk").ok());
  }
  EXPECT_EQ(QueueLen("default"), 3);
}

// The workers' clocks do not decide: one whose clock jumps by hours within one period of Redis' fires nothing
// more (before, a worker behind by more than two intervals fired the period again).
TEST_F(WorkerTest, APeriodicTaskIgnoresTheWorkersClock) {
  auto& w = Make({{"PERIODIC_TASKS", "tick=noop@1h"}});
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  clock_.Advance(-3 * 3'600'000);
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  clock_.Advance(10 * 3'600'000);
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(QueueLen("default"), 1);
}

// An enqueue that failed (here: the queue's keys are not streams) writes nothing, not even the period's mark,
// and the next round fires it. The mark and the task are one script: no crash between them can lose a period.
TEST_F(WorkerTest, APeriodicTaskWhoseEnqueueFailedFiresInTheNextRound) {
  auto& w = Make({{"PERIODIC_TASKS", "tick=noop@1h"}});
  const auto shards = keys_.QueueShards("default");
  for (const auto& s : shards) ASSERT_TRUE(redis_->Command({"SET", s, "not a stream"}).ok());
  EXPECT_FALSE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(redis_->Command({"EXISTS", keys_.Periodic("tick")})->integer, 0);
  for (const auto& s : shards) {
    ASSERT_TRUE(redis_->Command({"DEL", s}).ok());
    ASSERT_TRUE(redis_->Command({"XGROUP", "CREATE", s, TaskKeys::Group(), "$", "MKSTREAM"}).ok());
  }
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(QueueLen("default"), 1) << "the period's task, once";
  ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
  EXPECT_EQ(QueueLen("default"), 1);
}

TEST_F(WorkerTest, WeightedQueuesServeCriticalMostButNeverStarveLow) {
  std::map<std::string, int> ran;
  handlers_.Register("t", [&](TaskContext& c) {
    ++ran[c.task.queue()];
    return Status::Ok();
  });
  auto& w = Make();
  for (const char* q : {"critical", "default", "low"}) {
    EnqueueOptions o;
    o.queue = q;
    for (int i = 0; i < 300; ++i) Enqueue("t", "{}", o);
  }
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(w.PollOnce(*redis_, "w", 10).ok());
  EXPECT_GT(ran["critical"], ran["default"]);
  EXPECT_GT(ran["default"], ran["low"]);
  EXPECT_GT(ran["low"], 0) << "a busy low queue is slow, not starved";
}

TEST_F(WorkerTest, PausedQueueIsNotServed) {
  int calls = 0;
  handlers_.Register("t", [&](TaskContext&) {
    ++calls;
    return Status::Ok();
  });
  auto& w = Make();
  SetPaused("default", true);
  Enqueue("t");
  Drain(w);
  EXPECT_EQ(calls, 0);
  SetPaused("default", false);
  Drain(w);
  EXPECT_EQ(calls, 1);
}

TEST_F(WorkerTest, StopLetsRunningTasksFinish) {
  std::atomic<int> finished{0};
  std::atomic<bool> started{false};
  handlers_.Register("slow", [&](TaskContext&) {
    started = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ++finished;
    return Status::Ok();
  });
  auto& w = Make({{"WORKER_CONCURRENCY", "2"}, {"CONSUMER_NAME", "drain"}});
  Enqueue("slow");
  std::atomic<bool> stop{false};
  std::thread t([&] { w.Run(stop); });
  EXPECT_TRUE(testing::WaitUntil([&] { return started.load(); })) << "the task never started";
  stop = true;  // as on SIGTERM
  t.join();
  EXPECT_EQ(finished.load(), 1);
  EXPECT_EQ(Pending("default"), 0) << "acked before exit";
}

// Short tasks: a slot reads a growing batch ahead (one read per batch), and each task is acked as it
// finishes (sent without waiting for the reply): nothing is acked before it ran, and nothing that finished
// stays unacked, so a crash re-runs no finished task.
TEST_F(WorkerTest, ShortTasksAreReadAheadInBatchesAndEachIsAckedAsItFinishes) {
  std::map<std::string, int> runs;
  handlers_.Register("t", [&](TaskContext& c) {
    ++runs[c.task.id()];
    return Status::Ok();
  });
  auto& w = Make({{"WORKER_PREFETCH", "16"}});
  for (int i = 0; i < 100; ++i) Enqueue("t");
  int64_t evals_before = CommandCalls("evalsha");
  Slot slot("w");
  int ran = 0;
  int reads = 0;  // PollBatch calls that had to read a batch (the slot held nothing)
  while (ran < 100) {
    reads += slot.held.empty();
    auto r = w.PollBatch(*redis_, slot, 10);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(*r, 1);
    ++ran;
    // With status records on, a finished task's record and ack wait only for the next held task's "running"
    // write, which goes out before that task's handler starts (one write per task); nothing else is owed, and
    // nothing waits once the slot holds no more.
    EXPECT_EQ(slot.finished.empty(), !slot.ack_deferred);
    EXPECT_TRUE(!slot.ack_deferred || !slot.held.empty()) << "an ack waits with no task to carry it";
    // Every task read is either still held, finished with its ack waiting for the next one, or acked: the PEL
    // holds exactly those. (Pending() uses the slot's connection, so it reads the acks' replies first.)
    ASSERT_EQ(Pending("default"), static_cast<int64_t>(slot.held.size()) + (slot.ack_deferred ? 1 : 0));
  }
  EXPECT_EQ(slot.prefetch, 16) << "the batch grew to WORKER_PREFETCH while tasks were short";
  EXPECT_LT(reads, 20) << "one read per batch, not per task";
  // Standard mode reads every queue with one script. Cluster mode runs the script per shard, queue by queue
  // in the weighted order until one has tasks (docs/redis-cluster.md, "Reading"): at most every shard of the
  // fixture's 3 queues per read.
  const int64_t scripts_per_read = keys_.cluster() ? 3 * keys_.shards() : 1;
  EXPECT_LE(CommandCalls("evalsha") - evals_before, reads * scripts_per_read) << "read scripts per batch";
  ASSERT_TRUE(w.FlushSlot(*redis_, slot).ok());
  EXPECT_EQ(Pending("default"), 0);
  EXPECT_EQ(runs.size(), 100u);
  for (auto& [id, n] : runs) EXPECT_EQ(n, 1) << id;
}

// A task longer than kShortTaskMs ends read-ahead: its successors would wait behind it.
TEST_F(WorkerTest, SlowTaskStopsReadAhead) {
  std::atomic<bool> slow{false};
  handlers_.Register("t", [&](TaskContext&) {
    if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(2 * WorkerService::kShortTaskMs));
    return Status::Ok();
  });
  auto& w = Make({{"WORKER_PREFETCH", "8"}});
  for (int i = 0; i < 40; ++i) Enqueue("t");
  Slot slot("w");
  while (slot.prefetch < 8) ASSERT_EQ(*w.PollBatch(*redis_, slot, 10), 1);
  slow = true;
  do ASSERT_EQ(*w.PollBatch(*redis_, slot, 10), 1);
  while (!slot.held.empty());
  EXPECT_EQ(slot.prefetch, 1);
  ASSERT_EQ(*w.PollBatch(*redis_, slot, 10), 1);
  EXPECT_TRUE(slot.held.empty()) << "one at a time now";
}

// SIGTERM while a slot holds tasks it read ahead: it runs them, acks everything, and leaves the rest unread.
TEST_F(WorkerTest, StopRunsTheReadAheadTasksAndAcksThem) {
  std::atomic<int> runs{0};
  handlers_.Register("t", [&](TaskContext&) {
    ++runs;
    return Status::Ok();
  });
  auto& w = Make({{"WORKER_CONCURRENCY", "1"}, {"WORKER_PREFETCH", "64"}, {"CONSUMER_NAME", "ahead"}});
  for (int i = 0; i < 3000; ++i) Enqueue("t");
  std::atomic<bool> stop{false};
  std::thread t([&] { w.Run(stop); });
  ASSERT_TRUE(testing::WaitUntil([&] { return runs.load() > 200; }));
  stop = true;
  t.join();
  EXPECT_EQ(Pending("default"), 0) << "nothing held or owed after stop";
  EXPECT_EQ(runs.load() + Unread("default"), 3000) << "every task ran once or is unread";
}

TEST_F(WorkerTest, RedisOutageIsCountedOnceAndReadinessFollows) {
  if (ClusterRun()) GTEST_SKIP() << "standard mode only: kills and restarts the one redis-server";
  auto& w = Make({{"WORKER_CONCURRENCY", "2"}, {"CONSUMER_NAME", "outage"}, {"REDIS_TIMEOUT", "200ms"}});
  std::atomic<bool> stop{false};
  std::thread t([&] { w.Run(stop); });
  auto wait_for = [&](bool ready) { return testing::WaitUntil([&] { return w.Ready().ok() == ready; }); };
  // streamfleet_redis_up, which the Redis-down alert watches: ingest's only, until the worker had one too.
  prometheus::Gauge& redis_up = DependencyHealth::RedisUpGauge(registry_);
  EXPECT_TRUE(wait_for(true));
  EXPECT_EQ(redis_up.Value(), 1);
  server_->Kill();
  EXPECT_TRUE(wait_for(false)) << "not ready while Redis is down";
  EXPECT_EQ(redis_up.Value(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // every slot keeps failing: still one outage
  server_->Start();
  EXPECT_TRUE(wait_for(true)) << "ready again once Redis is back";
  stop = true;
  t.join();
  EXPECT_EQ(w.redis_health().outages(), 1);
  redis_ = RedisClient::Connect(server_->config()).value();
}

// A worker that never reached Redis must not report it reachable when it stops (it used to log "redis
// reachable again ... ready" at shutdown: the final flush had nothing to send and counted as a success).
TEST_F(WorkerTest, StoppingWhileRedisIsDownDoesNotReportItReachable) {
  if (ClusterRun()) GTEST_SKIP() << "standard mode only: points the worker at a closed port";
  auto& w = Make({{"WORKER_CONCURRENCY", "2"}, {"CONSUMER_NAME", "never-up"}, {"REDIS_TIMEOUT", "200ms"},
                  {"REDIS_URL", "redis://127.0.0.1:" + std::to_string(testing::FreePort())}});
  std::atomic<bool> stop{false};
  std::thread t([&] { w.Run(stop); });
  EXPECT_TRUE(testing::WaitUntil([&] { return w.redis_health().outages() == 1; }));
  stop = true;
  t.join();
  EXPECT_FALSE(w.redis_health().up()) << "nothing ever reached Redis";
  EXPECT_EQ(w.redis_health().outages(), 1);
}

// TASK_TIMEOUTS: the attempt fails with reason "timeout" and goes through the retry policy like any failure.
TEST_F(WorkerTest, TimeoutFailsTheAttemptThenRetriesThenDeadLetters) {
  std::atomic<int> saw_cancel{0};
  handlers_.Register("slow", [&](TaskContext& c) {
    while (!c.Cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ++saw_cancel;
    return Status::Ok();  // too late: the attempt already counts as failed
  });
  auto& w = Make({{"TASK_TIMEOUTS", "slow=100ms,other=1m"}, {"TASK_TIMEOUT_GRACE", "2s"}});
  std::string id = Enqueue("slow");
  EXPECT_EQ(Drain(w), 1);
  EXPECT_EQ(saw_cancel.load(), 1);
  EXPECT_EQ(StatusField(id, "state"), "retry_scheduled");
  EXPECT_NE(StatusField(id, "error").find("timeout"), std::string::npos) << StatusField(id, "error");
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(20'000);
    ASSERT_TRUE(w.HousekeepOnce(*redis_, "hk").ok());
    Drain(w);
  }
  auto dlq = DeadLetters();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_NE(dlq[0].Field("reason")->find("timeout"), std::string::npos) << *dlq[0].Field("reason");
  EXPECT_EQ(saw_cancel.load(), 3);
  EXPECT_EQ(w.Processed("slow", "retried"), 2);
  EXPECT_EQ(w.Processed("slow", "dead_lettered"), 1);
}

// A direct caller of PollOnce has no thread to spare (only Run's slot threads can be replaced, see
// inline_slots_test.cc): a handler that ignores cancellation is waited for, nothing is abandoned, and the
// attempt still fails as a timeout whatever it returns.
TEST_F(WorkerTest, DirectCallerWaitsForAHandlerIgnoringCancellationAndCountsATimeout) {
  handlers_.Register("stubborn", [](TaskContext&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    return Status::Ok();
  });
  auto& w = Make({{"TASK_TIMEOUT", "100ms"}, {"TASK_TIMEOUT_GRACE", "100ms"}});
  std::string id = Enqueue("stubborn");
  ASSERT_EQ(*w.PollOnce(*redis_, "w", 10), 1);
  EXPECT_EQ(Watchdog::AbandonedNow(), 0);
  EXPECT_EQ(StatusField(id, "state"), "retry_scheduled");
  EXPECT_NE(StatusField(id, "error").find("timeout: ran longer than 100ms"), std::string::npos)
      << StatusField(id, "error");
}

// A live worker renews the lease of a task that runs longer than VISIBILITY_TIMEOUT, so a second worker does
// not take it; once the first one is cut off (as by SIGKILL, nothing acked) the second takes it over.
TEST_F(WorkerTest, LeaseKeepsALongTaskOwnedUntilItsWorkerDies) {
  if (ClusterRun()) GTEST_SKIP() << "standard mode only: cuts one connection through a TCP proxy to one server";
  std::atomic<int> calls{0};
  handlers_.Register("long", [&](TaskContext&) {
    if (++calls == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    return Status::Ok();
  });
  testing::TcpProxy proxy(server_->port());
  auto& a = Make({{"REDIS_PORT", std::to_string(proxy.port())}});  // VISIBILITY_TIMEOUT 200ms
  auto& b = Make();
  std::string id = Enqueue("long");
  auto a_redis = RedisClient::Connect(configs_[0]->redis).value();
  std::thread first([&] { (void)a.PollOnce(*a_redis, "a", 10); });
  testing::WaitUntil([&] { return calls.load() > 0; });
  ASSERT_EQ(calls.load(), 1);
  // 600ms or more (a sleep is a minimum, so load only lengthens it): three visibility timeouts in which the
  // live worker's heartbeat must keep its task.
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(b.HousekeepOnce(*redis_, "b").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(calls.load(), 1) << "a live worker's task was stolen";
  proxy.Down();  // the first worker is gone: no heartbeat, no ack
  testing::WaitUntil([&] {
    EXPECT_TRUE(b.HousekeepOnce(*redis_, "b").ok());
    return calls.load() >= 2;
  });
  first.join();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(StatusField(id, "state"), "succeeded");
  EXPECT_EQ(Pending("default"), 0);
}

TEST_F(WorkerTest, OldestWaitingTaskAgeCountsOnlyUndeliveredTasks) {
  handlers_.Register("t", [](TaskContext&) { return Status::Ok(); });
  auto& w = Make();
  EXPECT_EQ(OldestWaiting(w, "default"), 0);
  Enqueue("t");
  Enqueue("t");
  std::this_thread::sleep_for(std::chrono::milliseconds(60));  // the age being measured; load only adds to it
  EXPECT_GE(OldestWaiting(w, "default"), 0.05);
  Drain(w);
  EXPECT_EQ(OldestWaiting(w, "default"), 0);
}

TEST(BackoffTest, ExponentialWithJitterAndCap) {
  RetryPolicy p{10, 1000, 8000};
  EXPECT_EQ(BackoffMs(p, 1, 0), 500);
  EXPECT_EQ(BackoffMs(p, 1, 500), 1000);
  EXPECT_EQ(BackoffMs(p, 3, 0), 2000);
  EXPECT_EQ(BackoffMs(p, 10, 4000), 8000);
}

// What a failed attempt leads to (retry_policy.h): a permanent error or the last attempt dead-letters, any
// other failure retries after the jittered backoff; either way the history gets the error.
TEST(RetryPolicyTest, PermanentErrorsAndTheLastAttemptDieOthersRetry) {
  v1::TaskEnvelope t;
  t.set_id("t1");
  t.set_attempt(0);
  const RetryPolicy p{3, 1000, 8000};
  auto retry = DecideFailure(t, Status::Unavailable("down"), p, kStart, 0);
  EXPECT_FALSE(retry.dead);
  EXPECT_EQ(retry.next.attempt(), 1);
  EXPECT_EQ(retry.run_at_ms, kStart + 500);
  EXPECT_EQ(retry.next.run_at_ms(), retry.run_at_ms);
  ASSERT_EQ(retry.next.errors_size(), 1);
  EXPECT_EQ(retry.next.errors(0), "attempt 1: " + Status::Unavailable("down").ToString());
  auto permanent = DecideFailure(t, Status::InvalidArgument("bad payload"), p, kStart, 0);
  EXPECT_TRUE(permanent.dead);
  EXPECT_EQ(permanent.reason, "permanent error: " + Status::InvalidArgument("bad payload").ToString());
  EXPECT_TRUE(DecideFailure(t, Status::FailedPrecondition("no db"), p, kStart, 0).dead);
  t.set_attempt(2);
  auto last = DecideFailure(t, Status::Unavailable("down"), p, kStart, 0);
  EXPECT_TRUE(last.dead);
  EXPECT_EQ(last.reason, "failed after 3 attempts: " + Status::Unavailable("down").ToString());
}

// One answer to "which policy": TASK_POLICY, else the handler's own default, else the TASK_* variables.
TEST(RetryPolicyTest, TaskPolicyBeatsTheHandlersDefaultWhichBeatsTheFleetDefault) {
  auto c = LoadConfig(testing::MapEnv({{"TASK_POLICY", "a=9/10/20"}, {"TASK_MAX_ATTEMPTS", "4"}}), ":9102");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  HandlerRegistry r;
  r.SetPolicy("a", RetryPolicy{2, 1, 1});
  r.SetPolicy("b", RetryPolicy{7, 2, 3});
  EXPECT_EQ(r.Policy("a", *c).max_attempts, 9);
  EXPECT_EQ(r.Policy("b", *c).max_attempts, 7);
  EXPECT_EQ(r.Policy("c", *c).max_attempts, 4);
  EXPECT_EQ(r.Policy("c", *c).base_ms, 1000);
}

// cache.warm loads generation rows into the fleet cache; cache.flush invalidates through the same library.
TEST_F(WorkerTest, CacheWarmAndCacheFlushUseTheCacheLibrary) {
  std::string db = testing::TempPath("sf-worker-cache") + ".db";
  std::string dir = testing::TempPath("sf-worker-cachedir");
  auto store = SqlStore::Open("sqlite:" + db).value();
  ASSERT_TRUE(store->Migrate().ok());
  GenerationWrite gw;
  gw.id = 5;
  gw.organization_id = 3;
  gw.llm_response = R"({"a": 1})";
  gw.chunk_count = 1;
  gw.compacted_at = "2026-11-25T12:00:00.000Z";
  gw.compacted_by = "test";
  gw.finalize_id = "f1";
  ASSERT_TRUE(store->UpsertGeneration(gw).ok());
  CacheOptions o;
  o.fs_dir = dir;
  Cache cache(RedisConfigForTest(), o);
  RegisterCacheHandlers(handlers_, cache, store.get());
  auto& w = Make();
  std::string key = *cache.Key(kGenerationCacheName, GenerationCacheContent(3, 5));

  std::string id = Enqueue("cache.warm", R"({"generations": [{"organization_id": 3, "generation_id": 5},
                                                             {"organization_id": 3, "generation_id": 6}]})");
  EXPECT_EQ(Drain(w), 1);
  EXPECT_EQ(StatusField(id, "state"), "succeeded");
  EXPECT_EQ(StatusField(id, "result"), "1 loaded, 0 already cached, 1 not found");
  auto v = redis_->Command({"GET", key});
  ASSERT_EQ(v->type, RedisValue::Type::kString);
  EXPECT_EQ(nlohmann::json::parse(v->str)["llm_response"]["a"], 1);
  id = Enqueue("cache.warm", R"({"generations": [{"organization_id": 3, "generation_id": 5}]})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "result"), "0 loaded, 1 already cached, 0 not found");

  id = Enqueue("cache.flush", R"({"key": ")" + key + R"("})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "result"), "1 keys deleted");
  EXPECT_EQ(redis_->Command({"EXISTS", key})->integer, 0);
  Enqueue("cache.warm", R"({"generations": [{"organization_id": 3, "generation_id": 5}]})");
  Drain(w);
  ASSERT_TRUE(redis_->Command({"SET", "unrelated:key", "keep"}).ok());
  id = Enqueue("cache.flush", R"({"name": "generation"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "result"), "1 keys deleted");
  id = Enqueue("cache.flush", R"({"pattern": "*"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "result"), "0 keys deleted");
  EXPECT_EQ(redis_->Command({"EXISTS", "unrelated:key"})->integer, 1) << "flushes touch cache keys only";

  id = Enqueue("cache.flush", R"({"key": "a", "name": "b"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "dead") << "an ambiguous payload is not retried";
  id = Enqueue("cache.warm", R"({"generations": [], "force": "yes"})");
  Drain(w);
  EXPECT_EQ(StatusField(id, "state"), "dead") << "a wrongly typed field is not retried as an internal error";
  EXPECT_NE(StatusField(id, "error").find("payload must be"), std::string::npos) << StatusField(id, "error");
  std::remove(db.c_str());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace streamfleet::worker
