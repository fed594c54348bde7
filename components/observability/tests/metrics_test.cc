#include "streamfleet/observability/metrics_server.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <cstdio>
#include <fstream>

#include "streamfleet/observability/redis_info_metrics.h"
#include "streamfleet/testing/redis_server.h"

#include <nlohmann/json.hpp>

namespace streamfleet {
namespace {

std::string Curl(int port, const std::string& path, int* status) {
  std::string cmd = "curl -s -o /tmp/sf-curl-body -w '%{http_code}' http://127.0.0.1:" + std::to_string(port) + path;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[16] = {0};
  size_t n = fread(buf, 1, sizeof(buf) - 1, p);
  pclose(p);
  *status = std::atoi(std::string(buf, n).c_str());
  std::ifstream f("/tmp/sf-curl-body");
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(MetricsServerTest, ServesMetricsHealthAndReadiness) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& c = prometheus::BuildCounter().Name("streamfleet_test_events_total").Help("Test events").Register(*registry).Add({});
  c.Increment(3);
  bool ready = false;
  auto m = MetricsServer::Start("127.0.0.1:0", "test", registry,
                                [&] { return ready ? Status::Ok() : Status::Unavailable("redis down"); });
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  int status = 0;
  std::string body = Curl((*m)->port(), "/metrics", &status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find("streamfleet_test_events_total 3"), std::string::npos) << body;
  EXPECT_NE(body.find("streamfleet_build_info"), std::string::npos);
  Curl((*m)->port(), "/healthz", &status);
  EXPECT_EQ(status, 200);
  body = Curl((*m)->port(), "/readyz", &status);
  EXPECT_EQ(status, 503);
  EXPECT_NE(body.find("redis down"), std::string::npos);
  ready = true;
  Curl((*m)->port(), "/readyz", &status);
  EXPECT_EQ(status, 200);
}

TEST(MetricsServerTest, PromtoolAcceptsTheExposition) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter().Name("streamfleet_test_total").Help("A counter").Register(*registry).Add({{"k", "v"}});
  prometheus::BuildHistogram()
      .Name("streamfleet_test_seconds")
      .Help("A histogram")
      .Register(*registry)
      .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 1})
      .Observe(0.5);
  auto m = MetricsServer::Start("127.0.0.1:0", "test", registry, nullptr);
  ASSERT_TRUE(m.ok());
  std::string path = testing::TempPath("sf-metrics");
  std::ofstream(path) << (*m)->Render();
  int rc = std::system(("promtool check metrics < " + path + " > " + path + ".out 2>&1").c_str());
  std::ifstream out(path + ".out");
  std::string msg((std::istreambuf_iterator<char>(out)), {});
  EXPECT_EQ(rc, 0) << msg;
}

}  // namespace
}  // namespace streamfleet

namespace streamfleet {
namespace {

TEST(RedisInfoMetricsTest, MirrorsHitsMissesAndEvictionsAndServesHealth) {
  testing::RedisServer server("--maxmemory 2mb --maxmemory-policy allkeys-lru");
  auto redis = RedisClient::Connect(server.config()).value();
  prometheus::Registry registry;
  RedisInfoMetrics m(registry);
  ASSERT_TRUE(redis->Command({"SET", "k", "v"}).ok());
  ASSERT_TRUE(redis->Command({"GET", "k"}).ok());
  ASSERT_TRUE(redis->Command({"GET", "missing"}).ok());
  ASSERT_TRUE(m.Sample(*redis).ok());
  std::string big(1024, 'x');
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(redis->Pipeline({{"SET", "fill:" + std::to_string(i), big}}).ok());
  ASSERT_TRUE(redis->Command({"GET", "k"}).ok());
  ASSERT_TRUE(m.Sample(*redis).ok());
  auto value = [&](const std::string& name) {
    for (const auto& f : registry.Collect()) {
      if (f.name == name) return f.metric[0].counter.value + f.metric[0].gauge.value;
    }
    return -1.0;
  };
  EXPECT_GE(value("streamfleet_redis_keyspace_hits_total"), 1);
  EXPECT_GE(value("streamfleet_redis_keyspace_misses_total"), 1);
  EXPECT_GT(value("streamfleet_redis_evicted_keys_total"), 100) << "5 MB into a 2 MB Redis must evict";
  EXPECT_EQ(value("streamfleet_redis_maxmemory_bytes"), 2 * 1024 * 1024);
  EXPECT_EQ(value("streamfleet_redis_server_up"), 1);
  auto health = nlohmann::json::parse(*RedisInfoMetrics::HealthJson(*redis));
  EXPECT_EQ(health["connected"], true);
  EXPECT_GT(health["dbSize"].get<int64_t>(), 0);
  EXPECT_TRUE(health.contains("used_memory_human"));
  server.Kill();
  EXPECT_FALSE(m.Sample(*redis).ok());
  EXPECT_EQ(value("streamfleet_redis_server_up"), 0);
  EXPECT_EQ(nlohmann::json::parse(*RedisInfoMetrics::HealthJson(*redis))["connected"], false);
}

}  // namespace
}  // namespace streamfleet
