#include "streamfleet/chunks/fleet_events.h"

#include <gtest/gtest.h>

#include "buffer_on_redis.h"

namespace streamfleet {
namespace {

class FleetEventsTest : public BufferOnRedisTest {
 protected:
  // Writes n generation.started events as ingest does, with the fleet's configuration `c`; the stream's length.
  int64_t WriteStarted(const Config& c, int n) {
    const KeySchema keys = KeySchema::FromConfig(c);
    std::vector<std::vector<std::string>> cmds;
    for (int i = 0; i < n; ++i) cmds.push_back(GenerationStartedCommand(keys, GenerationId{7, 0, 1000 + i}, 1));
    auto r = redis_->Pipeline(cmds);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return redis_->Command({"XLEN", keys.EventsStream()})->integer;
  }
};

// EVENTS_MAXLEN bounds the events stream (about: MAXLEN ~ trims whole stream nodes of 100 entries), so an
// operator can keep a longer window for the webhook forwarder and the events route; the default keeps 100 000.
TEST_F(FleetEventsTest, TheEventsStreamKeepsAboutEventsMaxlen) {
  EXPECT_EQ(WriteStarted(config_, 3000), 3000) << "the default (100 000) trims nothing here";
  ASSERT_TRUE(redis_->Command({"DEL", KeySchema::FromConfig(config_).EventsStream()}).ok());

  auto small = LoadConfig(testing::MapEnv({{"REDIS_URL", server_->url()}, {"EVENTS_MAXLEN", "1000"}}), "127.0.0.1:0");
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  const int64_t len = WriteStarted(*small, 3000);
  EXPECT_GE(len, 1000);
  EXPECT_LE(len, 1100);
  auto failed = GenerationFailedCommand(KeySchema::FromConfig(*small), GenerationId{7, 0, 1}, "boom", 1);
  EXPECT_EQ(failed[3], "~");
  EXPECT_EQ(failed[4], "1000");
}

}  // namespace
}  // namespace streamfleet
