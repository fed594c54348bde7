#pragma once
// Configuration from environment variables (12-factor). Every variable has a default, listed in one table
// (kConfigVars) that docs/CONFIGURATION.md mirrors and `streamfleetctl config` prints. A malformed value is a
// startup error naming the variable; nothing falls back silently.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "streamfleet/base/status.h"
#include "streamfleet/base/task_specs.h"

namespace streamfleet {

struct ConfigVar {
  const char* name;
  const char* default_value;  // "" = empty / unset
  const char* description;
};

// The table of every variable the fleet reads.
const std::vector<ConfigVar>& ConfigVars();

enum class ChunkStorage { kRedis, kDb, kBoth };
enum class KeySchemaMode { kStandard, kCluster };

// TLS to Redis (rediss:// or REDIS_TLS=true): OpenSSL under hiredis's RESP reader (components/redis
// src/tls_transport.cc). Verification is on unless insecure.
struct RedisTlsConfig {
  bool enabled = false;
  std::string ca_file;      // REDIS_TLS_CA: PEM bundle to trust ("" = the system's trust store)
  std::string cert_file;    // REDIS_TLS_CERT / REDIS_TLS_KEY: client certificate (mutual TLS)
  std::string key_file;
  std::string server_name;  // REDIS_TLS_SERVER_NAME: SNI and the name verified ("" = the host connected to)
  bool insecure = false;    // REDIS_TLS_INSECURE: no certificate or name check (development only)
};

// Redis Sentinel (REDIS_SENTINELS): the master's address is asked of the sentinels at every (re)connect,
// so a failover is followed without a restart (components/redis src/sentinel.cc).
struct RedisSentinelConfig {
  std::vector<std::string> nodes;  // "host:port" of the sentinels
  std::string master;              // REDIS_SENTINEL_MASTER: the monitored master's name
  std::string username;            // REDIS_SENTINEL_USERNAME / REDIS_SENTINEL_PASSWORD: the sentinels' own auth
  std::string password;
};

struct RedisConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;  // Redis 6+ ACL user ("" = AUTH with the password only, the default user)
  std::string password;
  int db = 0;
  int connect_timeout_ms = 2000;
  int command_timeout_ms = 5000;
  // Redis Cluster (REDIS_CLUSTER=true): RedisClient routes every command by key slot over the masters it
  // learns from CLUSTER SLOTS, asked of these seed nodes ("host:port"; host/port above are the first seed).
  bool cluster = false;
  std::vector<std::string> seeds;
  RedisTlsConfig tls;
  RedisSentinelConfig sentinel;  // nodes empty: host/port is the server
  // RedisClient::Send asks the server for no replies (CLIENT REPLY OFF until the next call that reads one),
  // so a fire-and-forget write costs the server no reply write: over TLS each reply is a TLS record of its
  // own, about half of what an ack costs Redis. Not from the environment: the queue-worker sets it for the
  // connections that ack tasks. A server that refuses CLIENT REPLY (ACL, proxy) gets the normal Send, and so
  // does a Redis Cluster, whose redirections must be read to be followed (ClusterRouter::Send).
  bool quiet_sends = false;
};

// One route of TASK_ROUTES: tasks whose type matches `pattern` (an exact name, or a glob with * and ?) are
// POSTed to `url` by the queue-worker (queue-worker/push_handlers.h).
struct TaskRoute {
  std::string pattern;
  std::string url;
};

// One bearer token of the task API (TASK_API_TOKENS) and what it may do: enqueue covers POST (and DELETE,
// cancelling what one may enqueue), read covers GET. Separate from the per-organization chunk tokens.
struct TaskApiToken {
  std::string token;
  bool enqueue = false;
  bool read = false;
};

struct Config {
  RedisConfig redis;
  std::string database_url;
  std::string key_prefix;     // seeds' "app:scenario_planning"
  std::string stream_prefix;  // "streamfleet": streams, deadlines, dead letters
  KeySchemaMode key_schema = KeySchemaMode::kStandard;

  int64_t chunk_ttl_s = 86400;
  int64_t owner_ttl_s = 2592000;  // the generation id -> organization record (tenant isolation)
  ChunkStorage chunk_storage = ChunkStorage::kRedis;
  bool chunk_compression = true;             // CHUNK_COMPRESSION=zstd (false: off)
  bool chunk_batches = true;                 // CHUNK_BATCHES: ChunkBatch entries (chunk_entry.h)
  int64_t chunk_compression_min_bytes = 1024;  // CHUNK_COMPRESSION_MIN_BYTES
  // ARTIFACT_STORE=s3://bucket/prefix (components/artifacts): large compacted texts live there, not in the row.
  std::string artifact_bucket;  // "" = no object store
  std::string artifact_prefix;
  std::string artifact_store_endpoint;  // "" = AWS's regional endpoint
  std::string artifact_store_region = "us-east-1";
  std::string artifact_store_credentials_file;
  int64_t artifact_store_timeout_ms = 30000;
  int64_t artifact_inline_max_bytes = 1 << 20;  // ARTIFACT_INLINE_MAX_BYTES
  std::string aws_access_key_id, aws_secret_access_key, aws_session_token;  // secrets: never logged
  int64_t idle_timeout_ms = 30000;
  int64_t llen_alert_threshold = 1000;
  int64_t max_chunks_per_generation = 100000;
  bool delete_after_compact = false;
  int64_t delete_grace_s = 300;
  int64_t ir_cache_ttl_s = 604800;
  std::string ir_cache_prefix = "ir_cache";
  std::string ir_cache_dir = ".cache";
  int64_t ir_cache_compress_min_bytes = 0;  // IR_CACHE_COMPRESS_MIN_BYTES: 0 = values stay plain

  int chunk_streams = 4;
  // EVENTS_MAXLEN: the events stream's bound (XADD MAXLEN ~), the window its readers can resume within.
  int64_t events_maxlen = 100000;
  // TASK_QUEUE_SHARDS: stream shards per task queue (cluster key schema only; 1 in standard mode).
  int task_queue_shards = 1;
  std::string consumer_name;
  int64_t visibility_timeout_ms = 30000;
  int64_t max_deliveries = 5;
  int compactor_loops = 2;  // COMPACTOR_LOOPS: consumer loops (threads) per compactor process
  int64_t dead_consumer_idle_ms = 3600000;

  std::string metrics_listen;
  std::string ingest_listen = "0.0.0.0:8080";
  int ingest_threads = 64;
  int ingest_org_max_workers = 56;  // INGEST_ORG_MAX_WORKERS, resolved (0: all but an eighth of ingest_threads)
  int64_t ingest_max_connections = 16000;  // INGEST_MAX_CONNECTIONS (0: no cap)
  // INGEST_MAX_QUEUED_ANSWER_BYTES: rows answered and not yet taken by their clients' sockets, per process
  int64_t ingest_max_queued_answer_bytes = 256 << 20;
  int64_t max_chunk_bytes = 1 << 20;
  int64_t max_body_bytes = 16 << 20;
  int64_t max_generation_bytes = 64 << 20;
  int64_t backpressure_lag = 200000;
  int64_t ingest_request_timeout_ms = 60000;  // INGEST_REQUEST_TIMEOUT: header time and body read wait
  int64_t ingest_wait_replicas = 0;       // INGEST_WAIT_REPLICAS: WAIT for this many replicas before 2xx
  int64_t ingest_wait_timeout_ms = 1000;  // INGEST_WAIT_TIMEOUT: how long that WAIT may take
  std::map<int64_t, std::string> ingest_tokens;  // org id -> bearer token
  std::vector<TaskApiToken> task_api_tokens;      // TASK_API_TOKENS (secrets: never logged)
  int64_t task_max_payload_bytes = 1 << 20;       // TASK_MAX_PAYLOAD_BYTES
  // Live streams (GET .../generations/{gen}/stream, GET .../events; components/live).
  int64_t live_keepalive_ms = 15000;            // LIVE_KEEPALIVE: ": keep-alive" on a quiet stream
  int64_t live_progress_ms = 1000;              // LIVE_PROGRESS_INTERVAL: "event: progress" at most this often
  int64_t live_max_buffered_bytes = 1 << 20;    // LIVE_MAX_BUFFERED_BYTES: per connection, not yet sent
  int64_t live_slow_reader_ms = 10000;          // LIVE_SLOW_READER_TIMEOUT: behind that long -> closed
  int64_t live_start_wait_ms = 30000;           // LIVE_START_WAIT: wait for a generation's first chunk
  int64_t live_restart_wait_ms = 60000;         // LIVE_RESTART_WAIT: a started-over one's, besides, per reset
  int64_t live_max_stream_age_ms = 0;           // LIVE_MAX_STREAM_AGE: end a stream after this long (0: never)
  int live_org_max_streams = 5000;              // LIVE_ORG_MAX_STREAMS: one organization's open streams, per process
  int64_t live_org_max_held_bytes = 128 << 20;  // LIVE_ORG_MAX_HELD_BYTES: one organization's watched text, per process
  std::vector<std::string> live_cors_origins;   // LIVE_CORS_ORIGINS: browser origins allowed to read streams

  std::vector<std::pair<std::string, int>> queues;  // name, weight
  int worker_concurrency = 4;
  int worker_prefetch = 32;  // most tasks a slot reads ahead, only while its tasks are short
  int task_max_attempts = 5;
  int64_t task_backoff_base_ms = 1000;
  int64_t task_backoff_cap_ms = 300000;
  // TASK_POLICY: per type, over the handler's own default policy and the three variables above.
  std::map<std::string, RetryPolicy> task_policies;
  int64_t task_result_ttl_s = 86400;
  std::vector<PeriodicTask> periodic_tasks;  // PERIODIC_TASKS
  std::vector<Schedule> schedules;           // SCHEDULES / SCHEDULES_FILE
  int64_t task_timeout_ms = 0;  // TASK_TIMEOUT: 0 = no timeout
  std::map<std::string, TaskLimit> task_limits;  // TASK_LIMITS: fleet-wide, per type
  std::map<std::string, int64_t> task_timeouts;  // TASK_TIMEOUTS: per type, over TASK_TIMEOUT (0 = none)
  int64_t task_timeout_grace_ms = 5000;
  int64_t webhook_timeout_ms = 10000;
  int64_t webhook_max_timeout_ms = 30000;  // WEBHOOK_MAX_TIMEOUT: caps WEBHOOK_TIMEOUT and payload timeout_ms
  // WEBHOOK_ALLOW_NETS / WEBHOOK_DENY_NETS as configured (validated CIDR lists; ip_nets.h parses and applies).
  std::string webhook_allow_nets;
  std::string webhook_deny_nets;
  std::string events_webhook_url;  // EVENTS_WEBHOOK_URL: "" = events are not forwarded
  std::vector<TaskRoute> task_routes;   // TASK_ROUTES, in the configured order
  std::string task_signing_secret;      // TASK_SIGNING_SECRET (secret: never logged)
  int64_t task_route_timeout_ms = 60000;  // TASK_ROUTE_TIMEOUT
  int64_t chunk_retention_ms = 7 * 24 * 3600 * 1000LL;

  // generation.run (queue-worker): the OpenAI-compatible provider.
  std::string provider_base_url;
  std::string provider_api_key;  // secret: never logged
  std::string provider_model;
  std::string provider_name;
  int64_t provider_connect_timeout_ms = 10000;
  int64_t provider_silence_timeout_s = 60;
  bool provider_retry_from_scratch = false;

  // streamfleet-admin (the admin web UI).
  std::string admin_listen = "0.0.0.0:8090";
  std::string admin_token;  // secret: never logged
  bool admin_insecure = false;
  int64_t admin_sample_interval_ms = 2000;

  bool redis_info_metrics = true;
  std::string log_level = "info";
  bool log_json = false;
};

// Reads a variable; tests pass their own lookup instead of the process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup ProcessEnv();

// Loads the configuration. default_metrics_listen is the per-process default of METRICS_LISTEN.
StatusOr<Config> LoadConfig(const EnvLookup& env, const std::string& default_metrics_listen);

// The process a configuration is loaded for. Each keeps only the secrets it uses: ingest the per-organization
// tokens, the admin UI its token, the queue-worker the provider's API key; a compactor holds none of them,
// so nothing it logs, dumps or leaks can contain them. kTool (streamfleetctl, tests) keeps everything.
enum class ProcessRole { kIngest, kCompactor, kWorker, kAdmin, kTool };
void KeepOnlySecretsOf(ProcessRole role, Config& c);

// Parses "250ms", "30s", "5m", "1h" or a bare integer meaning `bare_unit_ms` each.
StatusOr<int64_t> ParseDurationMs(const std::string& text, int64_t bare_unit_ms);

// Parses a point in time: unix seconds ("1795000000") or ISO-8601 UTC ("2026-11-25T18:00:00Z", optional
// ".mmm"), into unix milliseconds.
StatusOr<int64_t> ParseTimeMs(const std::string& text);

// Parses a DATABASE_URL-independent "redis://[:password@]host[:port][/db]", or a comma-separated list of
// nodes "redis://[user:pass@]h1:p1,h2:p2[/db]" (the cluster seeds: every node lands in `seeds`, the first
// one also in host/port). Does not set `cluster`: REDIS_CLUSTER does.
StatusOr<RedisConfig> ParseRedisUrl(const std::string& url);

// Splits "a,b,,c" into its non-empty items ("a", "b", "c"): the list syntax of every list variable.
std::vector<std::string> SplitList(const std::string& text, char sep);

// LIVE_CORS_ORIGINS: "*" or origins scheme://host[:port] (http or https), comma-separated, each in the form a
// browser's Origin header has (spaces around an entry and a trailing slash dropped, lowercased, a default port
// dropped). kInvalidArgument naming the first entry that is not one.
StatusOr<std::vector<std::string>> ParseCorsOrigins(const std::string& text);

// Splits "host:port" (host may be empty or "0.0.0.0").
StatusOr<std::pair<std::string, int>> ParseListen(const std::string& text);

}  // namespace streamfleet
