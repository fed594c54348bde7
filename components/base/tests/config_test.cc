#include "streamfleet/base/config.h"

#include <gtest/gtest.h>

#include <map>
#include <tuple>

#include "streamfleet/base/keys.h"
#include "support/map_env.h"

namespace streamfleet {
namespace {

EnvLookup Env(std::map<std::string, std::string> m) { return testing::MapEnv(std::move(m)); }

TEST(ConfigTest, DefaultsMatchTheDocumentedTable) {
  auto c = LoadConfig(Env({}), "0.0.0.0:9101");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->redis.host, "127.0.0.1");
  EXPECT_EQ(c->redis.port, 6379);
  EXPECT_EQ(c->database_url, "sqlite:streamfleet.db");
  EXPECT_EQ(c->chunk_ttl_s, 86400);
  EXPECT_EQ(c->chunk_storage, ChunkStorage::kRedis);
  EXPECT_EQ(c->idle_timeout_ms, 30000);
  EXPECT_EQ(c->ir_cache_ttl_s, 604800);
  EXPECT_EQ(c->metrics_listen, "0.0.0.0:9101");
  EXPECT_EQ(c->ingest_listen, "0.0.0.0:8080");
  EXPECT_EQ(c->key_prefix, "app:scenario_planning");
  EXPECT_FALSE(c->consumer_name.empty());
  EXPECT_TRUE(c->ingest_tokens.empty());
  EXPECT_EQ(c->webhook_max_timeout_ms, 30000);
  EXPECT_EQ(c->webhook_allow_nets, "");
  EXPECT_EQ(c->webhook_deny_nets, "");
}

TEST(ConfigTest, ReadsEveryVariable) {
  auto c = LoadConfig(Env({{"REDIS_HOST", "redis.internal"},
                           {"REDIS_PORT", "7000"},
                           {"REDIS_PASSWORD", "s3cret"},
                           {"DATABASE_URL", "postgresql://u:p@db:5432/fleet"},
                           {"GENERATION_CHUNK_TTL", "60"},
                           {"GENERATION_CHUNK_STORAGE", "both"},
                           {"GENERATION_IDLE_TIMEOUT", "1500ms"},
                           {"GENERATION_LLEN_ALERT_THRESHOLD", "50"},
                           {"IR_CACHE_TTL", "0"},
                           {"METRICS_LISTEN", "127.0.0.1:19100"},
                           {"INGEST_LISTEN", ":18080"},
                           {"CHUNK_STREAMS", "8"},
                           {"EVENTS_MAXLEN", "250000"},
                           {"CONSUMER_NAME", "pod-1"},
                           {"STREAMFLEET_KEY_SCHEMA", "cluster"},
                           {"INGEST_TOKENS", "12:abc,13:def"},
                           {"LOG_FORMAT", "json"}}),
                      "0.0.0.0:9100");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->redis.host, "redis.internal");
  EXPECT_EQ(c->redis.port, 7000);
  EXPECT_EQ(c->redis.password, "s3cret");
  EXPECT_EQ(c->chunk_ttl_s, 60);
  EXPECT_EQ(c->chunk_storage, ChunkStorage::kBoth);
  EXPECT_EQ(c->idle_timeout_ms, 1500);
  EXPECT_EQ(c->llen_alert_threshold, 50);
  EXPECT_EQ(c->ir_cache_ttl_s, 0);
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:19100");
  EXPECT_EQ(c->chunk_streams, 8);
  EXPECT_EQ(c->events_maxlen, 250000);
  EXPECT_EQ(KeySchema::FromConfig(*c).EventsMaxlen(), "250000");
  EXPECT_EQ(c->consumer_name, "pod-1");
  EXPECT_EQ(c->key_schema, KeySchemaMode::kCluster);
  EXPECT_EQ(c->ingest_tokens.at(12), "abc");
  EXPECT_EQ(c->ingest_tokens.at(13), "def");
  EXPECT_TRUE(c->log_json);
}

TEST(ConfigTest, RedisUrlWinsOverHostAndPort) {
  auto c = LoadConfig(Env({{"REDIS_URL", "redis://:pw@10.0.0.5:6380/2"}, {"REDIS_HOST", "ignored"}}), ":9100");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->redis.host, "10.0.0.5");
  EXPECT_EQ(c->redis.port, 6380);
  EXPECT_EQ(c->redis.password, "pw");
  EXPECT_EQ(c->redis.username, "");
  EXPECT_EQ(c->redis.db, 2);
  auto acl = LoadConfig(Env({{"REDIS_URL", "redis://compactor:s3cret@redis:6379"}}), ":9100");
  ASSERT_TRUE(acl.ok());
  EXPECT_EQ(acl->redis.username, "compactor");
  EXPECT_EQ(acl->redis.password, "s3cret");
  // Percent-decoded, as the Python and Node clients read the same REDIS_URL: before, the fleet's processes
  // sent "p%40ss%3Aword" as the password where the clients sent "p@ss:word".
  auto encoded = LoadConfig(Env({{"REDIS_URL", "redis://us%65r:p%40ss%3Aword%25@redis:6379"}}), ":9100");
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded->redis.username, "user");
  EXPECT_EQ(encoded->redis.password, "p@ss:word%");
  auto lone = LoadConfig(Env({{"REDIS_URL", "redis://:100%@redis:6379"}}), ":9100");
  ASSERT_TRUE(lone.ok());
  EXPECT_EQ(lone->redis.password, "100%") << "a '%' without two hex digits stays";
  auto parts = LoadConfig(Env({{"REDIS_USERNAME", "worker"}, {"REDIS_PASSWORD", "pw2"}}), ":9100");
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->redis.username, "worker");
  EXPECT_EQ(parts->redis.password, "pw2");
  // An IPv6 address in brackets: "[::1]" was taken as the host name and "[::1]" alone failed on its port.
  auto v6 = LoadConfig(Env({{"REDIS_URL", "redis://:pw@[::1]:6380/1"}}), ":9100");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->redis.host, "::1");
  EXPECT_EQ(v6->redis.port, 6380);
  auto v6_default_port = LoadConfig(Env({{"REDIS_URL", "redis://[fe80::2]"}}), ":9100");
  ASSERT_TRUE(v6_default_port.ok()) << v6_default_port.status().ToString();
  EXPECT_EQ(v6_default_port->redis.host, "fe80::2");
  EXPECT_EQ(v6_default_port->redis.port, 6379);
  EXPECT_FALSE(LoadConfig(Env({{"REDIS_URL", "redis://[::1"}}), ":9100").ok());
  EXPECT_FALSE(LoadConfig(Env({{"REDIS_URL", "redis://[::1]x"}}), ":9100").ok());
}

TEST(ConfigTest, RedisTlsFromARedissUrlOrRedisTlsAndTheirFiles) {
  auto c = LoadConfig(Env({{"REDIS_URL", "rediss://default:pw@cache.example.com:6380"}, {"REDIS_TLS_CA", "/ca.pem"}}),
                      ":9100");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->redis.tls.enabled);
  EXPECT_FALSE(c->redis.tls.insecure);
  EXPECT_EQ(c->redis.tls.ca_file, "/ca.pem");
  EXPECT_EQ(c->redis.host, "cache.example.com");
  EXPECT_EQ(c->redis.port, 6380);
  auto t = LoadConfig(Env({{"REDIS_TLS", "true"}, {"REDIS_TLS_CERT", "/c.pem"}, {"REDIS_TLS_KEY", "/k.pem"},
                           {"REDIS_TLS_SERVER_NAME", "redis.internal"}}),
                      ":9100");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->redis.tls.enabled);
  EXPECT_EQ(t->redis.tls.server_name, "redis.internal");
  EXPECT_FALSE(LoadConfig(Env({{"REDIS_URL", "redis://h"}}), ":9100")->redis.tls.enabled);
  // A certificate without its key, or TLS files without TLS, is a mistake said at start.
  EXPECT_FALSE(LoadConfig(Env({{"REDIS_TLS", "true"}, {"REDIS_TLS_CERT", "/c.pem"}}), ":9100").ok());
  EXPECT_FALSE(LoadConfig(Env({{"REDIS_TLS_CA", "/ca.pem"}}), ":9100").ok());
  EXPECT_FALSE(LoadConfig(Env({{"REDIS_URL", "redisss://h"}}), ":9100").ok());
}

TEST(ConfigTest, SentinelsNeedTheMasterNameAndNoCluster) {
  auto c = LoadConfig(Env({{"REDIS_SENTINELS", "s1:26379,10.0.0.2:26380"}, {"REDIS_SENTINEL_MASTER", "mymaster"},
                           {"REDIS_SENTINEL_PASSWORD", "spw"}}),
                      ":9100");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->redis.sentinel.nodes, (std::vector<std::string>{"s1:26379", "10.0.0.2:26380"}));
  EXPECT_EQ(c->redis.sentinel.master, "mymaster");
  EXPECT_EQ(c->redis.sentinel.password, "spw");
  EXPECT_FALSE(LoadConfig(Env({{"REDIS_SENTINELS", "s1:26379"}}), ":9100").ok()) << "no master name";
  EXPECT_FALSE(LoadConfig(Env({{"REDIS_SENTINELS", "s1"}, {"REDIS_SENTINEL_MASTER", "m"}}), ":9100").ok());
  EXPECT_FALSE(LoadConfig(Env({{"REDIS_SENTINELS", "s1:26379"}, {"REDIS_SENTINEL_MASTER", "m"},
                               {"REDIS_CLUSTER", "true"}}),
                          ":9100")
                   .ok());
}

TEST(ConfigTest, ClusterModeTakesASeedListAndTheClusterKeySchema) {
  auto c = LoadConfig(Env({{"REDIS_URL", "redis://u:pw@10.0.0.1:7000,10.0.0.2:7001,redis-c"},
                           {"REDIS_CLUSTER", "true"}}),
                      ":9100");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->redis.cluster);
  EXPECT_EQ(c->redis.seeds, (std::vector<std::string>{"10.0.0.1:7000", "10.0.0.2:7001", "redis-c:6379"}));
  EXPECT_EQ(c->redis.host, "10.0.0.1");
  EXPECT_EQ(c->redis.port, 7000);
  EXPECT_EQ(c->redis.username, "u");
  EXPECT_EQ(c->redis.password, "pw");
  EXPECT_EQ(c->key_schema, KeySchemaMode::kCluster);  // the default in cluster mode
  // Explicitly cluster is fine too; host/port variables give the one seed.
  auto hp = LoadConfig(Env({{"REDIS_HOST", "r1"}, {"REDIS_PORT", "7005"}, {"REDIS_CLUSTER", "true"},
                            {"STREAMFLEET_KEY_SCHEMA", "cluster"}}),
                       ":9100");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->redis.seeds, std::vector<std::string>{"r1:7005"});
  EXPECT_TRUE(hp->redis.cluster);
}

TEST(ConfigTest, StandardModeIsTheDefaultAndKeepsOneNode) {
  auto c = LoadConfig(Env({{"REDIS_URL", "redis://10.0.0.1:7000"}}), ":9100");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->redis.cluster);
  EXPECT_EQ(c->redis.seeds, std::vector<std::string>{"10.0.0.1:7000"});
  EXPECT_EQ(c->key_schema, KeySchemaMode::kStandard);
  auto off = LoadConfig(Env({{"REDIS_CLUSTER", "false"}}), ":9100");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->redis.cluster);
}

TEST(ConfigTest, ClusterModeContradictionsAreErrors) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> bad = {
      {{{"REDIS_CLUSTER", "true"}, {"STREAMFLEET_KEY_SCHEMA", "standard"}}, "STREAMFLEET_KEY_SCHEMA"},
      {{{"REDIS_CLUSTER", "true"}, {"REDIS_URL", "redis://h1:7000,h2:7001/3"}}, "REDIS_URL"},
      {{{"REDIS_CLUSTER", "true"}, {"REDIS_DB", "1"}}, "REDIS_DB"},
      {{{"REDIS_CLUSTER", "yes please"}}, "REDIS_CLUSTER"},
      // A node list without cluster mode would silently use the first node only.
      {{{"REDIS_URL", "redis://h1:7000,h2:7001"}}, "REDIS_URL"},
      {{{"REDIS_CLUSTER", "true"}, {"REDIS_URL", "redis://h1:7000,h2:x"}}, "REDIS_URL"},
      {{{"REDIS_CLUSTER", "true"}, {"REDIS_URL", "redis://h1:7000,:7001"}}, "REDIS_URL"},
  };
  for (const auto& [env, var] : bad) {
    auto c = LoadConfig(Env(env), ":9100");
    ASSERT_FALSE(c.ok()) << var << " case was accepted";
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find(var), std::string::npos) << c.status().message();
  }
}

TEST(ConfigTest, MalformedValuesNameTheVariable) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"REDIS_PORT", "abc"},          {"REDIS_PORT", "70000"},
      {"GENERATION_CHUNK_TTL", "-5"}, {"GENERATION_CHUNK_STORAGE", "s3"},
      {"GENERATION_IDLE_TIMEOUT", "soon"}, {"DATABASE_URL", "mysql://x"},
      {"METRICS_LISTEN", "nowhere"},  {"REDIS_URL", "http://x"},
      {"INGEST_TOKENS", "abc"},       {"LOG_LEVEL", "loud"},
      {"CHUNK_STREAMS", "0"},         {"GENERATION_DELETE_AFTER_COMPACT", "maybe"},
      {"EVENTS_MAXLEN", "10"},        {"EVENTS_MAXLEN", "lots"},
      // Past a day: the Redis clients hold their timeouts in int milliseconds (3000000 s would overflow).
      {"REDIS_TIMEOUT", "3000000s"},
      {"WEBHOOK_ALLOW_NETS", "127.0.0.0/33"}, {"WEBHOOK_DENY_NETS", "10.0.0.0/8,example.com"},
      {"WEBHOOK_MAX_TIMEOUT", "0"},
      // Storage (docs/storage.md).
      {"CHUNK_COMPRESSION", "gzip"},  {"CHUNK_COMPRESSION_MIN_BYTES", "0"},
      {"IR_CACHE_COMPRESS_MIN_BYTES", "-1"}, {"IR_CACHE_COMPRESS_MIN_BYTES", "1k"},
      {"ARTIFACT_STORE", "bucket"},   {"ARTIFACT_STORE", "s3://"}, {"ARTIFACT_STORE", "s3://a b/x"},
      {"ARTIFACT_STORE_ENDPOINT", "minio:9000"}, {"ARTIFACT_STORE_ENDPOINT", "ftp://minio"},
      {"ARTIFACT_STORE_TIMEOUT", "0"}, {"ARTIFACT_INLINE_MAX_BYTES", "-1"},
      // An organization's shares (docs/CONFIGURATION.md).
      {"INGEST_ORG_MAX_WORKERS", "-1"}, {"INGEST_ORG_MAX_WORKERS", "half"}, {"INGEST_ORG_MAX_WORKERS", "5000"},
      {"LIVE_ORG_MAX_STREAMS", "0"},  {"LIVE_ORG_MAX_STREAMS", "1e3"},
      {"INGEST_MAX_CONNECTIONS", "-1"}, {"INGEST_MAX_CONNECTIONS", "lots"}, {"INGEST_MAX_CONNECTIONS", "20000000"},
      {"LIVE_ORG_MAX_HELD_BYTES", "0"}, {"LIVE_ORG_MAX_HELD_BYTES", "1k"}, {"LIVE_ORG_MAX_HELD_BYTES", "-5"},
      {"INGEST_MAX_QUEUED_ANSWER_BYTES", "0"}, {"INGEST_MAX_QUEUED_ANSWER_BYTES", "1G"},
  };
  for (const auto& [k, v] : bad) {
    auto c = LoadConfig(Env({{k, v}}), ":9100");
    ASSERT_FALSE(c.ok()) << k << "=" << v << " was accepted";
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find(k), std::string::npos) << c.status().message();
  }
}

// INGEST_ORG_MAX_WORKERS 0 (the default) leaves an eighth of the threads, at least one, to the others; a
// value above INGEST_THREADS is the whole pool (one organization alone may use every thread).
TEST(ConfigTest, AnOrganizationsShareOfWorkerThreadsIsResolvedAgainstTheirCount) {
  auto share = [](const std::string& threads, const std::string& max) {
    auto c = LoadConfig(Env({{"INGEST_THREADS", threads}, {"INGEST_ORG_MAX_WORKERS", max}}), ":9100");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? c->ingest_org_max_workers : -1;
  };
  EXPECT_EQ(share("64", "0"), 56);
  EXPECT_EQ(share("4", "0"), 3);
  EXPECT_EQ(share("1", "0"), 1) << "one thread: the organization may use it";
  EXPECT_EQ(share("8", "2"), 2);
  EXPECT_EQ(share("8", "100"), 8);
  auto live = LoadConfig(Env({{"LIVE_ORG_MAX_STREAMS", "7"}}), ":9100");
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->live_org_max_streams, 7);
  EXPECT_EQ(LoadConfig(Env({}), ":9100")->live_org_max_streams, 5000);
  EXPECT_EQ(LoadConfig(Env({}), ":9100")->ingest_max_connections, 16000);
  EXPECT_EQ(LoadConfig(Env({}), ":9100")->ingest_max_queued_answer_bytes, 256 << 20);
  EXPECT_EQ(LoadConfig(Env({{"INGEST_MAX_CONNECTIONS", "0"}}), ":9100")->ingest_max_connections, 0) << "no cap";
}

TEST(ConfigTest, DurationsAcceptUnits) {
  EXPECT_EQ(*ParseDurationMs("250ms", 1000), 250);
  EXPECT_EQ(*ParseDurationMs("30s", 1000), 30000);
  EXPECT_EQ(*ParseDurationMs("2m", 1000), 120000);
  EXPECT_EQ(*ParseDurationMs("1h", 1000), 3600000);
  EXPECT_EQ(*ParseDurationMs("7", 1000), 7000);
  EXPECT_EQ(*ParseDurationMs("7d", 1000), 7 * 86400000LL);
  EXPECT_FALSE(ParseDurationMs("7w", 1000).ok());
  EXPECT_FALSE(ParseDurationMs("", 1000).ok());
  // 15 digits of hours overflowed int64 milliseconds (UBSan in fuzz/fuzz_config) instead of failing.
  EXPECT_FALSE(ParseDurationMs("999999999999999h", 1000).ok());
  EXPECT_FALSE(ParseDurationMs("999999999999999", 3600000).ok());
  EXPECT_EQ(*ParseDurationMs("999999999999999ms", 1000), 999999999999999);
  EXPECT_EQ(*ParseDurationMs("2562047h", 1000), int64_t{2562047} * 3600000);
}

TEST(ConfigTest, TimesAcceptUnixSecondsAndIso8601WithZOrAnOffset) {
  EXPECT_EQ(*ParseTimeMs("1795000000"), 1795000000000);
  EXPECT_EQ(*ParseTimeMs("2026-11-25T18:00:00Z"), 1795629600000);
  EXPECT_EQ(*ParseTimeMs("2026-11-25T18:00:00.250Z"), 1795629600250);
  EXPECT_FALSE(ParseTimeMs("2026-11-25 18:00:00").ok());
  // Offsets and 1 to 9 fraction digits, as Carbon, PHP's DATE_ATOM, Python's isoformat and JavaScript write them.
  EXPECT_EQ(*ParseTimeMs("2026-11-25T18:00:00+00:00"), 1795629600000);
  EXPECT_EQ(*ParseTimeMs("2026-11-25T18:00:00-00:00"), 1795629600000);
  EXPECT_EQ(*ParseTimeMs("2026-11-25T19:00:00+01:00"), 1795629600000);
  EXPECT_EQ(*ParseTimeMs("2026-11-25T12:30:00-05:30"), 1795629600000);
  EXPECT_EQ(*ParseTimeMs("2026-11-25T18:00:00.5Z"), 1795629600500);
  EXPECT_EQ(*ParseTimeMs("2026-11-25T18:00:00.123456+00:00"), 1795629600123);
  EXPECT_EQ(*ParseTimeMs("2026-11-25T18:00:00.123456789Z"), 1795629600123);
  EXPECT_FALSE(ParseTimeMs("2026-11-25T18:00:00.Z").ok());
  EXPECT_FALSE(ParseTimeMs("2026-11-25T18:00:00.1234567890Z").ok());
  EXPECT_FALSE(ParseTimeMs("2026-11-25T18:00:00+01").ok());
  EXPECT_FALSE(ParseTimeMs("2026-11-25T18:00:00+24:00").ok());
  EXPECT_FALSE(ParseTimeMs("2026-11-25T18:00:00").ok());
  EXPECT_FALSE(ParseTimeMs("2026-11-25T18:00:00ZZ").ok());
  EXPECT_FALSE(ParseTimeMs("+026-11-25T18:00:00Z").ok());
  EXPECT_FALSE(ParseTimeMs("2026-11-25T 8:00:00Z").ok());
  EXPECT_FALSE(ParseTimeMs("2026-13-25T18:00:00Z").ok());
  EXPECT_FALSE(ParseTimeMs("tomorrow").ok());
  EXPECT_FALSE(ParseTimeMs("").ok());
}

// The queue-worker's task specs are parsed by LoadConfig: the worker gets the values, never the text.
TEST(ConfigTest, TaskSpecsAreParsedIntoTheConfig) {
  auto c = LoadConfig(Env({{"TASK_POLICY", "generation.run=2/1000/1000,webhook=8/500/60000"},
                           {"PERIODIC_TASKS", "purge=generation_chunks.purge@1h@low,tick=noop@30s"},
                           {"TASK_TIMEOUTS", "webhook=30s,noop=0"}}),
                      ":9102");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->task_policies.size(), 2u);
  EXPECT_EQ(c->task_policies.at("generation.run").max_attempts, 2);
  EXPECT_EQ(c->task_policies.at("webhook").base_ms, 500);
  EXPECT_EQ(c->task_policies.at("webhook").cap_ms, 60000);
  ASSERT_EQ(c->periodic_tasks.size(), 2u);
  EXPECT_EQ(c->periodic_tasks[1].name, "tick");
  EXPECT_EQ(c->periodic_tasks[1].type, "noop");
  EXPECT_EQ(c->periodic_tasks[1].queue, "default");
  EXPECT_EQ(c->periodic_tasks[1].interval_ms, 30000);
  EXPECT_EQ(c->task_timeouts, (std::map<std::string, int64_t>{{"noop", 0}, {"webhook", 30000}}));
  auto none = LoadConfig(Env({}), ":9102");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->task_policies.empty() && none->periodic_tasks.empty() && none->task_timeouts.empty());
}

// A malformed task spec stops every process at start, naming the variable and the item it refused (before,
// the worker checked two of them in main() and ignored the errors elsewhere).
TEST(ConfigTest, MalformedTaskSpecsNameTheVariableAndTheItem) {
  const std::vector<std::tuple<std::string, std::string, std::string>> bad = {
      {"TASK_POLICY", "webhook", "webhook"},
      {"TASK_POLICY", "=3/1000/2000", "=3/1000/2000"},
      {"TASK_POLICY", "ok=3/1/2,webhook=3/1000", "webhook=3/1000"},
      {"TASK_POLICY", "webhook=0/1000/2000", "webhook=0/1000/2000"},
      {"TASK_POLICY", "webhook=3/-1/2000", "webhook=3/-1/2000"},
      {"TASK_POLICY", "webhook=3/1s/2000", "webhook=3/1s/2000"},
      {"TASK_POLICY", "webhook=3/1000/2000/9", "webhook=3/1000/2000/9"},
      {"TASK_POLICY", "webhook=99999999999/1/2", "webhook=99999999999/1/2"},
      {"PERIODIC_TASKS", "bad", "bad"},
      {"PERIODIC_TASKS", "x=y@soon", "x=y@soon"},
      {"PERIODIC_TASKS", "x=@30s", "x=@30s"},
      {"PERIODIC_TASKS", "=noop@30s", "=noop@30s"},
      {"PERIODIC_TASKS", "x=noop@0s", "x=noop@0s"},
      {"PERIODIC_TASKS", "x=noop@30s@Not A Queue", "x=noop@30s@Not A Queue"},
      {"TASK_TIMEOUTS", "webhook", "webhook"},
      {"TASK_TIMEOUTS", "=30s", "=30s"},
      {"TASK_TIMEOUTS", "x=soon", "x=soon"},
      {"TASK_TIMEOUTS", "ok=1s,x=-1s", "x=-1s"},
  };
  for (const auto& [var, value, item] : bad) {
    auto c = LoadConfig(Env({{var, value}}), ":9102");
    ASSERT_FALSE(c.ok()) << var << "=" << value << " was accepted";
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(c.status().message().rfind(var + "=", 0), 0u) << c.status().message();
    EXPECT_NE(c.status().message().find("\"" + item + "\" is not one"), std::string::npos) << c.status().message();
  }
}

// A browser's Origin is compared byte for byte with LIVE_CORS_ORIGINS: an entry with a space or a trailing
// slash was kept as written and never matched, so the pages got no CORS and nobody was told.
TEST(ConfigTest, LiveCorsOriginsAreTrimmedAndBroughtToTheFormOfAnOriginHeader) {
  auto c = LoadConfig(
      Env({{"LIVE_CORS_ORIGINS", " https://app.example.com/ , http://localhost:3000,,HTTPS://App.Example.org:443,"
                                 "http://10.0.0.7:80 ,https://[::1]:8443, *"}}),
      ":9102");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->live_cors_origins,
            (std::vector<std::string>{"https://app.example.com", "http://localhost:3000", "https://app.example.org",
                                      "http://10.0.0.7", "https://[::1]:8443", "*"}));
  auto none = LoadConfig(Env({{"LIVE_CORS_ORIGINS", " , "}}), ":9102");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->live_cors_origins.empty());
}

// What can never equal an Origin header stops every process at start (and streamfleetctl check-config), naming
// the variable and the entry.
TEST(ConfigTest, MalformedLiveCorsOriginsNameTheVariableAndTheEntry) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"app.example.com", "app.example.com"},
      {"https://ok.example, app.example.com", "app.example.com"},
      {"ftp://app.example.com", "ftp://app.example.com"},
      {"https://", "https://"},
      {"https://app.example.com/app", "https://app.example.com/app"},
      {"https://app.example.com//", "https://app.example.com//"},
      {"https://app.example.com?x=1", "https://app.example.com?x=1"},
      {"https://user@app.example.com", "https://user@app.example.com"},
      {"https://app.example.com:0", "https://app.example.com:0"},
      {"https://app.example.com:65536", "https://app.example.com:65536"},
      {"https://app.example.com:", "https://app.example.com:"},
      {"https://app.example.com:80x", "https://app.example.com:80x"},
      {"https://[zz::1]", "https://[zz::1]"},
      {"https://exa mple.com", "https://exa mple.com"},
      {"**", "**"},
  };
  for (const auto& [value, item] : bad) {
    auto c = LoadConfig(Env({{"LIVE_CORS_ORIGINS", value}}), ":9102");
    ASSERT_FALSE(c.ok()) << value << " was accepted";
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(c.status().message().rfind("LIVE_CORS_ORIGINS=", 0), 0u) << c.status().message();
    EXPECT_NE(c.status().message().find("\"" + item + "\" is not one"), std::string::npos) << c.status().message();
  }
}

TEST(TaskSpecsTest, TimeoutsSpecAndErrors) {
  auto t = ParseTaskTimeouts("webhook=30s,hash.sync=10m,noop=0");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->at("webhook"), 30000);
  EXPECT_EQ(t->at("hash.sync"), 600000);
  EXPECT_EQ(t->at("noop"), 0);
  EXPECT_FALSE(ParseTaskTimeouts("webhook").ok());
  EXPECT_FALSE(ParseTaskTimeouts("=30s").ok());
  EXPECT_FALSE(ParseTaskTimeouts("x=soon").ok());
}

TEST(TaskSpecsTest, PeriodicSpecAndErrors) {
  auto p = ParsePeriodicTasks("purge=generation_chunks.purge@1h@low,tick=noop@30s");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].queue, "low");
  EXPECT_EQ((*p)[0].interval_ms, 3600000);
  EXPECT_FALSE(ParsePeriodicTasks("bad").ok());
  EXPECT_FALSE(ParsePeriodicTasks("x=y@soon").ok());
}

TEST(TaskSpecsTest, PoliciesSpecAndErrors) {
  auto p = ParseTaskPolicies("a=1/0/0,b=10/250/8000,a=2/3/4");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ(p->at("a").max_attempts, 2) << "a later item for the same type wins";
  EXPECT_EQ(p->at("a").base_ms, 3);
  EXPECT_EQ(p->at("b").max_attempts, 10);
  EXPECT_EQ(p->at("b").base_ms, 250);
  EXPECT_EQ(p->at("b").cap_ms, 8000);
  EXPECT_TRUE(ParseTaskPolicies("").value().empty());
  EXPECT_FALSE(ParseTaskPolicies("a=1/2").ok());
  EXPECT_FALSE(ParseTaskPolicies("a=+1/2/3").ok());
}

TEST(ConfigTest, EveryVariableIsDocumentedOnce) {
  std::set<std::string> seen;
  for (const auto& v : ConfigVars()) {
    EXPECT_TRUE(seen.insert(v.name).second) << v.name;
    EXPECT_NE(std::string(v.description), "");
  }
}

}  // namespace
}  // namespace streamfleet

namespace streamfleet {
namespace {
TEST(ConfigTest, EachProcessKeepsOnlyTheSecretsItUses) {
  auto loaded = LoadConfig(Env({{"INGEST_TOKENS", "7:ingest-secret"},
                                {"ADMIN_TOKEN", "admin-secret"},
                                {"PROVIDER_API_KEY", "provider-secret"}}),
                           "0.0.0.0:9100");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  struct Case {
    ProcessRole role;
    bool tokens, admin, provider;
  };
  for (const Case& c : {Case{ProcessRole::kIngest, true, false, false}, Case{ProcessRole::kCompactor, false, false, false},
                        Case{ProcessRole::kWorker, false, false, true}, Case{ProcessRole::kAdmin, false, true, false},
                        Case{ProcessRole::kTool, true, true, true}}) {
    Config config = *loaded;
    KeepOnlySecretsOf(c.role, config);
    EXPECT_EQ(config.ingest_tokens.count(7) == 1, c.tokens) << static_cast<int>(c.role);
    EXPECT_EQ(config.admin_token == "admin-secret", c.admin) << static_cast<int>(c.role);
    EXPECT_EQ(config.provider_api_key == "provider-secret", c.provider) << static_cast<int>(c.role);
    if (!c.admin) {
      EXPECT_TRUE(config.admin_token.empty());
    }
  }
}

TEST(SplitListTest, NonEmptyItemsInOrder) {
  EXPECT_EQ(SplitList("a,b,,c,", ','), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(SplitList("", ',').empty());
  EXPECT_EQ(SplitList("one", ','), (std::vector<std::string>{"one"}));
}
}  // namespace
}  // namespace streamfleet
