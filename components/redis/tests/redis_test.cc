#include "streamfleet/redis/redis.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "hanging_host_lookup.h"
#include "streamfleet/redis/async_redis.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/testing/redis_server.h"
#include "support/wait.h"

namespace streamfleet {
namespace {

class RedisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new testing::RedisServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    auto c = RedisClient::Connect(server_->config());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
    ASSERT_TRUE(client_->Command({"FLUSHALL"}).ok());
  }
  static testing::RedisServer* server_;
  std::unique_ptr<RedisClient> client_;
};
testing::RedisServer* RedisTest::server_ = nullptr;

// Stream ids as the admin API and the live events route accept them from clients.
TEST(StreamIdTest, OnlyCompleteXaddIdsAreValid) {
  for (const char* ok : {"0-0", "1733212800000-0", "12345678901234567890-12345678901234567890",
                         "18446744073709551615-18446744073709551615"}) {
    EXPECT_TRUE(ValidStreamId(ok)) << ok;
  }
  for (const char* bad : {"", "0", "1-", "-1", "1-2-3", "1 -2", "a-1", "+", "$", "123456789012345678901-0", "1-2\n",
                          "1--1", "1-+1"}) {
    EXPECT_FALSE(ValidStreamId(bad)) << bad;
  }
  // Twenty digits past UINT64_MAX: Redis refuses them as stream ids.
  for (const char* too_big : {"18446744073709551616-0", "0-18446744073709551616", "99999999999999999999-0"}) {
    EXPECT_FALSE(ValidStreamId(too_big)) << too_big;
  }
  EXPECT_LT(CompareStreamIds("9-0", "10-0"), 0);
}

TEST_F(RedisTest, CommandsAndBinarySafeValues) {
  std::string v("a\0b\xff", 4);
  ASSERT_TRUE(client_->Command({"SET", "k", v}).ok());
  auto r = client_->Command({"GET", "k"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, v);
  auto nil = client_->Command({"GET", "missing"});
  ASSERT_TRUE(nil.ok());
  EXPECT_TRUE(nil->is_nil());
}

TEST_F(RedisTest, ErrorRepliesAreTranslated) {
  ASSERT_TRUE(client_->Command({"SET", "str", "x"}).ok());
  auto r = client_->Command({"LPUSH", "str", "y"});
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);  // WRONGTYPE
  auto g = client_->Command({"XREADGROUP", "GROUP", "nogroup", "c", "STREAMS", "nostream", ">"});
  EXPECT_EQ(g.status().code(), StatusCode::kFailedPrecondition);  // NOGROUP
  EXPECT_EQ(TranslateRedisError("LOADING Redis is loading").code(), StatusCode::kUnavailable);
  // Retryable, not a limit of the request (badinput_test RedisErrorsTest has the real replies).
  EXPECT_EQ(TranslateRedisError("OOM command not allowed when used memory > 'maxmemory'.").code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(TranslateRedisError("READONLY You can't write against a read only replica.").code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(TranslateRedisError("BUSYGROUP Consumer Group name already exists").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(TranslateRedisError("NOSCRIPT No matching script").code(), StatusCode::kNotFound);
  // Redirects left over when the cluster client's bounded redirects ran out mid-failover: retry, never park.
  EXPECT_EQ(TranslateRedisError("MOVED 11497 127.0.0.1:44387").code(), StatusCode::kUnavailable);
  EXPECT_EQ(TranslateRedisError("ASK 11497 127.0.0.1:44387").code(), StatusCode::kUnavailable);
  EXPECT_EQ(TranslateRedisError("CROSSSLOT Keys in request don't hash to the same slot").code(), StatusCode::kInternal);
  EXPECT_EQ(TranslateRedisError("WRONGPASS invalid").code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(TranslateRedisError("ERR Error running script: SFLIMIT too big").code(), StatusCode::kResourceExhausted);
}

TEST_F(RedisTest, GroupCreationIsIdempotent) {
  EXPECT_TRUE(EnsureGroup(*client_, "s", "g").ok());
  EXPECT_TRUE(EnsureGroup(*client_, "s", "g").ok());
  auto groups = client_->Command({"XINFO", "GROUPS", "s"});
  ASSERT_TRUE(groups.ok());
  EXPECT_EQ(groups->elements.size(), 1u);
}

TEST_F(RedisTest, PipelineKeepsOrderAndPerCommandErrors) {
  auto r = client_->Pipeline({{"SET", "a", "1"}, {"INCR", "a"}, {"LPUSH", "a", "x"}, {"GET", "a"}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[1].integer, 2);
  EXPECT_TRUE((*r)[2].is_error());
  EXPECT_EQ((*r)[3].str, "2");
}

// Send writes at once and does not wait: another connection sees the effect while the sender has read no
// reply; the sender's next command reads the owed replies first (its own reply is its own), and an error
// reply among them is counted, not returned.
TEST_F(RedisTest, SendAppliesWithoutWaitingAndTheNextCallReadsTheOwedReplies) {
  ASSERT_TRUE(client_->Send({{"SET", "a", "1"}, {"INCR", "not-a-number-yet"}}).ok());
  ASSERT_TRUE(client_->Send({{"SET", "bad", "x"}, {"INCR", "bad"}, {"SET", "b", "2"}}).ok());
  auto other = RedisClient::Connect(server_->config()).value();
  EXPECT_TRUE(testing::WaitUntil([&] { return other->Command({"GET", "b"})->str == "2"; }))
      << "sent commands were applied without a further call on the sending connection";
  EXPECT_EQ(client_->DeferredErrors(), 0) << "no reply read yet";
  auto r = client_->Command({"GET", "a"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->str, "1") << "the reply is this command's, not an owed one";
  EXPECT_EQ(client_->DeferredErrors(), 1) << "INCR of a non-number";
  ASSERT_TRUE(client_->Send({{"INCR", "bad"}}).ok());
  ASSERT_TRUE(client_->AwaitSent().ok());
  EXPECT_EQ(client_->DeferredErrors(), 2);
  auto p = client_->Pipeline({{"GET", "b"}, {"GET", "not-a-number-yet"}});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)[0].str, "2");
  EXPECT_EQ((*p)[1].str, "1");
}

// A Send to a server that cannot be reached fails (nothing was written) and leaves the client usable.
TEST_F(RedisTest, SendToAnUnreachableServerFails) {
  RedisConfig down = server_->config();
  down.port = testing::FreePort();
  auto c = RedisClient::Lazy(down);
  EXPECT_EQ(c->Send({{"SET", "k", "v"}}).code(), StatusCode::kUnavailable);
  EXPECT_TRUE(c->AwaitSent().ok()) << "nothing owed";
}

// A connection that closes before the replies of its Sends are read leaves their fate unknown: AwaitSent says
// so once (it used to confirm them, as if the server had applied them), then confirms what follows.
TEST_F(RedisTest, AwaitSentFailsOnceWhenTheRepliesOfSendsWereLost) {
  auto c = RedisClient::Lazy(server_->config());
  auto id = c->Command({"CLIENT", "ID"});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  // A command whose reply cannot have come before the kill (it blocks until then): with a SET the reply could
  // be read before the connection went, and its fate was then known.
  ASSERT_TRUE(c->Send({{"BLPOP", "never-pushed", "0"}}).ok());
  ASSERT_TRUE(client_->Command({"CLIENT", "KILL", "ID", std::to_string(id->integer)}).ok());
  (void)c->Command({"PING"});  // reads the owed reply first, on a connection that is gone
  Status s = c->AwaitSent();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  ASSERT_TRUE(c->Send({{"SET", "kept", "1"}}).ok());
  EXPECT_TRUE(c->AwaitSent().ok()) << "said once; what was sent after it is confirmed";
  EXPECT_EQ(client_->Command({"GET", "kept"})->str, "1");
}

// gtest does not ignore SIGPIPE, so this process dies if a write to the closed socket raises it.
TEST_F(RedisTest, SendingOnAConnectionTheServerClosedIsAnErrorNotASigpipe) {
  auto c = RedisClient::Lazy(server_->config());
  ASSERT_TRUE(c->Command({"PING"}).ok());
  ASSERT_TRUE(client_->Command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"}).ok());
  int failed = 0;
  for (int i = 0; i < 5 && failed == 0; ++i) {
    // Large enough that the kernel cannot take it all before the peer's reset arrives.
    if (!c->Send({{"SET", "k", std::string(1 << 20, 'x')}}).ok() || !c->AwaitSent().ok()) ++failed;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(failed, 0) << "the closed connection was noticed";
}

TEST_F(RedisTest, EvalShaLoadsScriptOnNoscript) {
  static const LuaScript script("return tonumber(ARGV[1]) + 1");
  auto r = client_->Eval(script, {}, {"41"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->integer, 42);
  ASSERT_TRUE(client_->Command({"SCRIPT", "FLUSH"}).ok());
  auto p = client_->Pipeline({RedisClient::EvalArgv(script, {}, {"1"}), RedisClient::EvalArgv(script, {}, {"2"})});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)[0].integer, 2);
  EXPECT_EQ((*p)[1].integer, 3);
}

TEST_F(RedisTest, StreamsClaimAndTrimNeverDropUnacknowledged) {
  ASSERT_TRUE(EnsureGroup(*client_, "s", "g").ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(client_->Command({"XADD", "s", "*", "i", std::to_string(i)}).ok());
  auto read = client_->Command({"XREADGROUP", "GROUP", "g", "dead", "COUNT", "4", "STREAMS", "s", ">"});
  ASSERT_TRUE(read.ok());
  auto entries = ParseStreamReply(*read);
  ASSERT_EQ(entries.size(), 4u);
  // Ack the 2nd..4th: the 1st stays pending on the dead consumer; 6 were never delivered.
  ASSERT_TRUE(client_->Command({"XACK", "s", "g", entries[1].id, entries[2].id, entries[3].id}).ok());
  auto trimmed = TrimAcknowledged(*client_, "s");
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 0) << "the oldest entry is pending: nothing below it may go";
  // Past the 10 ms minimum idle time on purpose (a minimum: load only makes the entry idler).
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  auto claimed = ClaimIdle(*client_, "s", "g", "alive", 10, 10);
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].entry.id, entries[0].id);
  EXPECT_EQ((*claimed)[0].times_delivered, 2);
  ASSERT_TRUE(client_->Command({"XACK", "s", "g", entries[0].id}).ok());
  trimmed = TrimAcknowledged(*client_, "s");
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 3) << "entries below the last delivered id are acknowledged";
  auto len = client_->Command({"XLEN", "s"});
  EXPECT_EQ(len->integer, 7) << "the undelivered 6 and the last delivered stay";
  auto stats = GetStreamStats(*client_, "s");
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->groups.size(), 1u);
  EXPECT_EQ(stats->groups[0].lag, 6);
  EXPECT_EQ(stats->groups[0].pending, 0);
}

// With a kept window, acknowledged entries the server added within keep_ms (by its clock: the ids of
// XADD *) stay for readers outside the group; older ones go.
TEST_F(RedisTest, TrimKeepsTheLastMillisecondsOfAcknowledgedEntries) {
  ASSERT_TRUE(EnsureGroup(*client_, "w", "g").ok());
  auto time = client_->Command({"TIME"});
  ASSERT_TRUE(time.ok());
  const int64_t now_ms = std::stoll(time->elements[0].str) * 1000;
  for (int64_t ago : {10000, 9000}) {
    ASSERT_TRUE(client_->Command({"XADD", "w", std::to_string(now_ms - ago) + "-0", "i", "old"}).ok());
  }
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(client_->Command({"XADD", "w", "*", "i", "new"}).ok());
  auto read = client_->Command({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "w", ">"});
  ASSERT_TRUE(read.ok());
  for (const auto& e : ParseStreamReply(*read)) ASSERT_TRUE(client_->Command({"XACK", "w", "g", e.id}).ok());
  // Everything is acknowledged; a 5 s window keeps the two added just now.
  auto trimmed = TrimAcknowledged(*client_, "w", 5000);
  ASSERT_TRUE(trimmed.ok()) << trimmed.status().ToString();
  EXPECT_EQ(*trimmed, 2);
  auto left = client_->Command({"XRANGE", "w", "-", "+"});
  ASSERT_TRUE(left.ok());
  auto entries = ParseEntries("w", *left);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(*entries[0].Field("i"), "new");
  // Without one, everything below the last delivered entry goes.
  trimmed = TrimAcknowledged(*client_, "w");
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 1);
}

TEST_F(RedisTest, RemoveDeadConsumersKeepsThoseHoldingEntriesAndAnswersZeroForNoStreamOrGroup) {
  // Nothing there yet (a queue nobody enqueued to, a group not created yet) is nothing to remove, not an error.
  auto none = RemoveDeadConsumers(*client_, "absent", "g", 0);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, 0);
  ASSERT_TRUE(client_->Command({"XADD", "d", "*", "i", "1"}).ok());
  none = RemoveDeadConsumers(*client_, "d", "no-group", 0);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, 0);

  ASSERT_TRUE(client_->Command({"XGROUP", "CREATE", "d", "g", "0"}).ok());
  ASSERT_TRUE(client_->Command({"XREADGROUP", "GROUP", "g", "holder", "COUNT", "1", "STREAMS", "d", ">"}).ok());
  ASSERT_TRUE(client_->Command({"XGROUP", "CREATECONSUMER", "d", "g", "idle"}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto removed = RemoveDeadConsumers(*client_, "d", "g", 5);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 1);  // "idle"; "holder" still holds its entry for a takeover
  auto consumers = client_->Command({"XINFO", "CONSUMERS", "d", "g"});
  ASSERT_TRUE(consumers.ok());
  ASSERT_EQ(consumers->elements.size(), 1u);

  // Another failure is still one.
  ASSERT_TRUE(client_->Command({"SET", "not-a-stream", "x"}).ok());
  EXPECT_FALSE(RemoveDeadConsumers(*client_, "not-a-stream", "g", 0).ok());
}

// RemoveDeadConsumers decides from XINFO, then deletes: a consumer that read an entry in between (a quiet queue's
// slot waking up) must keep it, or the entry is in no pending list and is never delivered again.
TEST_F(RedisTest, AConsumerIsDeletedOnlyIfItHoldsNothingAtThatMoment) {
  ASSERT_TRUE(client_->Command({"XADD", "race", "*", "i", "1"}).ok());
  ASSERT_TRUE(client_->Command({"XGROUP", "CREATE", "race", "g", "0"}).ok());
  ASSERT_TRUE(client_->Command({"XGROUP", "CREATECONSUMER", "race", "g", "slot"}).ok());
  // Seen idle with nothing pending; then it reads before the delete.
  auto read = client_->Command({"XREADGROUP", "GROUP", "g", "slot", "COUNT", "1", "STREAMS", "race", ">"});
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  auto kept = DeleteConsumerWithoutPending(*client_, "race", "g", "slot");
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_FALSE(*kept);
  auto pending = client_->Command({"XPENDING", "race", "g"});
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->elements[0].integer, 1) << "the entry left the pending list";
  const std::string id = read->elements[0].elements[1].elements[0].elements[0].str;
  ASSERT_TRUE(client_->Command({"XACK", "race", "g", id}).ok());
  auto deleted = DeleteConsumerWithoutPending(*client_, "race", "g", "slot");
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_TRUE(*deleted);
  auto consumers = client_->Command({"XINFO", "CONSUMERS", "race", "g"});
  ASSERT_TRUE(consumers.ok());
  EXPECT_TRUE(consumers->elements.empty());
}

TEST_F(RedisTest, RefusedConnectionIsUnavailable) {
  RedisConfig c = server_->config();
  c.port = testing::FreePort();
  auto r = RedisClient::Connect(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("refused"), std::string::npos) << r.status().message();
}

// A server at maxclients accepts a connection, writes an error and closes it: that is an outage (503 in ingest,
// a retry in a worker), not an internal error.
TEST_F(RedisTest, AServerAtMaxClientsIsUnavailable) {
  testing::RedisServer full("--maxclients 1");
  auto holder = RedisClient::Connect(full.config());
  ASSERT_TRUE(holder.ok());
  ASSERT_TRUE((*holder)->Command({"PING"}).ok());
  auto second = RedisClient::Lazy(full.config());
  auto r = second->Command({"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_FALSE(second->connected()) << "a connection the server closed is not kept (a pool would reuse it)";
}

// The server at maxclients accepts each new connection before refusing it: the client and a pool back off as
// after a failed connect (they opened a connection per call, as fast as the calls came), and recover once
// the server has room.
TEST_F(RedisTest, ClientsRefusedAtMaxClientsBackOffInsteadOfReconnectingPerCall) {
  testing::RedisServer full("--maxclients 1");
  auto holder = RedisClient::Connect(full.config());
  ASSERT_TRUE(holder.ok());
  auto refused = [&] { return testing::ServerStat(**holder, "rejected_connections"); };  // what maxclients turned away
  const int64_t before = refused();
  auto client = RedisClient::Lazy(full.config());
  RedisConfig quiet_config = full.config();  // a worker's acking connection: CLIENT REPLY asked at connect
  quiet_config.quiet_sends = true;
  auto quiet = RedisClient::Lazy(quiet_config);
  RedisPool pool(full.config());
  // For a second: a connection per call would be hundreds; backing off (25-50 ms, doubling), at most 6 each.
  testing::CallFor(1000, [&] {
    EXPECT_EQ(client->Command({"PING"}).status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(client->Pipeline({{"PING"}, {"PING"}, {"PING"}}).status().code(), StatusCode::kUnavailable);
    EXPECT_FALSE(quiet->Command({"PING"}).ok());
    auto lease = pool.Acquire();
    if (lease.ok()) {
      EXPECT_FALSE((*lease)->Command({"PING"}).ok());
    }
  });
  EXPECT_LE(refused() - before, 20) << "a connection per call to a full server";
  // Between its attempts the pool answers at once, naming the cause (an attempt may fall due meanwhile).
  std::string pool_answer;
  EXPECT_TRUE(testing::WaitUntil([&] {
    auto lease = pool.Acquire();
    pool_answer = lease.ok() ? "connected" : lease.status().ToString();
    return pool_answer.find("maxclients") != std::string::npos;
  })) << pool_answer;

  holder->reset();  // room again
  EXPECT_TRUE(testing::WaitUntil([&] { return client->Command({"PING"}).ok(); })) << "the client recovers";
  client.reset();  // the one connection the server allows, for the quiet client, then the pool
  EXPECT_TRUE(testing::WaitUntil([&] { return quiet->Command({"PING"}).ok(); })) << "the quiet client recovers";
  quiet.reset();
  EXPECT_TRUE(testing::WaitUntil([&] {
    auto lease = pool.Acquire();
    return lease.ok() && (*lease)->Command({"PING"}).ok();
  })) << "the pool recovers";
}

// Without Sentinel, the server turned into a replica under its clients (a managed Redis fails over by moving
// its DNS name, and connections to the old primary stay open to what is a replica now): on READONLY each
// client drops its connection, so the next call connects again (looking the name up again), and writes
// sent without waiting are not confirmed (a replica drops them without a word while replies are off).
TEST(ReadonlyTest, ClientsLeaveAServerThatBecameAReplica) {
  testing::RedisServer primary;
  testing::RedisServer other;
  auto client = RedisClient::Connect(primary.config());
  RedisConfig quiet_config = primary.config();
  quiet_config.quiet_sends = true;
  auto quiet = RedisClient::Connect(quiet_config);
  AsyncRedis async(primary.config());
  auto admin = RedisClient::Connect(primary.config());
  ASSERT_TRUE(client.ok() && quiet.ok() && admin.ok());
  ASSERT_TRUE((*client)->Command({"SET", "a", "1"}).ok());
  ASSERT_TRUE((*quiet)->Send({{"SET", "q", "1"}}).ok());
  ASSERT_TRUE((*quiet)->AwaitSent().ok());
  ASSERT_TRUE(async.Command({"SET", "async", "1"}).ok());
  const int64_t async_connects = async.connects();

  ASSERT_TRUE((*admin)->Command({"REPLICAOF", "127.0.0.1", std::to_string(other.port())}).ok());
  auto refused = (*client)->Command({"SET", "b", "2"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE((*client)->connected()) << "the connection to the replica was kept";
  ASSERT_TRUE((*quiet)->Send({{"SET", "q", "2"}}).ok());
  EXPECT_FALSE((*quiet)->AwaitSent().ok()) << "a write the replica dropped was confirmed";
  EXPECT_FALSE(async.Command({"SET", "async", "2"}).ok());
  // Refused after each connect, the clients back off rather than reconnect per call, and the backoff grows
  // (25-50 ms first, doubling): over 1.2 s of calls, a fixed first step would reconnect some 24+ times.
  auto accepted = [&] { return testing::ServerStat(**admin, "total_connections_received"); };
  int64_t before = accepted();
  testing::CallFor(1200, [&] { EXPECT_FALSE((*client)->Command({"SET", "b", "x"}).ok()); });
  EXPECT_LE(accepted() - before, 8) << "the blocking client reconnects to a replica without a growing backoff";
  before = accepted();
  testing::CallFor(1200, [&] { EXPECT_FALSE(async.Command({"SET", "async", "x"}).ok()); });
  EXPECT_LE(accepted() - before, 8) << "the async client reconnects to a replica without a growing backoff";

  ASSERT_TRUE((*admin)->Command({"REPLICAOF", "NO", "ONE"}).ok());  // (the name points at a primary again)
  // After the backoff a refusal starts (a name may point at the old primary for a while): not a
  // reconnect per call.
  EXPECT_TRUE(testing::WaitUntil([&] { return (*client)->Command({"SET", "b", "3"}).ok(); }));
  EXPECT_TRUE(testing::WaitUntil([&] { return (*quiet)->Command({"SET", "q", "3"}).ok(); }));
  EXPECT_TRUE(testing::WaitUntil([&] { return async.Command({"SET", "async", "3"}).ok(); }));
  EXPECT_GT(async.connects(), async_connects) << "the async client stayed on its connection to the replica";
}

// A host name whose lookup hangs (a pod's DNS down: getaddrinfo waits out its resolver's attempts times the
// search domains) fails the connect within the connect timeout, instead of stalling the caller for as long
// as the lookup takes; a name that resolves is connected to. The lookup itself is the one stand-in here (no
// DNS server can be made to hang on this machine); the connects are real.
TEST(HostLookupTest, AHangingLookupFailsTheConnectWithinTheConnectTimeout) {
  testing::RedisServer server;
  testing::HangingHostLookup hanging_lookup;
  RedisConfig hanging = server.config();
  hanging.host = testing::HangingHostLookup::kHost;
  hanging.connect_timeout_ms = 300;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = RedisClient::Connect(hanging);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("longer than the connect timeout"), std::string::npos) << r.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(3)) << "the connect waited for the lookup";

  RedisConfig named = server.config();
  named.host = "redis.test";
  auto ok = RedisClient::Connect(named);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE((*ok)->Command({"PING"}).ok());
}

// A pool whose connect failed fails fast until its backoff passes, instead of every request trying (and,
// behind an address that drops packets, waiting out the connect timeout); it connects again after.
TEST_F(RedisTest, APoolBacksOffAfterAFailedConnectAndRecovers) {
  testing::RedisServer own;
  RedisPool pool(own.config());
  {
    auto first = pool.Acquire();
    ASSERT_TRUE(first.ok()) << first.status().ToString();
  }
  own.Kill();
  {
    auto lease = pool.Acquire();  // the pooled client: its command fails and it is not pooled again
    ASSERT_TRUE(lease.ok());
    EXPECT_FALSE((*lease)->Command({"PING"}).ok());
  }
  auto refused = pool.Acquire();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("refused"), std::string::npos) << refused.status().ToString();
  // The first backoff is 25-50 ms: a thread paused longer than that (a loaded machine, a sanitizer) tries to
  // connect again and is refused again, and the backoff doubles; so ask a few times.
  Status backing_off;
  for (int attempt = 0; attempt < 6; ++attempt) {
    auto lease = pool.Acquire();
    ASSERT_FALSE(lease.ok());
    backing_off = lease.status();
    if (backing_off.message().find("backing off") != std::string::npos) break;
  }
  EXPECT_NE(backing_off.message().find("backing off"), std::string::npos) << backing_off.ToString();
  own.Start();
  EXPECT_TRUE(testing::WaitUntil([&] { return pool.Acquire().ok(); }));
}

TEST_F(RedisTest, ReconnectsAfterServerRestartWithoutLosingOrRepeatingCalls) {
  ASSERT_TRUE(client_->Command({"SET", "before", "1"}).ok());
  server_->Kill();
  auto during = client_->Command({"INCR", "counter"});
  EXPECT_FALSE(during.ok());
  EXPECT_TRUE(during.status().retryable()) << during.status().ToString();
  server_->Start();
  // The client reconnects by itself (after its backoff); each call runs exactly once.
  StatusOr<RedisValue> after = Status::Unavailable("not yet");
  testing::WaitUntil([&] {
    after = client_->Command({"INCR", "counter"});
    return after.ok();
  });
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->integer, 1) << "the failed INCR must not have been applied, the retried one once";
}

TEST_F(RedisTest, AuthIsSentWhenConfigured) {
  testing::RedisServer secured("--requirepass hunter2");
  RedisConfig c = secured.config();
  auto no = RedisClient::Connect(c);
  ASSERT_TRUE(no.ok());  // connecting works, commands do not
  EXPECT_EQ((*no)->Command({"PING"}).status().code(), StatusCode::kUnauthenticated);
  c.password = "hunter2";
  auto yes = RedisClient::Connect(c);
  ASSERT_TRUE(yes.ok()) << yes.status().ToString();
  EXPECT_TRUE((*yes)->Command({"PING"}).ok());
  c.password = "wrong";
  auto wrong = RedisClient::Connect(c);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated);
}

TEST_F(RedisTest, AclUserIsSentAndForbiddenCommandsAreTranslated) {
  testing::RedisServer acl("--user default off --user alice on >wonderland ~allowed:* +@all -flushall");
  RedisConfig c = acl.config();
  c.username = "alice";
  c.password = "wonderland";
  auto sync = RedisClient::Connect(c);
  ASSERT_TRUE(sync.ok()) << sync.status().ToString();
  EXPECT_TRUE((*sync)->Command({"SET", "allowed:x", "1"}).ok());
  EXPECT_EQ((*sync)->Command({"SET", "other:x", "1"}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*sync)->Command({"FLUSHALL"}).status().code(), StatusCode::kPermissionDenied);
  AsyncRedis async(c);
  EXPECT_EQ(async.Command({"GET", "allowed:x"})->str, "1");
  EXPECT_EQ(async.Command({"GET", "other:x"}).status().code(), StatusCode::kPermissionDenied);
  c.password = "wrong";
  EXPECT_EQ(RedisClient::Connect(c).status().code(), StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace streamfleet
