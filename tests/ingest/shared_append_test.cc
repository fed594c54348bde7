// Single-chunk requests read in one event-loop turn share a script call (ingest/append_batcher.h): each is still
// checked and answered on its own. Requests of two organizations arrive together on many connections (an
// append, a retry, a seq conflict, a generation of the other organization); every answer is the one a request
// alone gets, and Redis holds exactly the accepted chunks. Real redis-server, real ingest over HTTP.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "streamfleet/redis/redis.h"
#include "streamfleet/testing/redis_server.h"
#include "support/ingest_harness.h"
#include "support/raw_http.h"

namespace streamfleet::testing {
namespace {

double CounterValue(prometheus::Registry& reg, const std::string& name) {
  for (const auto& f : reg.Collect()) {
    if (f.name == name && !f.metric.empty()) return f.metric[0].counter.value;
  }
  return -1;
}

std::string PostRequest(int64_t org, int64_t gen, const std::string& body) {
  const char* token = org == 1 ? "tokA" : "tokB";
  return "POST /v1/orgs/" + std::to_string(org) + "/generations/" + std::to_string(gen) +
         "/chunks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(SharedAppendTest, RequestsOfOneLoopTurnShareAScriptCallAndKeepTheirOwnAnswers) {
  RedisServer server;
  IngestHarness ingest(server.port(), {{"INGEST_TOKENS", "1:tokA,2:tokB"}});
  auto redis = RedisClient::Connect(server.config()).value();
  const std::string stream = KeySchema::FromConfig(ingest.config()).ChunkStream(0);
  ASSERT_EQ(ingest.Post("/v1/orgs/1/generations/500/chunks", R"({"seq": 0, "data": "a"})",
                        "application/json", {"Authorization: Bearer tokA"}).status, 202);

  constexpr int kConnections = 32;
  int64_t appended = 1;  // the chunk above
  // A fixed number of rounds, not until the first shared call: the more of them share calls, the more of the
  // mixes of organizations and outcomes within one call are seen.
  for (int round = 0; round < 10; ++round) {
    std::vector<std::unique_ptr<RawConnection>> conns;
    std::vector<int> expected;
    std::vector<std::string> requests;
    for (int i = 0; i < kConnections; ++i) {
      switch (i % 4) {
        case 0:  // a new generation of organization 1 with a seq of its own: appended, answered with that seq
          requests.push_back(PostRequest(1, 10'000 + round * 100 + i,
                                         R"({"data": "new", "seq": )" + std::to_string(round * 100 + i) + "}"));
          expected.push_back(202);
          break;
        case 1:  // organization 2 on organization 1's generation: refused, nothing written
          requests.push_back(PostRequest(2, 500, R"({"data": "intruder"})"));
          expected.push_back(409);
          break;
        case 2:  // a retry of seq 0 with the same data: accepted, not appended again
          requests.push_back(PostRequest(1, 500, R"({"seq": 0, "data": "a"})"));
          expected.push_back(202);
          break;
        default:  // seq 0 with other data: refused
          requests.push_back(PostRequest(1, 500, R"({"seq": 0, "data": "b"})"));
          expected.push_back(409);
      }
      conns.push_back(std::make_unique<RawConnection>(ingest.port()));
    }
    // Written back to back, so that the loop reads many of them in one turn.
    for (int i = 0; i < kConnections; ++i) ASSERT_TRUE(conns[i]->Send(requests[i]));
    for (int i = 0; i < kConnections; ++i) {
      std::string answer = conns[i]->ReadResponse(5000);
      ASSERT_EQ(StatusOf(answer), expected[i]) << "request " << i << " of round " << round << ": " << answer;
      auto body = nlohmann::json::parse(BodyOf(answer), nullptr, false);
      const char* reason = i % 4 == 1 ? "generation_owned_elsewhere" : i % 4 == 3 ? "seq_conflict" : "";
      EXPECT_EQ(body.value("error", ""), reason) << answer;
      if (i % 4 == 0) {
        EXPECT_EQ(body.value("last_seq", -1), round * 100 + i) << answer;
      } else if (i % 4 == 2) {
        EXPECT_EQ(body.value("last_seq", -1), 0) << answer;
      }
    }
    appended += kConnections / 4;
  }
  EXPECT_GT(CounterValue(ingest.registry(), "streamfleet_ingest_shared_append_requests_total"), 0)
      << "no two requests ever shared a script call";
  EXPECT_EQ(redis->Command({"XLEN", stream})->integer, appended) << "exactly the accepted chunks were written";
  // Organization 2 wrote nothing anywhere, and generation 500 is still organization 1's, with its one chunk.
  auto owner = redis->Command({"GET", KeySchema::FromConfig(ingest.config()).OwnerKey(500)});
  EXPECT_EQ(owner->str, "1");
  auto bytes = redis->Command({"HGET", KeySchema::FromConfig(ingest.config()).ControlKey({1, 0, 500}), "ingested_bytes"});
  EXPECT_EQ(bytes->str, "1");
}

}  // namespace
}  // namespace streamfleet::testing
