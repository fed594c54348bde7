// The multi-tier cache against a real redis-server and temp directories.
#include "streamfleet/cache/cache.h"
#include "streamfleet/cache/generation_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "streamfleet/base/compression.h"
#include "streamfleet/testing/redis_server.h"
#include "support/wait.h"
#include "support/redis_suite.h"

namespace streamfleet {
namespace {

namespace fs = std::filesystem;

double CounterValue(prometheus::Registry& r, const std::string& name, const std::map<std::string, std::string>& labels) {
  double sum = 0;
  for (const auto& f : r.Collect()) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const auto& l : m.label) found = found || (l.name == k && l.value == v);
        match = match && found;
      }
      if (match) sum += m.counter.value;
    }
  }
  return sum;
}

class CacheTest : public testing::RedisSuite<> {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
    dir_ = testing::TempPath("sf-cache");
  }
  void TearDown() override { fs::remove_all(dir_); }

  CacheOptions Options() {
    CacheOptions o;
    o.prefix = "ir_cache";
    o.redis_ttl_s = 60;
    o.fs_ttl_s = 60;
    o.fs_dir = dir_;
    o.degraded_retry_ms = 50;
    return o;
  }
  std::unique_ptr<Cache> Make(CacheOptions o, Clock* clock = nullptr, RedisConfig rc = {}) {
    if (rc.port == 6379) rc = server_->config();
    return std::make_unique<Cache>(rc, o, &registry_, clock);
  }
  // A compute that counts its calls.
  ComputeFn Origin(const std::string& value) {
    return [this, value]() -> StatusOr<std::string> {
      ++computed_;
      return value;
    };
  }
  bool RedisHas(const std::string& key) { return redis_->Command({"EXISTS", key})->integer == 1; }
  std::string FilePath(const std::string& key, const std::string& root = "") {
    return (root.empty() ? dir_ : root) + "/ir_cache/" + key.substr(std::string("ir_cache:").size()) + ".json";
  }
  double Requests(const std::string& tier, const std::string& result) {
    return CounterValue(registry_, "streamfleet_cache_requests_total",
                        {{"cache", "ir_cache"}, {"tier", tier}, {"result", result}});
  }

  std::string dir_;
  prometheus::Registry registry_;
  std::atomic<int> computed_{0};
};

TEST_F(CacheTest, KeyIsPrefixNameAndContentHash8) {
  auto c = Make(Options());
  EXPECT_EQ(Cache::Hash8("abc"), "ba7816bf");  // SHA-256("abc") = ba7816bf8f01cfea...
  EXPECT_EQ(*c->Key("generation", "abc"), "ir_cache:generation_ba7816bf");
  EXPECT_EQ(c->Key("bad name", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Key("a:b", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Key("", "x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CacheTest, EveryTierTransitionAndItsCounters) {
  auto c = Make(Options());
  std::string key = *c->Key("spec", "content-1");
  auto r = c->GetOrCompute("spec", "content-1", Origin("v1"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->value, "v1");
  EXPECT_EQ(r->tier, CacheTier::kOrigin);
  EXPECT_EQ(computed_, 1);
  EXPECT_TRUE(RedisHas(key));
  int64_t pttl = redis_->Command({"PTTL", key})->integer;
  EXPECT_GT(pttl, 55000);
  EXPECT_LE(pttl, 60000);
  EXPECT_TRUE(fs::exists(FilePath(key)));
  EXPECT_FALSE(RedisHas(key + ":lock")) << "the lock is released after the store";

  r = c->GetOrCompute("spec", "content-1", Origin("never"));
  EXPECT_EQ(r->tier, CacheTier::kRedis);
  EXPECT_EQ(r->value, "v1");

  ASSERT_TRUE(redis_->Command({"DEL", key}).ok());
  r = c->GetOrCompute("spec", "content-1", Origin("never"));
  EXPECT_EQ(r->tier, CacheTier::kFilesystem);
  EXPECT_EQ(r->value, "v1");
  EXPECT_TRUE(RedisHas(key)) << "a filesystem hit warms Redis";
  EXPECT_GT(redis_->Command({"PTTL", key})->integer, 0) << "warmed with the entry's remaining TTL";

  r = c->GetOrCompute("spec", "content-1", Origin("never"));
  EXPECT_EQ(r->tier, CacheTier::kRedis);
  EXPECT_EQ(computed_, 1);

  EXPECT_EQ(Requests("redis", "hit"), 2);
  EXPECT_EQ(Requests("redis", "miss"), 2);
  EXPECT_EQ(Requests("filesystem", "hit"), 1);
  EXPECT_EQ(Requests("filesystem", "miss"), 1);
  EXPECT_EQ(Requests("origin", "hit"), 1);

  // A different content is a different key.
  r = c->GetOrCompute("spec", "content-2", Origin("v2"));
  EXPECT_EQ(r->tier, CacheTier::kOrigin);
  EXPECT_EQ(r->value, "v2");
}

TEST_F(CacheTest, RedisTtlExpires) {
  CacheOptions o = Options();
  o.redis_ttl_s = 1;
  o.fs_dir = "";  // Redis tier only
  auto c = Make(o);
  ASSERT_EQ(c->GetOrCompute("spec", "x", Origin("v"))->tier, CacheTier::kOrigin);
  EXPECT_EQ(c->GetOrCompute("spec", "x", Origin("v"))->tier, CacheTier::kRedis);
  // Redis expires the entry (1 s TTL): wait for that rather than for a time enough on a quiet machine.
  ASSERT_TRUE(testing::WaitUntil([&] { return redis_->Command({"EXISTS", *c->Key("spec", "x")})->integer == 0; }))
      << "the Redis TTL never expired the entry";
  EXPECT_EQ(c->GetOrCompute("spec", "x", Origin("v"))->tier, CacheTier::kOrigin);
  EXPECT_EQ(computed_, 2);
}

// A value above kMaxRedisValueBytes (a generation's whole answer) is served but not written to Redis: the
// write held it twice more in the process and blocked Redis while it copied it.
TEST_F(CacheTest, ValuesAboveTheRedisLimitAreServedButNotStoredInRedis) {
  CacheOptions o = Options();
  o.fs_dir = "";  // Redis tier only
  auto c = Make(o);
  const std::string big(kMaxRedisValueBytes + 1, 'x');
  auto first = c->GetOrCompute("spec", "big", Origin(big));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->value.size(), big.size());
  EXPECT_EQ(redis_->Command({"EXISTS", *c->Key("spec", "big")})->integer, 0);
  EXPECT_EQ(c->GetOrCompute("spec", "big", Origin(big))->tier, CacheTier::kOrigin);
  const std::string limit(kMaxRedisValueBytes, 'y');
  ASSERT_TRUE(c->GetOrCompute("spec", "limit", Origin(limit)).ok());
  EXPECT_EQ(c->GetOrCompute("spec", "limit", Origin(limit))->tier, CacheTier::kRedis) << "at the limit: stored";

  // With the filesystem tier on: kept there, and its hits do not warm Redis with it either.
  auto both = Make(Options());
  ASSERT_EQ(both->GetOrCompute("spec", "big2", Origin(big))->tier, CacheTier::kOrigin);
  EXPECT_EQ(both->GetOrCompute("spec", "big2", Origin(big))->tier, CacheTier::kFilesystem);
  EXPECT_EQ(both->GetOrCompute("spec", "big2", Origin(big))->tier, CacheTier::kFilesystem);
  EXPECT_EQ(redis_->Command({"EXISTS", *both->Key("spec", "big2")})->integer, 0);
}

// The GET's value with an answer above kSpliceResponseMinBytes: the stored text is put in as it is (checked,
// not built: its DOM cost several times its size), and the value is the same JSON as the built one.
TEST(GenerationCacheValueTest, ALargeAnswerIsPutInAsStoredAndIsTheSameJson) {
  std::string items;
  while (items.size() <= kSpliceResponseMinBytes) items += R"({"k": 1, "t": "lorem ipsum"}, )";
  GenerationRow row;
  row.id = 4242;
  row.organization_id = 13;
  row.llm_response = "{\"items\": [" + items + "{}]}";
  row.metadata = R"({"copy": {"llm_response": null, "generation_id": 1}})";
  row.chunk_count = 3;
  row.compacted_at = "2026-12-07T08:00:00.000Z";
  const std::string value = GenerationCacheValue(row);
  EXPECT_NE(value.find(*row.llm_response), std::string::npos) << "as stored";
  auto parsed = nlohmann::json::parse(value);
  EXPECT_EQ(parsed["llm_response"], nlohmann::json::parse(*row.llm_response));
  EXPECT_EQ(parsed["metadata"], nlohmann::json::parse(row.metadata));
  EXPECT_EQ(parsed["generation_id"], 4242);
  EXPECT_EQ(parsed["chunk_count"], 3);
  EXPECT_TRUE(GenerationCacheValueIs(value, 13, 4242));
  // A leading byte order mark (SQLite keeps what it was given): built and dumped, so the answer stays JSON.
  const std::string with_bom = "\xEF\xBB\xBF" + *row.llm_response;
  row.llm_response = with_bom;
  EXPECT_EQ(nlohmann::json::parse(GenerationCacheValue(row))["llm_response"], parsed["llm_response"]);
  // Not JSON (a row altered outside the fleet): null, as for a small one.
  row.llm_response = "{\"items\": [" + items;
  EXPECT_TRUE(nlohmann::json::parse(GenerationCacheValue(row))["llm_response"].is_null());
}

TEST_F(CacheTest, FilesystemTtlExpiresAndTheStaleValueCoversAnOriginFailure) {
  ManualClock clock(1'900'000'000'000);
  CacheOptions o = Options();
  o.redis_ttl_s = 0;  // filesystem tier only
  auto c = Make(o, &clock);
  ASSERT_EQ(c->GetOrCompute("spec", "x", Origin("v1"))->tier, CacheTier::kOrigin);
  EXPECT_EQ(c->GetOrCompute("spec", "x", Origin("v1"))->tier, CacheTier::kFilesystem);
  clock.Advance(61'000);
  auto r = c->GetOrCompute("spec", "x", Origin("v2"));
  EXPECT_EQ(r->tier, CacheTier::kOrigin);
  EXPECT_EQ(r->value, "v2");
  clock.Advance(61'000);
  r = c->GetOrCompute("spec", "x", [] { return StatusOr<std::string>(Status::Unavailable("origin down")); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tier, CacheTier::kStale);
  EXPECT_EQ(r->value, "v2");
  EXPECT_EQ(Requests("filesystem", "stale"), 1);
}

TEST_F(CacheTest, TtlZeroDisablesBothTiers) {
  CacheOptions o = Options();
  o.redis_ttl_s = 0;
  o.fs_ttl_s = 0;
  auto c = Make(o);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c->GetOrCompute("spec", "x", Origin("v"))->tier, CacheTier::kOrigin);
  EXPECT_EQ(computed_, 3);
  EXPECT_EQ(redis_->Command({"DBSIZE"})->integer, 0);
  EXPECT_FALSE(fs::exists(dir_ + "/ir_cache"));
}

TEST_F(CacheTest, ForceRefreshBypassesBothTiersAndStoresTheNewValue) {
  auto c = Make(Options());
  ASSERT_EQ(c->GetOrCompute("spec", "x", Origin("v1"))->value, "v1");
  auto r = c->GetOrCompute("spec", "x", Origin("v2"), GetOptions{.force_refresh = true});
  EXPECT_EQ(r->tier, CacheTier::kOrigin);
  EXPECT_EQ(r->value, "v2");
  EXPECT_EQ(c->GetOrCompute("spec", "x", Origin("never"))->value, "v2");
  ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
  EXPECT_EQ(c->GetOrCompute("spec", "x", Origin("never"))->value, "v2") << "the filesystem tier was refreshed too";
}

// A forced refresh whose value grew past kMaxRedisValueBytes is not written to Redis; the older value there
// was left, and served until its TTL.
TEST_F(CacheTest, AForcedRefreshTooLargeForRedisDropsTheOlderValueThere) {
  CacheOptions o = Options();
  o.fs_dir = "";  // Redis and the origin only
  auto c = Make(o);
  ASSERT_EQ(c->GetOrCompute("spec", "x", Origin("small"))->value, "small");
  const std::string big(kMaxRedisValueBytes + 1, 'b');
  auto r = c->GetOrCompute("spec", "x", Origin(big), GetOptions{.force_refresh = true});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(RedisHas(*c->Key("spec", "x")));
  auto next = c->GetOrCompute("spec", "x", Origin(big));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->tier, CacheTier::kOrigin);
  EXPECT_EQ(next->value.size(), big.size()) << "the older value was served";
}

TEST_F(CacheTest, WarmsRedisBackUpAfterAFlush) {
  auto c = Make(Options());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c->GetOrCompute("spec", std::to_string(i), Origin("v" + std::to_string(i))).ok());
  ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
  for (int i = 0; i < 5; ++i) {
    auto r = c->GetOrCompute("spec", std::to_string(i), Origin("never"));
    EXPECT_EQ(r->tier, CacheTier::kFilesystem);
    EXPECT_EQ(r->value, "v" + std::to_string(i));
  }
  EXPECT_EQ(redis_->Command({"DBSIZE"})->integer, 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c->GetOrCompute("spec", std::to_string(i), Origin("never"))->tier, CacheTier::kRedis);
  EXPECT_EQ(computed_, 5);
}

TEST_F(CacheTest, FiftyConcurrentCallersOnAColdKeyComputeOnce) {
  auto c = Make(Options());
  std::atomic<int> calls{0};
  ComputeFn slow = [&]() -> StatusOr<std::string> {
    ++calls;
    // A slow origin on purpose: the other callers arrive while it computes. (Callers a loaded machine starts
    // only after it finished get the cached value; the assertions hold either way.)
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return std::string("expensive");
  };
  std::vector<std::thread> threads;
  std::vector<std::string> got(50);
  std::vector<CacheTier> tiers(50);
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      auto r = c->GetOrCompute("spec", "cold", slow);
      if (r.ok()) {
        got[i] = r->value;
        tiers[i] = r->tier;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  int origin = 0;
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(got[i], "expensive") << i;
    origin += tiers[i] == CacheTier::kOrigin;
  }
  EXPECT_EQ(origin, 1);
}

TEST_F(CacheTest, RedisKilledFilesystemAndOriginKeepServing) {
  testing::RedisServer own;
  auto c = Make(Options(), nullptr, own.config());
  ASSERT_EQ(c->GetOrCompute("spec", "a", Origin("va"))->tier, CacheTier::kOrigin);
  own.Kill();
  auto r = c->GetOrCompute("spec", "a", Origin("never"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tier, CacheTier::kFilesystem);
  EXPECT_EQ(r->value, "va");
  EXPECT_TRUE(c->degraded());
  r = c->GetOrCompute("spec", "b", Origin("vb"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tier, CacheTier::kOrigin);
  EXPECT_EQ(c->GetOrCompute("spec", "b", Origin("never"))->tier, CacheTier::kFilesystem);
  EXPECT_EQ(CounterValue(registry_, "streamfleet_cache_degraded_requests_total", {{"cache", "ir_cache"}}), 3);
  EXPECT_GE(Requests("redis", "error"), 3);
  EXPECT_EQ(c->InvalidateKey(*c->Key("spec", "a")).status().code(), StatusCode::kUnavailable);

  own.Start();
  // Past degraded_retry_ms (50) a call tries Redis again, once the pool's connect backoff (grown by the
  // calls during the outage: more of them on a slow machine) has passed too.
  EXPECT_TRUE(testing::WaitUntil([&] {
    r = c->GetOrCompute("spec", "b", Origin("never"));
    EXPECT_EQ(r->tier, CacheTier::kFilesystem);
    return !c->degraded();
  }));
  auto rc = RedisClient::Connect(own.config()).value();
  EXPECT_EQ(rc->Command({"EXISTS", *c->Key("spec", "b")})->integer, 1) << "warmed after the restart";
}

// While Redis loads its dataset after a restart it answers -LOADING (a cluster: -CLUSTERDOWN). Those error
// replies were read as invalidation markers of 0, so every file written after an invalidation (ver >= 1)
// was deleted as invalidated: the filesystem tier, there to outlive a Redis restart, was wiped by one.
// An error reply is Redis not answering: the file is served, degraded, as when Redis is down.
TEST_F(CacheTest, AnErrorReplyForTheMarkersIsAnOutageNotMarkersOfZero) {
  auto c = Make(Options());
  std::string key = *c->Key("spec", "a");
  ASSERT_TRUE(c->Invalidate("spec", "a").ok());  // ver 1
  ASSERT_EQ(c->GetOrCompute("spec", "a", Origin("va"))->tier, CacheTier::kOrigin);
  ASSERT_TRUE(fs::exists(FilePath(key)));
  // The marker answers an error (a key of another type: WRONGTYPE, as LOADING would), and the value is gone.
  ASSERT_TRUE(redis_->Command({"DEL", Cache::VerKey(key)}).ok());
  ASSERT_TRUE(redis_->Command({"DEL", key}).ok());
  ASSERT_TRUE(redis_->Command({"HSET", Cache::VerKey(key), "x", "1"}).ok());
  auto r = c->GetOrCompute("spec", "a", Origin("never"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tier, CacheTier::kFilesystem);
  EXPECT_EQ(r->value, "va");
  EXPECT_EQ(computed_, 1);
  EXPECT_TRUE(fs::exists(FilePath(key))) << "the file was deleted as invalidated";
  EXPECT_TRUE(c->degraded());
  ASSERT_TRUE(redis_->Command({"DEL", Cache::VerKey(key)}).ok());
}

// Cache-aside race: host b reads the markers and computes; meanwhile host a invalidates the key (a
// re-finalization committed). Host b's value is from before it, and written after it, was served from Redis
// for up to IR_CACHE_TTL (7 days). Host b reads the markers again with its write and takes the value back.
TEST_F(CacheTest, AValueComputedBeforeAnInvalidationIsNotLeftInRedis) {
  auto host_a = Make(Options());
  CacheOptions ob = Options();
  ob.fs_dir = dir_ + "/host-b";
  auto host_b = Make(ob);
  auto r = host_b->GetOrCompute("generation", "12:59", [&]() -> StatusOr<std::string> {
    EXPECT_TRUE(host_a->Invalidate("generation", "12:59").ok());  // between b's marker read and its write
    return std::string("before");
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->value, "before") << "the caller gets what it computed";
  EXPECT_FALSE(RedisHas(*host_b->Key("generation", "12:59"))) << "the value from before the invalidation stayed";
  auto next = host_a->GetOrCompute("generation", "12:59", Origin("after"));
  EXPECT_EQ(next->tier, CacheTier::kOrigin);
  EXPECT_EQ(next->value, "after");
  auto b_again = host_b->GetOrCompute("generation", "12:59", Origin("never"));
  EXPECT_EQ(b_again->value, "after") << "host b's own file (from before) is not served either";
}

// A key's marker expires (IR_CACHE_TTL + 1 day after its invalidation). As a counter it then started again:
// the next invalidation made it 1 again, and a file another host wrote under the earlier 1 matched it and was
// served (and warmed back into Redis for the fleet) though it predates that invalidation. Tokens never repeat.
TEST_F(CacheTest, AnInvalidationAfterTheMarkerExpiredStillInvalidatesOtherHostsFiles) {
  auto host_a = Make(Options());
  CacheOptions ob = Options();
  ob.fs_dir = dir_ + "/host-b";
  auto host_b = Make(ob);
  const std::string key = *host_b->Key("generation", "12:60");
  ASSERT_TRUE(host_a->Invalidate("generation", "12:60").ok());
  ASSERT_EQ(host_b->GetOrCompute("generation", "12:60", Origin("first"))->value, "first");  // file under it
  ASSERT_TRUE(redis_->Command({"DEL", Cache::VerKey(key)}).ok());  // the marker's TTL ran out
  ASSERT_TRUE(host_a->Invalidate("generation", "12:60").ok());  // the row changed again
  auto r = host_b->GetOrCompute("generation", "12:60", Origin("second"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->value, "second") << "host b's file from before the invalidation was served";
  EXPECT_EQ(r->tier, CacheTier::kOrigin);
}

// A file older than a marker lives cannot be checked (the invalidation it missed may have expired since): it
// is not served, not even as the stale fallback when the origin fails.
TEST_F(CacheTest, AFileOlderThanTheMarkersIsNotServedEvenStale) {
  ManualClock clock(1'900'000'000'000);
  auto c = Make(Options(), &clock);
  ASSERT_TRUE(c->GetOrCompute("spec", "old", Origin("v1")).ok());
  ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
  clock.Advance(c->MarkerTtlMs());
  auto r = c->GetOrCompute("spec", "old", [] { return StatusOr<std::string>(Status::Unavailable("origin down")); });
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << (r.ok() ? r->value : "");
  EXPECT_FALSE(fs::exists(FilePath(*c->Key("spec", "old"))));
}

// Files no read may serve any more (older than a marker lives) and a crashed writer's temp files are swept
// hourly, by a miss that wrote a file: nothing removed them, and every key ever computed stayed on disk.
TEST_F(CacheTest, AnHourlySweepRemovesFilesPastTheMarkersLifeAndOldTempFiles) {
  ManualClock clock(1'900'000'000'000);
  auto c = Make(Options(), &clock);
  ASSERT_TRUE(c->GetOrCompute("spec", "old", Origin("v")).ok());  // the first write schedules the sweep
  ASSERT_TRUE(c->GetOrCompute("spec", "fresh", Origin("v")).ok());
  const std::string old_file = FilePath(*c->Key("spec", "old"));
  const std::string fresh_file = FilePath(*c->Key("spec", "fresh"));
  const std::string temp_file = old_file + ".tmp.1.2";
  std::ofstream(temp_file) << "half";
  const auto long_ago = fs::file_time_type::clock::now() -
                        std::chrono::milliseconds(c->MarkerTtlMs() + 60'000);
  fs::last_write_time(old_file, long_ago);
  fs::last_write_time(temp_file, long_ago);
  ASSERT_TRUE(c->GetOrCompute("spec", "before", Origin("v")).ok());
  EXPECT_TRUE(fs::exists(old_file)) << "swept before the hour was up";
  clock.Advance(3600 * 1000);
  ASSERT_TRUE(c->GetOrCompute("spec", "after", Origin("v")).ok());
  EXPECT_FALSE(fs::exists(old_file));
  EXPECT_FALSE(fs::exists(temp_file));
  EXPECT_TRUE(fs::exists(fresh_file));
  EXPECT_TRUE(fs::exists(FilePath(*c->Key("spec", "after"))));
}

TEST_F(CacheTest, CorruptOrTruncatedFileIsAMissThatGetsRepaired) {
  auto c = Make(Options());
  std::string key = *c->Key("spec", "x");
  ASSERT_TRUE(c->GetOrCompute("spec", "x", Origin("the value")).ok());
  std::string path = FilePath(key);
  std::string good;
  {
    std::ifstream in(path);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto corrupt_with = [&](const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
    ASSERT_TRUE(redis_->Command({"DEL", key}).ok());
    auto r = c->GetOrCompute("spec", "x", Origin("the value"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->tier, CacheTier::kOrigin) << text;
    EXPECT_EQ(r->value, "the value");
  };
  corrupt_with(good.substr(0, good.size() / 2));  // truncated
  corrupt_with("");
  corrupt_with("\x01\x02 garbage");
  auto j = nlohmann::json::parse(good);
  j["value"] = "a wrong value";  // valid JSON, checksum mismatch
  corrupt_with(j.dump());
  j = nlohmann::json::parse(good);
  j["key"] = "ir_cache:spec_00000000";
  corrupt_with(j.dump());
  j = nlohmann::json::parse(good);
  j["expires_at_ms"] = 1e300;  // a float out of int64's range: its conversion was undefined behaviour
  corrupt_with(j.dump());
  EXPECT_EQ(computed_, 7);
  EXPECT_EQ(Requests("filesystem", "corrupt"), 6);
  // Repaired: the file is whole again and serves.
  ASSERT_TRUE(redis_->Command({"DEL", key}).ok());
  EXPECT_EQ(c->GetOrCompute("spec", "x", Origin("never"))->tier, CacheTier::kFilesystem);
}

TEST_F(CacheTest, BinaryValuesRoundTripThroughTheFilesystem) {
  auto c = Make(Options());
  std::string bin("\xff\x00\xfe bytes", 9);
  ASSERT_TRUE(c->GetOrCompute("spec", "bin", Origin(bin)).ok());
  ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
  auto r = c->GetOrCompute("spec", "bin", Origin("never"));
  EXPECT_EQ(r->tier, CacheTier::kFilesystem);
  EXPECT_EQ(r->value, bin);
}

TEST_F(CacheTest, OriginErrorWithoutStaleIsReturnedAndReleasesTheLock) {
  auto c = Make(Options());
  auto r = c->GetOrCompute("spec", "x", [] { return StatusOr<std::string>(Status::Internal("boom")); });
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_EQ(Requests("origin", "error"), 1);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c->GetOrCompute("spec", "x", Origin("v"))->tier, CacheTier::kOrigin);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1)) << "no wait on a leftover lock";
}

TEST_F(CacheTest, InvalidateOneKeyReachesAnotherHostsFilesystemTier) {
  auto host_a = Make(Options());
  CacheOptions ob = Options();
  ob.fs_dir = dir_ + "/host-b";
  auto host_b = Make(ob);
  ASSERT_EQ(host_b->GetOrCompute("generation", "12:59", Origin("old"))->tier, CacheTier::kOrigin);
  std::string key = *host_b->Key("generation", "12:59");
  ASSERT_TRUE(fs::exists(FilePath(key, ob.fs_dir)));
  ASSERT_TRUE(host_a->GetOrCompute("generation", "12:60", Origin("other")).ok());

  auto n = host_a->Invalidate("generation", "12:59");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_FALSE(RedisHas(key));
  auto r = host_b->GetOrCompute("generation", "12:59", Origin("new"));
  EXPECT_EQ(r->tier, CacheTier::kOrigin) << "host b's file predates the invalidation";
  EXPECT_EQ(r->value, "new");
  EXPECT_EQ(host_a->GetOrCompute("generation", "12:60", Origin("never"))->tier, CacheTier::kRedis)
      << "other keys are untouched";
  EXPECT_EQ(host_a->InvalidateKey("other:thing").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CacheTest, InvalidateByNameAndPatternUseScanAndTouchOnlyCacheKeys) {
  auto c = Make(Options());
  for (int i = 0; i < 250; ++i) ASSERT_TRUE(c->GetOrCompute("a", std::to_string(i), Origin("x")).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->GetOrCompute("b", std::to_string(i), Origin("y")).ok());
  ASSERT_TRUE(redis_->Command({"SET", "app:scenario_planning:org:1:generation:1:chunks", "keep"}).ok());
  ASSERT_TRUE(redis_->Command({"SET", "ir_cache:not-a-value-key", "keep"}).ok());

  auto n = c->InvalidateName("a");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 250);
  EXPECT_EQ(c->GetOrCompute("b", "0", Origin("never"))->tier, CacheTier::kRedis);
  EXPECT_EQ(c->GetOrCompute("a", "0", Origin("x2"))->tier, CacheTier::kOrigin) << "the file went too";

  n = c->InvalidatePattern("*");  // a careless pattern only deletes this cache's value keys
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 4);
  EXPECT_TRUE(RedisHas("app:scenario_planning:org:1:generation:1:chunks"));
  EXPECT_TRUE(RedisHas("ir_cache:not-a-value-key"));
  EXPECT_EQ(c->GetOrCompute("b", "1", Origin("y2"))->tier, CacheTier::kOrigin);
}

// IR_CACHE_COMPRESS_MIN_BYTES: a large value lives zstd-compressed under "{key}:z" (a build without compression
// never reads it as a value), a small one stays plain; one form at a time; invalidation removes both.
TEST_F(CacheTest, LargeValuesAreKeptCompressedUnderTheirOwnKey) {
  CacheOptions o = Options();
  o.compress_min_bytes = 1024;
  o.fs_dir = "";  // Redis and the origin only: every answer below says which of them served it
  auto c = Make(o);
  std::string big;
  for (int i = 0; i < 200; ++i) big += "{\"row\": " + std::to_string(i) + ", \"label\": \"quarterly revenue\"},";
  auto key = c->Key("spec", "x");
  ASSERT_TRUE(key.ok());
  ASSERT_EQ(c->GetOrCompute("spec", "x", Origin(big))->value, big);
  EXPECT_FALSE(RedisHas(*key));
  auto frame = redis_->Command({"GET", *key + ":z"});
  ASSERT_EQ(frame->type, RedisValue::Type::kString);
  EXPECT_LT(frame->str.size(), big.size() / 3);
  EXPECT_EQ(*ZstdDecompress(frame->str, big.size()), big);
  auto r = c->GetOrCompute("spec", "x", Origin("never"));
  EXPECT_EQ(r->tier, CacheTier::kRedis);
  EXPECT_EQ(r->value, big);

  // A refresh to a small value leaves only the plain form, and back.
  ASSERT_EQ(c->GetOrCompute("spec", "x", Origin("small"), GetOptions{.force_refresh = true})->value, "small");
  EXPECT_TRUE(RedisHas(*key));
  EXPECT_FALSE(RedisHas(*key + ":z"));
  EXPECT_EQ(c->GetOrCompute("spec", "x", Origin("never"))->value, "small");
  ASSERT_EQ(c->GetOrCompute("spec", "x", Origin(big), GetOptions{.force_refresh = true})->value, big);
  EXPECT_FALSE(RedisHas(*key));
  EXPECT_TRUE(RedisHas(*key + ":z"));

  // Stats and invalidation see the compressed key as the value key it is.
  CacheStats st = c->Stats();
  EXPECT_EQ(st.names["spec"], 1);
  auto n = c->InvalidateKey(*key);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_FALSE(RedisHas(*key + ":z"));
  ASSERT_TRUE(c->GetOrCompute("spec", "y", Origin(big)).ok());
  EXPECT_EQ(*c->InvalidateName("spec"), 1);

  // A frame that does not decompress is a miss that the origin repairs, never a wrong value.
  ASSERT_TRUE(c->GetOrCompute("spec", "z", Origin(big)).ok());
  auto zkey = *c->Key("spec", "z") + ":z";
  ASSERT_TRUE(redis_->Command({"SET", zkey, "garbage"}).ok());
  r = c->GetOrCompute("spec", "z", Origin(big + "!"));
  EXPECT_EQ(r->tier, CacheTier::kOrigin);
  EXPECT_EQ(r->value, big + "!");
}

TEST_F(CacheTest, StatsCountKeysBytesNamesAndFiles) {
  auto c = Make(Options());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->GetOrCompute("a", std::to_string(i), Origin(std::string(1000, 'x'))).ok());
  ASSERT_TRUE(c->GetOrCompute("b", "0", Origin("y")).ok());
  CacheStats s = c->Stats();
  EXPECT_TRUE(s.redis_ok);
  EXPECT_EQ(s.redis_keys, 4);
  EXPECT_GT(s.redis_bytes, 3000);
  EXPECT_EQ(s.names.at("a"), 3);
  EXPECT_EQ(s.names.at("b"), 1);
  EXPECT_EQ(s.fs_files, 4);
  EXPECT_GT(s.fs_bytes, 3000);
}

}  // namespace
}  // namespace streamfleet
