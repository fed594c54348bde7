#pragma once
// The bad-input suites' consumers, built over a given redis-server: a compactor on a given database and a
// queue-worker, configured from a map environment, plus helpers to produce envelopes straight into the
// streams (as a producer in another language would) and to read rows, dead letters and pending counts.
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "compactor/compactor_service.h"
#include "queue-worker/worker_service.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/v1/chunk.pb.h"
#include "streamfleet/testing/chunk_envelope.h"
#include "support/map_env.h"

namespace streamfleet::testing {

inline Config MakeConfig(int redis_port, std::map<std::string, std::string> extra) {
  std::map<std::string, std::string> env = {{"REDIS_PORT", std::to_string(redis_port)},
                                            {"CHUNK_STREAMS", "1"},
                                            {"CONSUMER_NAME", "c1"},
                                            {"REDIS_TIMEOUT", "1s"},
                                            {"VISIBILITY_TIMEOUT", "100ms"},
                                            {"GENERATION_IDLE_TIMEOUT", "30s"}};
  for (auto& [k, v] : extra) env[k] = v;
  auto c = LoadConfig(MapEnv(env), "127.0.0.1:0");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : Config{};
}

class CompactorUnderTest {
 public:
  CompactorUnderTest(int redis_port, const std::string& db_url, std::map<std::string, std::string> extra = {}) {
    extra["DATABASE_URL"] = db_url;
    config_ = std::make_unique<Config>(MakeConfig(redis_port, extra));
    store_ = SqlStore::Open(db_url).value();
    EXPECT_TRUE(store_->Migrate().ok());
    compactor::LoopOptions o;
    o.block_ms = 10;
    service_ = std::make_unique<compactor::CompactorService>(*config_, clock_, *store_, registry_, o);
  }
  ~CompactorUnderTest() { StopLoop(); }

  compactor::CompactorService& service() { return *service_; }
  const Config& config() const { return *config_; }
  SqlStore& store() { return *store_; }
  const KeySchema& keys() { return service_->buffer().keys(); }

  // Runs cycles until one handles nothing (or max_cycles); each cycle's status must be OK.
  void Pump(int max_cycles = 50) {
    for (int i = 0; i < max_cycles; ++i) {
      auto r = service_->RunOnce(stop_);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (*r == 0 && i > 0) return;
    }
  }
  // The production loop (with its backoff) on a thread, until StopLoop.
  void StartLoop() {
    loop_ = std::thread([this] { service_->Run(loop_stop_); });
  }
  void StopLoop() {
    loop_stop_ = true;
    if (loop_.joinable()) loop_.join();
  }
  std::optional<GenerationRow> Row(int64_t gen) {
    auto r = store_->GetGeneration(gen);
    return r.ok() ? *r : std::nullopt;
  }

 private:
  std::unique_ptr<Config> config_;
  std::unique_ptr<SqlStore> store_;
  ManualClock clock_{1'800'000'000'000};
  prometheus::Registry registry_;
  std::unique_ptr<compactor::CompactorService> service_;
  std::atomic<bool> stop_{false}, loop_stop_{false};
  std::thread loop_;
};

inline std::vector<StreamEntry> ReadStream(RedisClient& redis, const std::string& stream) {
  return ParseEntries(stream, *redis.Command({"XRANGE", stream, "-", "+"}));
}

inline int64_t PendingOf(RedisClient& redis, const std::string& stream) {
  auto st = GetStreamStats(redis, stream);
  int64_t n = 0;
  if (st.ok()) {
    for (const auto& g : st->groups) n += g.pending;
  }
  return n;
}

inline std::string DecodedText(const GenerationRow& row) {
  return Base64Decode(row.compacted.value_or("")).value_or("<not base64>");
}

}  // namespace streamfleet::testing
