// IngestAppendMany (ingest's single-chunk requests of one loop turn in one script call) checks and writes each
// request exactly as a call of its own would: the same answers, refusals that stay the refused request's, and
// the same state in Redis afterwards.
#include <gtest/gtest.h>

#include "buffer_on_redis.h"
#include "streamfleet/chunks/chunk_scripts.h"
#include "streamfleet/chunks/chunk_writer.h"

namespace streamfleet {
namespace {

struct Request {
  GenerationId gen;
  PendingChunk chunk;
};

PendingChunk Chunk(std::string data, std::optional<int64_t> seq = std::nullopt) {
  PendingChunk c;
  c.data = std::move(data);
  c.seq = seq;
  return c;
}

// Generation ids from `base`: the same requests on ids no other run touched.
std::vector<Request> Requests(int64_t base) {
  return {
      {{1, 0, base + 1}, Chunk("first")},                  // starts the generation, seq 0 assigned
      {{1, 0, base + 3}, Chunk("broken")},                 // its control key is not a hash: WRONGTYPE, raised
      {{2, 0, base + 1}, Chunk("not yours")},              // another organization, same id: refused
      {{1, 0, base + 2}, Chunk("x", 0)},                   // a client seq
      {{1, 0, base + 2}, Chunk("y", 0)},                   // the same seq with other data: refused
      {{1, 0, base + 2}, Chunk("x", 0)},                   // the same seq, same data: a retry, accepted
      {{1, 7, base + 1}, Chunk("other scenario")},         // the scenario differs: refused
      {{1, 0, base + 1}, Chunk("second")},                 // seq 1, after the refusals in between
  };
}

class AppendManyTest : public BufferOnRedisTest {
 protected:
  // The requests as one IngestAppendMany call; each request's chunks in *chunks, for ParseAppendReply.
  static ChunkWriter::AppendCall Pack(const ChunkWriter& writer, const std::vector<Request>& requests,
                                      std::vector<std::vector<PendingChunk>>* chunks) {
    std::vector<ChunkWriter::AppendCall> calls;
    for (const auto& r : requests) {
      chunks->push_back({r.chunk});
      calls.push_back(writer.PrepareAppend(r.gen, chunks->back(), "test"));
    }
    return ChunkWriter::PackAppends(std::move(calls));
  }
  std::string Outcome(const StatusOr<AppendResult>& r) {
    if (!r.ok()) return "refused " + AppendConflictReason(r.status()) + " " + StatusCodeName(r.status().code());
    return "accepted " + std::to_string(r->accepted) + " last_seq " + std::to_string(r->last_seq) + " started " +
           std::to_string(r->started);
  }
  // Everything the requests left in Redis for the generations of `base`, ids made relative.
  std::string State(int64_t base) {
    const KeySchema keys = KeySchema::FromConfig(config_);
    std::string out;
    for (const GenerationId& g : {GenerationId{1, 0, base + 1}, GenerationId{1, 0, base + 2}}) {
      for (const std::string& hash : {keys.ControlKey(g), keys.IngestKey(g)}) {
        auto fields = redis_->Command({"HGETALL", hash});
        EXPECT_TRUE(fields.ok());
        for (const auto& e : fields->elements) out += e.str + ",";
        out += ";";
      }
      auto owner = redis_->Command({"GET", keys.OwnerKey(g.gen)});
      out += "owner " + owner->str + ";";
    }
    return out;
  }
  // Entries in the chunk streams, all of them.
  int64_t StreamEntries() {
    const KeySchema keys = KeySchema::FromConfig(config_);
    int64_t n = 0;
    for (int i = 0; i < config_.chunk_streams; ++i) n += redis_->Command({"XLEN", keys.ChunkStream(i)})->integer;
    return n;
  }
  // The third generation of `base` has a control key that is not a hash (raises WRONGTYPE in the script).
  void BreakThird(int64_t base) {
    ASSERT_TRUE(redis_->Command({"SET", KeySchema::FromConfig(config_).ControlKey({1, 0, base + 3}), "x"}).ok());
  }
};

TEST_F(AppendManyTest, EachRequestIsAnsweredAndWrittenAsByACallOfItsOwn) {
  ChunkWriter writer(config_);
  // One call per request: the reference.
  std::vector<std::string> alone;
  BreakThird(0);
  int64_t entries = StreamEntries();
  for (auto& r : Requests(0)) {
    std::vector<PendingChunk> chunks{r.chunk};
    alone.push_back(Outcome(writer.Append(*redis_, r.gen, chunks, "test")));
  }
  const int64_t appended_alone = StreamEntries() - entries;
  // All of them in one script call.
  BreakThird(1000);
  entries = StreamEntries();
  auto requests = Requests(1000);
  std::vector<std::vector<PendingChunk>> chunks;
  auto many = Pack(writer, requests, &chunks);
  auto replies = ChunkWriter::SplitAppendsReply(redis_->Eval(scripts::IngestAppendMany(), many.keys, many.args),
                                                requests.size());
  ASSERT_EQ(replies.size(), requests.size());
  std::vector<std::string> together;
  for (size_t i = 0; i < replies.size(); ++i) together.push_back(Outcome(ChunkWriter::ParseAppendReply(replies[i], chunks[i])));

  EXPECT_EQ(together, alone);
  EXPECT_EQ(StreamEntries() - entries, appended_alone);
  EXPECT_EQ(appended_alone, 3) << "first, x and second";
  EXPECT_EQ(alone[0], "accepted 1 last_seq 0 started 1");
  EXPECT_EQ(alone[1], "refused  INTERNAL") << "a request whose script call raised: its own error only";
  EXPECT_EQ(alone[2].rfind("refused generation_owned_elsewhere", 0), 0u) << alone[2];
  EXPECT_EQ(alone[4].rfind("refused seq_conflict", 0), 0u) << alone[4];
  EXPECT_EQ(alone[6].rfind("refused scenario_conflict", 0), 0u) << alone[6];
  EXPECT_EQ(alone[7], "accepted 1 last_seq 1 started 0");
  EXPECT_EQ(State(1000), State(0));
  EXPECT_NE(State(0).find("next_seq,2,"), std::string::npos) << State(0);
}

// A call that fails as a whole (here: Redis full under noeviction) is every request's answer, and writes none.
TEST_F(AppendManyTest, ACallRefusedAsAWholeAnswersEveryRequest) {
  ChunkWriter writer(config_);
  auto requests = Requests(2000);
  std::vector<std::vector<PendingChunk>> chunks;
  auto many = Pack(writer, requests, &chunks);
  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).ok());
  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory", "1"}).ok());
  auto reply = redis_->Eval(scripts::IngestAppendMany(), many.keys, many.args);
  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory", "0"}).ok());
  auto replies = ChunkWriter::SplitAppendsReply(reply, requests.size());
  ASSERT_EQ(replies.size(), requests.size());
  for (const auto& r : replies) EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ(redis_->Command({"EXISTS", KeySchema::FromConfig(config_).ControlKey({1, 0, 2001})})->integer, 0);

  // A replica (a failover): the call's own error, READONLY, as the client's failover handling expects it.
  auto admin = RedisClient::Connect(config_.redis).value();  // redis_ backs off after READONLY
  ASSERT_TRUE(admin->Command({"REPLICAOF", "127.0.0.1", std::to_string(testing::FreePort())}).ok());
  auto readonly = redis_->Eval(scripts::IngestAppendMany(), many.keys, many.args);
  ASSERT_TRUE(admin->Command({"REPLICAOF", "NO", "ONE"}).ok());
  ASSERT_FALSE(readonly.ok());
  EXPECT_EQ(readonly.status().message().rfind("READONLY", 0), 0u) << readonly.status().ToString();
  EXPECT_EQ(admin->Command({"EXISTS", KeySchema::FromConfig(config_).ControlKey({1, 0, 2001})})->integer, 0);

  // And a reply of the wrong shape is an error for each, not a crash.
  auto odd = ChunkWriter::SplitAppendsReply(RedisValue{}, 3);
  ASSERT_EQ(odd.size(), 3u);
  EXPECT_EQ(odd[2].status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace streamfleet
