// The operator actions both streamfleetctl and the admin API call (streamfleet/operations/operator_task.h,
// fleet_admin.h's dead-letter answers) and the JSON forms both print (operator_json.h), against a real
// redis-server.
#include <gtest/gtest.h>

#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/operations/operator_json.h"
#include "streamfleet/operations/operator_task.h"
#include "streamfleet/redis/stream_admin.h"
#include "support/map_env.h"
#include "support/redis_suite.h"

namespace streamfleet {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1'900'000'000'000;

class OperatorActionsTest : public testing::RedisSuite<> {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
    config_ = LoadConfig(testing::MapEnv(server_->env()), ":0").value();
    tkeys_ = TaskKeys::FromConfig(config_);
  }
  int64_t Len(const std::string& stream) { return redis_->Command({"XLEN", stream})->integer; }

  Config config_;
  TaskKeys tkeys_{"streamfleet"};
};

TEST_F(OperatorActionsTest, EnqueueRefusesWhatCouldOnlyFailBeforeWritingAnything) {
  OperatorTask broken{"noop", "{broken", "default", "", 0};
  auto r = EnqueueOperatorTask(*redis_, config_, broken, kNow);
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind("payload is not valid JSON: ", 0), 0u) << r.status().message();
  OperatorTask bad_queue{"noop", "{}", "no such*queue", "", 0};
  auto q = EnqueueOperatorTask(*redis_, config_, bad_queue, kNow);
  ASSERT_EQ(q.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q.status().message(), "invalid queue name");
  EXPECT_EQ(Len(tkeys_.Queue("default")), 0);
}

TEST_F(OperatorActionsTest, EnqueueNowLaterAndOnceByUniqueKey) {
  auto now = EnqueueOperatorTask(*redis_, config_, {"noop", "{}", "low", "", 0}, kNow);
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_FALSE(now->scheduled);
  EXPECT_EQ(Len(tkeys_.Queue("low")), 1);
  EXPECT_GT(redis_->Command({"TTL", tkeys_.Status(now->id)})->integer, 0) << "kept TASK_RESULT_TTL";
  OperatorTask later{"noop", R"({"n":1})", "default", "k1", kNow + 60'000};
  auto first = EnqueueOperatorTask(*redis_, config_, later, kNow);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->scheduled);
  auto again = EnqueueOperatorTask(*redis_, config_, later, kNow);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->id, first->id);
}

TEST_F(OperatorActionsTest, AnUnknownDeadLetterIdIsNotFound) {
  std::string id = redis_->Command({"XADD", tkeys_.DeadLetters(), "*", "source_stream", tkeys_.Queue("default"),
                                    "reason", "boom", "e", "env"})->str;
  std::string sourceless = redis_->Command({"XADD", tkeys_.DeadLetters(), "*", "reason", "boom"})->str;
  EXPECT_EQ(RequeueDeadLetters(*redis_, config_, "1-1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(RequeueDeadLetters(*redis_, config_, sourceless).status().code(), StatusCode::kNotFound)
      << "nowhere to go back to";
  auto one = RequeueDeadLetters(*redis_, config_, id);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(*one, 1);
  EXPECT_EQ(Len(tkeys_.Queue("default")), 1);
  auto all = RequeueDeadLetters(*redis_, config_, "");
  ASSERT_TRUE(all.ok()) << "requeuing every entry finds nothing to do: not an error";
  EXPECT_EQ(*all, 0);
  EXPECT_EQ(DeleteDeadLetter(*redis_, config_, id).status().code(), StatusCode::kNotFound) << "requeued: gone";
  auto deleted = DeleteDeadLetter(*redis_, config_, sourceless);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, 1);
}

// The chunk and the task dead-letter streams generate their ids apart: one id can name an entry in each. Requeue by
// id moved both (a poison chunk entry went back beside the task asked for); like delete, it now moves neither.
TEST_F(OperatorActionsTest, ADeadLetterIdHeldByTwoStreamsIsNotRequeued) {
  KeySchema keys = KeySchema::FromConfig(config_);
  ASSERT_TRUE(redis_->Command({"XADD", tkeys_.DeadLetters(), "9-0", "source_stream", tkeys_.Queue("default"),
                               "reason", "boom", "e", "env"}).ok());
  ASSERT_TRUE(redis_->Command({"XADD", keys.ChunkDeadLetterStream(), "9-0", "source_stream", keys.ChunkStream(0),
                               "reason", "poison", "e", "chunk"}).ok());
  auto r = RequeueDeadLetters(*redis_, config_, "9-0");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("several dead-letter streams"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(Len(tkeys_.DeadLetters()), 1);
  EXPECT_EQ(Len(keys.ChunkDeadLetterStream()), 1);
  EXPECT_EQ(Len(tkeys_.Queue("default")), 0);
  EXPECT_EQ(Len(keys.ChunkStream(0)), 0);
}

// A requeued dead task waits again, and its record says so: it said "dead" until the task ran, so `tasks show`
// reported it dead and a cancel was refused. A record that moved on since is left as it is.
TEST_F(OperatorActionsTest, ARequeuedDeadTasksRecordSaysPending) {
  auto enq = EnqueueOperatorTask(*redis_, config_, {"noop", "{}", "default", "", 0}, kNow);
  ASSERT_TRUE(enq.ok()) << enq.status().ToString();
  auto read = redis_->Command({"XRANGE", tkeys_.Queue("default"), "-", "+"});
  ASSERT_EQ(read->elements.size(), 1u);
  StreamEntry entry = ParseEntries(tkeys_.Queue("default"), *read)[0];
  ASSERT_TRUE(redis_->Command({"DEL", tkeys_.Queue("default")}).ok());
  ASSERT_TRUE(DeadLetter(*redis_, tkeys_.DeadLetters(), entry, "w", "boom", 3).ok());
  ASSERT_TRUE(redis_->Command({"HSET", tkeys_.Status(enq->id), "state", "dead"}).ok());
  auto n = RequeueDeadLetters(*redis_, config_, "");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(Len(tkeys_.Queue("default")), 1);
  EXPECT_EQ(redis_->Command({"HGET", tkeys_.Status(enq->id), "state"})->str, "pending");
  EXPECT_GT(redis_->Command({"TTL", tkeys_.Status(enq->id)})->integer, 0);
}

// A chunk entry of ingest holds one request's envelopes (a field "e" each, or a ChunkBatch in a field "b"): a
// replay puts all of them back, in order, as one entry, without the dead letter's own fields.
TEST_F(OperatorActionsTest, RequeueOfAChunkEntryPutsBackEveryEnvelope) {
  KeySchema keys = KeySchema::FromConfig(config_);
  StreamEntry entry{keys.ChunkStream(0), "5-1", {{"e", "first"}, {"e", "second"}, {"e", "third"}}};
  StreamEntry batch{keys.ChunkStream(1), "5-2", {{"b", std::string("\x0a\x01x\x0a\x01y\x10\x07", 8)}}};
  ASSERT_TRUE(DeadLetter(*redis_, keys.ChunkDeadLetterStream(), entry, "compactor", "old build", 1).ok());
  ASSERT_TRUE(DeadLetter(*redis_, keys.ChunkDeadLetterStream(), batch, "compactor", "old build", 1).ok());
  auto n = RequeueDeadLetters(*redis_, config_, "");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2);
  for (const StreamEntry* e : {&entry, &batch}) {
    auto back = ParseEntries(e->stream, *redis_->Command({"XRANGE", e->stream, "-", "+"}));
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].fields, e->fields);
  }
  EXPECT_EQ(Len(keys.ChunkDeadLetterStream()), 0);
}

// A finalization goes back under a new id, with "q" the id it was first queued under: the finalizer compares
// that one with the generation's start (an earlier attempt's finalization is superseded, docs/ARCHITECTURE.md
// "Attempts"). Put back twice, it keeps the first.
TEST_F(OperatorActionsTest, RequeueOfAFinalizationKeepsTheIdItWasFirstQueuedUnder) {
  KeySchema keys = KeySchema::FromConfig(config_);
  StreamEntry fin{keys.FinalizeStream(0), "7-3", {{"m", "12:0:5"}, {"r", "idle_timeout"}, {"at", "7"}}};
  ASSERT_TRUE(DeadLetter(*redis_, keys.ChunkDeadLetterStream(), fin, "compactor", "db refused", 5).ok());
  auto n = RequeueDeadLetters(*redis_, config_, "");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  auto back = ParseEntries(fin.stream, *redis_->Command({"XRANGE", fin.stream, "-", "+"}));
  ASSERT_EQ(back.size(), 1u);
  ASSERT_NE(back[0].Field("q"), nullptr);
  EXPECT_EQ(*back[0].Field("q"), "7-3");
  EXPECT_EQ(*back[0].Field("m"), "12:0:5");
  ASSERT_TRUE(DeadLetter(*redis_, keys.ChunkDeadLetterStream(), back[0], "compactor", "db refused", 5).ok());
  ASSERT_TRUE(redis_->Command({"DEL", fin.stream}).ok());
  ASSERT_TRUE(RequeueDeadLetters(*redis_, config_, "").ok());
  auto twice = ParseEntries(fin.stream, *redis_->Command({"XRANGE", fin.stream, "-", "+"}));
  ASSERT_EQ(twice.size(), 1u);
  EXPECT_EQ(*twice[0].Field("q"), "7-3");
}

// Under maxmemory Redis refuses the XADD that puts a dead letter back. The dead letter must still be there
// afterwards: a script is not rolled back, so a delete before the add would have lost it.
TEST_F(OperatorActionsTest, ARequeueRefusedForMemoryKeepsTheDeadLetter) {
  if (config_.redis.cluster) GTEST_SKIP() << "CONFIG SET on one node: the standalone server's";
  std::string id = redis_->Command({"XADD", tkeys_.DeadLetters(), "*", "source_stream", tkeys_.Queue("default"),
                                    "reason", "boom", "e", "env"})->str;
  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory", "1"}).ok());
  auto refused = RequeueDeadLetters(*redis_, config_, id);
  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory", "0"}).ok());
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(Len(tkeys_.DeadLetters()), 1) << "kept for the next try";
  EXPECT_EQ(Len(tkeys_.Queue("default")), 0);
  auto again = RequeueDeadLetters(*redis_, config_, id);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, 1);
  EXPECT_EQ(Len(tkeys_.DeadLetters()), 0);
  EXPECT_EQ(Len(tkeys_.Queue("default")), 1);
}

// A requeue of all read the whole dead-letter stream in one XRANGE (up to its MAXLEN, about a million after a
// bad rollout: Redis stalled for every process). It reads pages, up to the stream's last entry when it
// started: what fails again meanwhile comes back after it and waits for the next requeue. A dead letter is
// found by its id wherever it is (a listing shows the first 1000).
TEST_F(OperatorActionsTest, RequeueOfAllReadsThePagesOfTheStreamAsItWas) {
  const int kLetters = 1234;  // more than two pages
  for (int i = 0; i < kLetters; ++i) {
    ASSERT_TRUE(redis_->Command({"XADD", tkeys_.DeadLetters(), "*", "source_stream", tkeys_.Queue("default"),
                                 "reason", "boom", "e", "env-" + std::to_string(i)})
                    .ok());
  }
  std::string late;
  int64_t calls = 0;
  RequeueProgress progress = [&](const std::string&, int64_t done, int64_t total) {
    ++calls;
    EXPECT_EQ(total, kLetters);
    if (done == 600) {  // a task that failed again while the requeue runs
      late = redis_->Command({"XADD", tkeys_.DeadLetters(), "*", "source_stream", tkeys_.Queue("default"),
                              "reason", "again", "e", "late"})->str;
    }
  };
  auto n = RequeueDeadLetters(*redis_, config_, "", progress);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, kLetters);
  EXPECT_EQ(calls, kLetters);
  EXPECT_EQ(Len(tkeys_.Queue("default")), kLetters);
  ASSERT_EQ(Len(tkeys_.DeadLetters()), 1) << "the one that came after the requeue started waits";
  auto found = GetDeadLetter(*redis_, config_, late);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ(*(*found)->entry.Field("e"), "late");
  EXPECT_FALSE(GetDeadLetter(*redis_, config_, "1-1")->has_value());
}

TEST_F(OperatorActionsTest, JsonFormsNameWhatTheCliAndTheAdminApiShow) {
  const std::string stream = tkeys_.Queue("default");
  ASSERT_TRUE(redis_->Command({"XADD", stream, "*", "e", "x"}).ok());
  ASSERT_TRUE(redis_->Command({"XGROUP", "CREATE", stream, "workers", "0"}).ok());
  ASSERT_TRUE(redis_->Command({"XREADGROUP", "GROUP", "workers", "w-1", "STREAMS", stream, ">"}).ok());
  json s = StreamStatsJson(GetStreamStats(*redis_, stream, /*with_consumers=*/true).value());
  EXPECT_EQ(s["stream"], stream);
  EXPECT_EQ(s["length"], 1);
  ASSERT_EQ(s["groups"].size(), 1u);
  EXPECT_EQ(s["groups"][0]["group"], "workers");
  EXPECT_EQ(s["groups"][0]["pending"], 1);
  EXPECT_EQ(s["groups"][0]["consumer_list"][0]["name"], "w-1");
  EXPECT_FALSE(s["groups"][0].contains("last_delivered_id")) << "the admin API adds it, the CLI does not show it";

  BufferKeyInfo list{"k", "list", 60, 3, {}, "abc", 1, 20, /*elements_read=*/true};
  EXPECT_EQ(BufferKeyJson(list), json::parse(R"({"key":"k","type":"list","ttl":60,"llen":3,"text":"abc","text_bytes":3,
                                                 "stored_bytes":20,"compressed_elements":1})"));
  BufferKeyInfo length_only{"k", "list", 60, 3, {}, "", 0, 0, false};  // the admin page's (with_elements false)
  EXPECT_EQ(BufferKeyJson(length_only), json::parse(R"({"key":"k","type":"list","ttl":60,"llen":3})"));
  BufferKeyInfo meta{"k:meta", "hash", -1, -1, {{"total_chunks", "4"}}, "", 0, 0};
  EXPECT_EQ(BufferKeyJson(meta),
            json::parse(R"({"key":"k:meta","type":"hash","ttl":-1,"hash":{"total_chunks":"4"}})"));

  DeadLetterEntry d{"streamfleet:dlq:tasks", {"streamfleet:dlq:tasks", "5-1", {{"reason", "boom"}, {"e", "\xff"}}}};
  EXPECT_EQ(DeadLetterJson(d), json::parse(R"({"dlq":"streamfleet:dlq:tasks","id":"5-1","reason":"boom"})"));

  ManualCompaction m;
  m.outcome.chunk_count = 3;
  m.outcome.json_valid = true;
  m.outcome.missing = {1};
  m.outcome.marked_compacted = true;
  EXPECT_EQ(ManualCompactionJson(9, m), json::parse(R"({"generation_id":9,"chunk_count":3,"json_valid":true,
                                                          "missing_seqs":[1],"row_kept":false,
                                                          "marked_compacted":true,"buffer_deleted":false})"));
}

}  // namespace
}  // namespace streamfleet
