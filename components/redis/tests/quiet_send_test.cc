// RedisConfig::quiet_sends: Send() asks the server for no replies (CLIENT REPLY OFF), and the next call that
// reads a reply turns them back on in the same write. What must hold: the server really sends nothing for
// the quiet commands, every later reply is still the reply of its own command, AwaitSent still means
// "applied", and a server that refuses CLIENT REPLY gets the ordinary Send.
#include <gtest/gtest.h>

#include <string>

#include "streamfleet/redis/redis.h"
#include "streamfleet/testing/redis_server.h"
#include "support/wait.h"

namespace streamfleet {
namespace {

class QuietSendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new testing::RedisServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    admin_ = RedisClient::Connect(server_->config()).value();
    ASSERT_TRUE(admin_->Command({"FLUSHALL"}).ok());
  }
  static RedisConfig Quiet(RedisConfig c) {
    c.quiet_sends = true;
    return c;
  }
  // Bytes the server has written to all its clients (INFO's own reply included: measured the same way for
  // both modes compared).
  int64_t NetOutputBytes() {
    auto info = admin_->Command({"INFO", "stats"});
    const std::string& s = info->str;
    const std::string field = "total_net_output_bytes:";
    size_t at = s.find(field);
    return at == std::string::npos ? -1 : std::stoll(s.substr(at + field.size()));
  }
  // What the server wrote while `client` sent 2,000 INCRs with Send (one command per call, as acks go) and
  // waited for them with AwaitSent.
  int64_t OutputFor(RedisClient& client) {
    EXPECT_TRUE(client.Command({"PING"}).ok());
    const int64_t before = NetOutputBytes();
    for (int i = 0; i < 2000; ++i) EXPECT_TRUE(client.Send({{"INCR", "n"}}).ok());
    EXPECT_TRUE(client.AwaitSent().ok());
    return NetOutputBytes() - before;
  }
  static testing::RedisServer* server_;
  std::unique_ptr<RedisClient> admin_;
};
testing::RedisServer* QuietSendTest::server_ = nullptr;

TEST_F(QuietSendTest, TheServerSendsNoRepliesToQuietSends) {
  auto loud = RedisClient::Connect(server_->config()).value();
  auto quiet = RedisClient::Connect(Quiet(server_->config())).value();
  const int64_t loud_bytes = OutputFor(*loud);
  const int64_t quiet_bytes = OutputFor(*quiet);
  // 2,000 integer replies of 4-7 bytes each against none (the ON's "+OK" and the INFO replies remain).
  EXPECT_GT(loud_bytes - quiet_bytes, 2000 * 4) << "loud " << loud_bytes << " quiet " << quiet_bytes;
  EXPECT_EQ(admin_->Command({"GET", "n"})->str, "4000") << "every command applied, quiet or not";
}

TEST_F(QuietSendTest, RepliesStayInStepAndAwaitSentMeansApplied) {
  auto c = RedisClient::Connect(Quiet(server_->config())).value();
  // An error among quiet commands has no reply to read: nothing is out of step, nothing is counted.
  ASSERT_TRUE(c->Send({{"SET", "k", "abc"}, {"INCR", "k"}}).ok());
  ASSERT_TRUE(c->Send({{"SET", "j", "1"}}).ok());
  auto r = c->Command({"GET", "k"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->str, "abc") << "this command's reply, not a quiet command's";
  EXPECT_EQ(c->DeferredErrors(), 0);
  auto p = c->Pipeline({{"GET", "j"}, {"INCR", "j"}});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)[0].str, "1");
  EXPECT_EQ((*p)[1].integer, 2);
  // Quiet again after a read; AwaitSent returns once the server has applied them.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(c->Send({{"RPUSH", "l", std::to_string(i)}}).ok());
  ASSERT_TRUE(c->AwaitSent().ok());
  EXPECT_EQ(admin_->Command({"LLEN", "l"})->integer, 100) << "read on another connection, right after";
  EXPECT_TRUE(c->AwaitSent().ok()) << "nothing owed twice";
  // A blocking read after quiet commands: the ON and the read go together and the read still blocks.
  ASSERT_TRUE(c->Send({{"SET", "x", "1"}}).ok());
  auto x = c->Command({"XREAD", "BLOCK", "100", "STREAMS", "nothing", "$"}, 100);
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_TRUE(x->is_nil());
}

TEST_F(QuietSendTest, AConnectionLostWhileQuietComesBackInStep) {
  auto c = RedisClient::Lazy(Quiet(server_->config()));
  ASSERT_TRUE(c->Send({{"SET", "before", "1"}}).ok());
  ASSERT_TRUE(admin_->Command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"}).ok());
  // The first call after the kill may fail (the connection is found dead); the client then reconnects
  // with replies on, and quiet again on its next Send.
  EXPECT_TRUE(testing::WaitUntil([&] {
    auto r = c->Command({"GET", "before"});
    return r.ok() && r->str == "1";
  }));
  ASSERT_TRUE(c->Send({{"SET", "after", "2"}, {"INCR", "after"}}).ok());
  auto r = c->Command({"GET", "after"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->str, "3");
}

TEST_F(QuietSendTest, AServerThatRefusesClientReplyGetsTheOrdinarySend) {
  testing::RedisServer acl("--user default off --user bob on >builder ~* +@all -client|reply");
  RedisConfig config = Quiet(acl.config());
  config.username = "bob";
  config.password = "builder";
  auto c = RedisClient::Connect(config);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE((*c)->Send({{"SET", "k", "abc"}, {"INCR", "k"}}).ok());
  ASSERT_TRUE((*c)->AwaitSent().ok());
  EXPECT_EQ((*c)->DeferredErrors(), 1) << "replies read as without quiet_sends, the error among them counted";
  EXPECT_EQ((*c)->Command({"GET", "k"})->str, "abc");
}

}  // namespace
}  // namespace streamfleet
