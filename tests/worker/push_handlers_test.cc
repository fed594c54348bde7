// The pure parts of push handlers (queue-worker/push_handlers.h): the signature every language's verifier
// recomputes, Retry-After, which handler a routed type gets, and TASK_ROUTES' validation. The HTTP exchanges
// themselves are tested with real handler servers (tests/push/, tests/clients/push_node_test.sh).
#include "queue-worker/push_handlers.h"

#include <gtest/gtest.h>

#include "support/map_env.h"

namespace streamfleet::worker {
namespace {

TEST(PushHandlersTest, TheSignatureIsHmacSha256OfTimestampDotBodyInHex) {
  // python3 -c 'import hmac,hashlib; print(hmac.new(b"k3y", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest())'
  EXPECT_EQ(PushSignature("k3y", "1700000000", R"({"a":1})"),
            "v1=fd5a70e965043f7df6309c2c3b5ff5a8ffa99b1f5175e9a311459e73c4634d4a");
  EXPECT_NE(PushSignature("k3y", "1700000001", R"({"a":1})"), PushSignature("k3y", "1700000000", R"({"a":1})"));
}

TEST(PushHandlersTest, RetryAfterIsSecondsOrAnHttpDate) {
  const int64_t now = 1'700'000'000'000;  // Tue, 14 Nov 2023 22:13:20 GMT
  EXPECT_EQ(RetryAfterMs("2", now), 2000);
  EXPECT_EQ(RetryAfterMs("0", now), 0);
  EXPECT_EQ(RetryAfterMs("Tue, 14 Nov 2023 22:13:30 GMT", now), 10'000);
  EXPECT_EQ(RetryAfterMs("Tue, 14 Nov 2023 22:00:00 GMT", now), 0) << "a date in the past: now";
  EXPECT_EQ(RetryAfterMs("", now), 0);
  EXPECT_EQ(RetryAfterMs("soon", now), 0);
  EXPECT_EQ(RetryAfterMs("-5", now), 0);
  // Huge values are bounded, not overflowed into an arbitrary time.
  EXPECT_EQ(RetryAfterMs("9300000000000000", now), int64_t{366} * 24 * 3600 * 1000);
  EXPECT_EQ(RetryAfterMs("9223372036854775807", now), int64_t{366} * 24 * 3600 * 1000);
}

TEST(PushHandlersTest, ExactRoutesWinThenGlobsInOrder) {
  auto config = LoadConfig(testing::MapEnv({{"TASK_ROUTES", "mail.*=http://a/1,mail.send=http://b/2,*=http://c/3"}}),
                           ":0");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  HandlerRegistry registry;
  registry.Register("noop", [](TaskContext&) { return Status::Ok(); });
  const Handler* builtin = registry.Find("noop");
  RegisterPushHandlers(registry, *config);
  ASSERT_NE(registry.Find("mail.send"), nullptr);
  ASSERT_NE(registry.Find("mail.digest"), nullptr);
  EXPECT_NE(registry.Find("mail.send"), registry.Find("mail.digest")) << "the exact route, not the glob";
  EXPECT_EQ(registry.Find("noop"), builtin) << "a type's own handler wins over a glob";
  EXPECT_NE(registry.Find("anything.else"), nullptr) << "the catch-all glob";
  EXPECT_NE(registry.Find("anything.else"), registry.Find("mail.digest"));
}

TEST(PushHandlersTest, MalformedRoutesStopTheProcessAtStart) {
  for (const char* bad : {"mail.send", "=http://a/", "mail=ftp://a/", "mail=", "a b=http://x/"}) {
    auto config = LoadConfig(testing::MapEnv({{"TASK_ROUTES", bad}}), ":0");
    EXPECT_FALSE(config.ok()) << bad;
  }
  auto ok = LoadConfig(testing::MapEnv({{"TASK_ROUTES", "a=http://x/1, b.*=https://y/2"}}), ":0");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->task_routes.size(), 2u);
  EXPECT_EQ(ok->task_routes[1].pattern, "b.*");
  EXPECT_EQ(ok->task_routes[1].url, "https://y/2");
}

}  // namespace
}  // namespace streamfleet::worker
