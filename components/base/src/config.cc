#include "streamfleet/base/config.h"

#include "streamfleet/base/ip_nets.h"
#include "streamfleet/base/text.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <cctype>
#include <charconv>
#include <fstream>
#include <iterator>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

namespace streamfleet {

const std::vector<ConfigVar>& ConfigVars() {
  static const std::vector<ConfigVar> vars = {
      {"REDIS_URL", "", "redis://[[user]:password@]host[:port][/db] (rediss:// for TLS; an IPv6 host in brackets, [::1]:6379); user and password percent-decoded (a ':', '@' or '%' in them written %3A, %40, %25, as redis-py and ioredis read it); when set it wins over REDIS_HOST/PORT/USERNAME/PASSWORD. With REDIS_CLUSTER=true a comma-separated list of seed nodes: redis://[user:pass@]h1:p1,h2:p2,..."},
      {"REDIS_TLS", "false", "true: TLS to Redis (as a rediss:// REDIS_URL does), certificate and host name verified"},
      {"REDIS_TLS_CA", "", "PEM file of the CA(s) to trust for Redis' certificate (empty: the system's trust store)"},
      {"REDIS_TLS_CERT", "", "client certificate (PEM) for Redis servers that require one (tls-auth-clients); with REDIS_TLS_KEY"},
      {"REDIS_TLS_KEY", "", "the client certificate's private key (PEM)"},
      {"REDIS_TLS_SERVER_NAME", "", "name sent as SNI and verified in Redis' certificate (empty: the host connected to)"},
      {"REDIS_TLS_INSECURE", "false", "true: no certificate or name verification (development only; logged as a warning)"},
      {"REDIS_SENTINELS", "", "Redis Sentinel: host:port of the sentinels, comma-separated; the master is asked of them at every (re)connect and a failover is followed (REDIS_HOST/PORT are then unused)"},
      {"REDIS_SENTINEL_MASTER", "", "the master's name the sentinels monitor (required with REDIS_SENTINELS)"},
      {"REDIS_SENTINEL_USERNAME", "", "ACL user for the sentinels themselves (empty: the default user)"},
      {"REDIS_SENTINEL_PASSWORD", "", "password for the sentinels themselves (empty: none)"},
      {"REDIS_CLUSTER", "false", "true: Redis Cluster mode (commands routed by key slot, MOVED/ASK followed, failover tracked; REDIS_DB must be 0; docs/redis-cluster.md)"},
      {"REDIS_HOST", "127.0.0.1", "Redis host"},
      {"REDIS_PORT", "6379", "Redis port"},
      {"REDIS_USERNAME", "", "Redis ACL user for AUTH (empty: the default user; with no password, AUTH with an empty one, as a nopass user takes); see deploy/redis/users.acl"},
      {"REDIS_PASSWORD", "", "Redis AUTH password (empty: no AUTH)"},
      {"REDIS_DB", "0", "Redis logical database"},
      {"REDIS_TIMEOUT", "5s", "Redis connect/command timeout (the connect's includes looking the host name up; blocking reads add their BLOCK time)"},
      {"DATABASE_URL", "sqlite:streamfleet.db", "sqlite:PATH (embedded default) or postgresql://user:pass@host:port/db"},
      {"STREAMFLEET_KEY_PREFIX", "app:scenario_planning", "prefix of the generation buffer keys users inspect"},
      {"STREAMFLEET_STREAM_PREFIX", "streamfleet", "prefix of the fleet's streams, deadlines and dead letters"},
      {"STREAMFLEET_KEY_SCHEMA", "standard", "standard (the documented key names: app:scenario_planning:org:...) | cluster (hash-tagged per generation); defaults to cluster when REDIS_CLUSTER=true, where standard is refused"},
      {"GENERATION_CHUNK_TTL", "86400", "seconds a generation buffer lives, set when the buffer is created"},
      {"GENERATION_OWNER_TTL", "2592000", "seconds Redis remembers which organization a generation id belongs to (first use wins; the SQL row keeps its owner for good)"},
      {"GENERATION_CHUNK_STORAGE", "redis", "redis | db | both: where chunks are kept besides the final row"},
      {"CHUNK_COMPRESSION", "zstd", "zstd | off: chunk data of at least CHUNK_COMPRESSION_MIN_BYTES is zstd-compressed in the chunk streams and buffer lists when that saves an eighth or more (docs/storage.md; readers of this build read both forms)"},
      {"CHUNK_COMPRESSION_MIN_BYTES", "1024", "smallest chunk ingest (and generation.run) compresses; below it compressing does not pay"},
      {"CHUNK_BATCHES", "true", "true: a request of several chunks whose seqs ingest (or generation.run) assigns, without idempotency keys, goes in ChunkBatch entries (field b; docs/ARCHITECTURE.md \"Chunk entries\"); false during a rollout from a release without them, whose consumers dead-letter such entries"},
      {"ARTIFACT_STORE", "", "s3://BUCKET[/PREFIX]: an S3-compatible bucket for compacted texts larger than ARTIFACT_INLINE_MAX_BYTES (the row keeps a reference and the SHA-256; docs/storage.md); empty = every text stays in its row"},
      {"ARTIFACT_STORE_ENDPOINT", "", "the store's endpoint, http(s)://HOST[:PORT] (MinIO, GCS, ...); empty = https://s3.{ARTIFACT_STORE_REGION}.amazonaws.com"},
      {"ARTIFACT_STORE_REGION", "us-east-1", "the region requests are signed for (AWS Signature V4)"},
      {"ARTIFACT_STORE_CREDENTIALS_FILE", "", "an AWS shared credentials file ([default] aws_access_key_id, aws_secret_access_key, aws_session_token), read at every request (a rotated Secret is picked up); AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY win when set"},
      {"ARTIFACT_STORE_TIMEOUT", "30s", "the longest one object store request may take"},
      {"ARTIFACT_INLINE_MAX_BYTES", "1048576", "texts up to this size stay in the row's compacted column; larger ones go to ARTIFACT_STORE"},
      {"AWS_ACCESS_KEY_ID", "", "the object store's access key id (never logged)"},
      {"AWS_SECRET_ACCESS_KEY", "", "the object store's secret key (never logged; mount from a Secret)"},
      {"AWS_SESSION_TOKEN", "", "a session token for temporary credentials (never logged)"},
      {"GENERATION_IDLE_TIMEOUT", "30s", "finalize a generation after this long without a chunk (bare number = seconds)"},
      {"GENERATION_LLEN_ALERT_THRESHOLD", "1000", "buffers longer than this are counted and logged once"},
      {"GENERATION_MAX_CHUNKS", "100000", "largest seq+1 accepted for one generation (bounds the dedupe bitmap)"},
      {"GENERATION_DELETE_AFTER_COMPACT", "false", "after the row is committed, expire the buffer after the grace period"},
      {"GENERATION_DELETE_GRACE", "300s", "how long a compacted buffer is kept for late stragglers when deleting"},
      {"IR_CACHE_TTL", "604800", "cache TTL in seconds, Redis and filesystem tiers (0 disables both: every lookup computes)"},
      {"IR_CACHE_PREFIX", "ir_cache", "cache key prefix: keys {prefix}:{name}_{hash8}, files IR_CACHE_DIR/{prefix}/"},
      {"IR_CACHE_DIR", ".cache", "root of the cache's filesystem tier (per host; empty disables the tier)"},
      {"IR_CACHE_COMPRESS_MIN_BYTES", "0", "cache values of at least this many bytes are kept zstd-compressed in Redis, under {key}:z (0 = never; turn it on once every process runs a build that reads them, docs/storage.md)"},
      {"CHUNK_STREAMS", "4", "number of chunk streams; a generation always maps to the same one"},
      {"EVENTS_MAXLEN", "100000", "the events stream keeps about this many entries (XADD MAXLEN ~): how far back GET /v1/orgs/{org}/events resumes, and how long the webhook forwarder (EVENTS_WEBHOOK_URL) may fall behind before events are lost. Every process that writes events trims to its own value (ingest, compactor, queue-worker, streamfleet-admin, streamfleetctl compact-generation / replay-generation), so set it fleet-wide (the shared ConfigMap)"},
      {"TASK_QUEUE_SHARDS", "(1; 4 with the cluster key schema: REDIS_CLUSTER=true or STREAMFLEET_KEY_SCHEMA=cluster)", "stream shards per task queue in cluster mode, so a queue spreads over the masters; must be 1 in standard mode (one {prefix}:queue:{name} stream per queue)"},
      {"CONSUMER_NAME", "", "consumer name in the groups (default hostname-pid; use the pod name on Kubernetes)"},
      {"VISIBILITY_TIMEOUT", "30s", "entries pending this long on a consumer are claimed by another"},
      {"MAX_DELIVERIES", "5", "an entry delivered more often than this goes to the dead-letter stream"},
      {"DEAD_CONSUMER_IDLE", "1h", "consumers idle this long with nothing pending are removed from the group"},
      {"METRICS_LISTEN", "(per process)", "/metrics, /healthz, /readyz; 0.0.0.0:9100 ingest, :9101 compactor, :9102 queue-worker, :9103 admin"},
      {"INGEST_LISTEN", "0.0.0.0:8080", "the ingest HTTP API"},
      {"INGEST_THREADS", "64", "ingest HTTP worker threads (concurrent keep-alive connections)"},
      {"INGEST_ORG_MAX_WORKERS", "0", "most worker threads one organization's requests may hold at once (a streamed upload holds one while its body lasts); above it 429 too_many_requests; 0 = all but an eighth of INGEST_THREADS (at least one is kept for the other organizations)"},
      {"INGEST_MAX_CONNECTIONS", "16000", "most connections (requests' and live streams') one ingest process holds open; past it a new one is answered 503 too_many_connections (Retry-After: 1) and closed, so a flood of connections cannot take the descriptors and memory every other client needs; 0 = no cap. Ingest raises its soft file descriptor limit to the hard one at start and warns when that is below this"},
      {"INGEST_MAX_QUEUED_ANSWER_BYTES", "268435456", "most bytes of generation rows (GET /v1/orgs/{org}/generations/{gen}) one ingest process holds for clients that have not read them yet (a row stays in memory until the socket has taken all of it); an answer past it is 503 answer_budget_exhausted, and past half of it for one organization 429 too_many_requests (both with Retry-After: 5), instead of being queued. An answer is always served when none is waiting, so a row larger than this is served one at a time. Keep it well below the process's memory limit"},
      {"INGEST_MAX_CHUNK_BYTES", "1048576", "largest chunk accepted (413 above)"},
      {"INGEST_MAX_BODY_BYTES", "16777216", "largest request body accepted (413 above)"},
      {"INGEST_MAX_GENERATION_BYTES", "67108864", "largest total size of one generation (413 above)"},
      {"INGEST_BACKPRESSURE_LAG", "200000", "consumer-group lag over the chunk streams (in entries: one per request of up to 64 KiB, docs/ARCHITECTURE.md \"Chunk entries\") above which ingest answers 503"},
      {"INGEST_WAIT_REPLICAS", "0", "ingest (and generation.run): answer 2xx only once this many replicas have the chunks (Redis WAIT); 503 when they do not within INGEST_WAIT_TIMEOUT (the client retries; appends are idempotent). 0: answer when the master has them (docs/deploy.md, High availability)"},
      {"INGEST_WAIT_TIMEOUT", "1s", "the longest INGEST_WAIT_REPLICAS waits for the replicas"},
      {"INGEST_REQUEST_TIMEOUT", "60s", "longest a client may take to send a request's headers, and the longest wait for body data (slow or stalled clients)"},
      {"LIVE_KEEPALIVE", "15s", "live streams (.../stream, .../events): a keep-alive comment on a stream quiet this long"},
      {"LIVE_PROGRESS_INTERVAL", "1s", "live generation streams: an event: progress at most this often while chunks arrive"},
      {"LIVE_MAX_BUFFERED_BYTES", "1048576", "live streams: most bytes waiting for one client; a reader that stays past it is closed (it resumes with Last-Event-ID)"},
      {"LIVE_SLOW_READER_TIMEOUT", "10s", "live streams: how long a reader may stay behind LIVE_MAX_BUFFERED_BYTES before it is closed"},
      {"LIVE_START_WAIT", "30s", "live generation streams: how long to wait for the first chunk of a generation not started yet"},
      {"LIVE_RESTART_WAIT", "60s", "live generation streams: how much longer than LIVE_START_WAIT to wait for the first chunk of a generation its producer started over (a retry's backoff), counted again from each reset"},
      {"LIVE_MAX_STREAM_AGE", "0", "live streams: end each stream after this long so clients reconnect (with Last-Event-ID) and spread over new replicas; 0 = never"},
      {"LIVE_ORG_MAX_HELD_BYTES", "134217728", "live streams: most text (as events) one organization's watched generations may hold in one ingest process; past it the streams of its most recently watched generations are closed with reason org_text_limit (they resume later), down to one generation, which is always served, so one organization's many large generations cannot take the memory every organization's requests need"},
      {"LIVE_ORG_MAX_STREAMS", "5000", "live streams: most streams (both routes) one organization may hold open on one ingest process; above it 429 too_many_streams, so one organization's tabs or scripts cannot take every connection and file descriptor"},
      {"LIVE_CORS_ORIGINS", "", "browser origins (scheme://host[:port], e.g. https://app.example.com; comma-separated, or *) allowed to read live streams with a signed link"},
      {"INGEST_TOKENS", "", "per-organization bearer tokens, \"ORG:TOKEN,ORG:TOKEN\"; empty = open (dev only)"},
      {"TASK_API_TOKENS", "", "ingest's task API (/v1/tasks): bearer tokens with scopes, \"TOKEN:enqueue+read,TOKEN:read\"; empty = open when INGEST_TOKENS is empty too (dev only), else the task API is off"},
      {"TASK_MAX_PAYLOAD_BYTES", "1048576", "largest task payload the task API accepts (413 above; at most 16 MiB)"},
      {"QUEUES", "critical:6,default:3,low:1", "queue-worker: queues and their weights (a busy low queue cannot starve critical)"},
      {"WORKER_CONCURRENCY", "4", "queue-worker: tasks run at once per process"},
      {"WORKER_PREFETCH", "32", "queue-worker: most tasks a slot reads (and acks) per round trip while its tasks finish in under 5 ms; 1 = one at a time"},
      {"TASK_MAX_ATTEMPTS", "5", "queue-worker: attempts before a task is dead-lettered (per type: TASK_POLICY)"},
      {"TASK_BACKOFF_BASE", "1s", "queue-worker: first retry delay; doubles per attempt, with jitter"},
      {"TASK_BACKOFF_CAP", "5m", "queue-worker: largest retry delay"},
      {"TASK_POLICY", "", "queue-worker: per-type overrides \"type=attempts/base_ms/cap_ms,...\""},
      {"TASK_RESULT_TTL", "86400", "seconds a task's status/result hash is kept, from enqueue (every producer: ctl, admin, ingest, workers) to its result (0 = not written at all)"},
      {"TASK_LIMITS", "", "queue-worker: fleet-wide limits per type \"type=max_running/per_second,...\" (0 = none), e.g. send_notifications=5/20; a task over a limit waits in the scheduled set (not an attempt)"},
      {"SCHEDULES", "", "queue-worker: cron schedules with payloads, a JSON array of {name, cron, type, payload?, queue?} (cron: 5 fields UTC, @daily, @every 30s); each occurrence fires once fleet-wide, missed ones once on return"},
      {"SCHEDULES_FILE", "", "queue-worker: a file holding the SCHEDULES JSON (instead of the variable; e.g. a mounted ConfigMap)"},
      {"PERIODIC_TASKS", "", "queue-worker: \"name=type@interval[@queue],...\" fired once per interval of Redis' clock fleet-wide, whatever the workers' clocks say (an enqueue that fails is tried again at the next housekeeping round)"},
      {"TASK_TIMEOUT", "0", "queue-worker: run time after which an attempt fails with reason timeout (0 = none; per type: TASK_TIMEOUTS)"},
      {"TASK_TIMEOUTS", "", "queue-worker: per-type timeouts \"type=duration,...\", e.g. webhook=30s,hash.sync=10m"},
      {"TASK_TIMEOUT_GRACE", "5s", "queue-worker: after a timeout, how long a handler that ignores cancellation is waited for before its thread is abandoned"},
      {"WEBHOOK_TIMEOUT", "10s", "queue-worker: default HTTP timeout of webhook tasks (payload timeout_ms overrides, up to WEBHOOK_MAX_TIMEOUT)"},
      {"TASK_ROUTES", "", "queue-worker: task types run by your own HTTP endpoints, \"type=URL,glob.*=URL\" (exact names first, then globs in order); docs/push-handlers.md"},
      {"TASK_SIGNING_SECRET", "", "queue-worker: HMAC-SHA256 key signing every TASK_ROUTES request (X-Streamfleet-Signature); empty = unsigned (never logged)"},
      {"TASK_ROUTE_TIMEOUT", "60s", "queue-worker: HTTP timeout of a TASK_ROUTES request when its type has no TASK_TIMEOUTS / TASK_TIMEOUT"},
      {"WEBHOOK_MAX_TIMEOUT", "30s", "queue-worker: longest HTTP timeout a webhook task gets; a larger payload timeout_ms (or WEBHOOK_TIMEOUT) is cut to this"},
      {"WEBHOOK_ALLOW_NETS", "", "queue-worker: comma-separated CIDRs (IPv4/IPv6) webhooks may connect to despite the built-in refusals: loopback 127.0.0.0/8, ::1 (and 0.0.0.0/8, ::), link-local 169.254.0.0/16, fe80::/10, cloud metadata 169.254.169.254, fd00:ec2::254. A net opens a built-in refusal only if it is at least as narrow (127.0.0.0/8 opens loopback, 0.0.0.0/0 opens nothing built in); other addresses are allowed anyway"},
      {"WEBHOOK_DENY_NETS", "", "queue-worker: comma-separated CIDRs (IPv4/IPv6) webhooks must never connect to; beats WEBHOOK_ALLOW_NETS. Checked on the address actually connected to (DNS rebinding cannot bypass it); a refusal dead-letters the task"},
      {"EVENTS_WEBHOOK_URL", "", "queue-worker: POST each generation.compacted event here as a webhook task (generation.started and generation.failed are not forwarded; the task names this setting rather than holding the URL, and is signed when TASK_SIGNING_SECRET is set); empty = off"},
      {"CHUNK_RETENTION", "168h", "queue-worker: generation_chunks.purge deletes chunk rows older than this (payload older_than overrides), archiving them to ARTIFACT_STORE first when set"},
      {"PROVIDER_BASE_URL", "https://api.openai.com/v1", "queue-worker generation.run: OpenAI-compatible API base; POST {base}/chat/completions"},
      {"PROVIDER_API_KEY", "", "queue-worker generation.run: bearer token for the provider (never logged; mount from a Secret)"},
      {"PROVIDER_MODEL", "gpt-4o-mini", "queue-worker generation.run: model when the request names none"},
      {"PROVIDER_NAME", "openai-compatible", "queue-worker generation.run: the provider name written to metadata.provider"},
      {"PROVIDER_CONNECT_TIMEOUT", "10s", "queue-worker generation.run: TCP+TLS connect timeout; a failure is retried (TASK_POLICY)"},
      {"PROVIDER_SILENCE_TIMEOUT", "60s", "queue-worker generation.run: no byte for this long aborts the stream (whole seconds, at least 1s)"},
      {"PROVIDER_RETRY_FROM_SCRATCH", "false", "queue-worker generation.run: a stream cut mid-way restarts from seq 0 (true) instead of failing the generation"},
      {"COMPACTOR_LOOPS", "2", "compactor: consumer loops per process (threads, each its own consumer CONSUMER_NAME, CONSUMER_NAME-2, ...); a loop mostly waits on Redis and the database"},
      {"REDIS_INFO_METRICS", "true", "compactor: export Redis INFO metrics (hit rate, evictions, memory); keep it on one process kind"},
      {"ADMIN_LISTEN", "0.0.0.0:8090", "streamfleet-admin: the admin web UI and its JSON API (docs/admin-ui.md)"},
      {"ADMIN_TOKEN", "", "streamfleet-admin: the admin token (login form, or Authorization: Bearer); empty = refuse to start unless ADMIN_INSECURE"},
      {"ADMIN_INSECURE", "false", "streamfleet-admin: start without ADMIN_TOKEN, every page and action open (local development only)"},
      {"ADMIN_SAMPLE_INTERVAL", "2s", "streamfleet-admin: how often the overview samples Redis for its throughput/latency charts"},
      {"LOG_LEVEL", "info", "trace | debug | info | warn | error"},
      {"LOG_FORMAT", "text", "text | json: one JSON object per line (ts, level, process, msg, org/generation/task/entry ids)"},
  };
  return vars;
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

namespace {

std::string DefaultOf(const std::string& name) {
  for (const auto& v : ConfigVars()) {
    if (name == v.name) return v.default_value;
  }
  return "";
}

class Reader {
 public:
  explicit Reader(const EnvLookup& env) : env_(env) {}

  std::string Str(const std::string& name) {
    auto v = env_(name);
    return v ? *v : DefaultOf(name);
  }
  bool IsSet(const std::string& name) { return env_(name).has_value(); }

  int64_t Int(const std::string& name, int64_t min, int64_t max) {
    std::string s = Str(name);
    int64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
      Fail(name, s, "an integer");
      return 0;
    }
    if (out < min || out > max) {
      Fail(name, s, "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    return out;
  }
  int64_t Duration(const std::string& name, int64_t bare_unit_ms, int64_t min_ms,
                   int64_t max_ms = std::numeric_limits<int64_t>::max()) {
    std::string s = Str(name);
    auto d = ParseDurationMs(s, bare_unit_ms);
    if (!d.ok() || *d < min_ms || *d > max_ms) {
      std::string range = "at least " + std::to_string(min_ms) + "ms";
      if (max_ms != std::numeric_limits<int64_t>::max()) range += ", at most " + std::to_string(max_ms) + "ms";
      Fail(name, s, "a duration like 500ms, 30s, 5m (" + range + ")");
      return 0;
    }
    return *d;
  }
  bool Bool(const std::string& name) {
    std::string s = Str(name);
    if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
    if (s == "0" || s == "false" || s == "no" || s == "off" || s.empty()) return false;
    Fail(name, s, "true or false");
    return false;
  }
  // A list variable through its parser (task_specs.h), whose error says what was expected and which item
  // was not. Empty on error.
  template <typename T>
  T Spec(const std::string& name, StatusOr<T> (*parse)(const std::string&)) {
    std::string s = Str(name);
    auto parsed = parse(s);
    if (!parsed.ok()) {
      Fail(name, s, parsed.status().message());
      return T{};
    }
    return std::move(parsed).value();
  }
  void Fail(const std::string& name, const std::string& value, const std::string& expected) {
    if (error_.ok()) {
      error_ = Status::InvalidArgument(name + "=\"" + value + "\" is malformed: expected " + expected);
    }
  }
  const Status& error() const { return error_; }

 private:
  const EnvLookup& env_;
  Status error_;
};

std::string DefaultConsumerName() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host[0] ? host : "consumer") + "-" + std::to_string(getpid());
}

}  // namespace

std::vector<std::string> SplitList(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(sep, pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// A browser's Origin header is scheme://host[:port]: lowercase, no default port, no slash. It is compared
// byte for byte with the entries, so an entry is brought to that form, and one that cannot match any Origin
// is refused at start: it used to be kept and never matched, with no error and no CORS.
StatusOr<std::vector<std::string>> ParseCorsOrigins(const std::string& text) {
  std::vector<std::string> out;
  for (std::string item : SplitList(text, ',')) {
    item.erase(0, item.find_first_not_of(" \t\r\n"));
    item.erase(item.find_last_not_of(" \t\r\n") + 1);
    if (item.empty() || item == "*") {
      if (!item.empty()) out.push_back(item);
      continue;
    }
    Status bad = Status::InvalidArgument(
        "* or origins scheme://host[:port] with scheme http or https and no path (https://app.example.com, "
        "http://localhost:3000), comma-separated; \"" + item + "\" is not one");
    std::string origin = item;
    if (origin.ends_with('/')) origin.pop_back();
    for (auto& ch : origin) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t sep = origin.find("://");
    std::string scheme = origin.substr(0, sep);
    if (sep == std::string::npos || (scheme != "http" && scheme != "https")) return bad;
    std::string_view authority = std::string_view(origin).substr(sep + 3);
    // The host: a bracketed IPv6 literal, or a name or IPv4 address (an international name as punycode, as
    // browsers send it).
    size_t host_end = 0;
    if (authority.starts_with('[')) {
      host_end = authority.find(']');
      if (host_end == std::string_view::npos || host_end < 2) return bad;
      for (char ch : authority.substr(1, host_end - 1)) {
        if (!std::isxdigit(static_cast<unsigned char>(ch)) && ch != ':' && ch != '.') return bad;
      }
      ++host_end;
    } else {
      auto host_char = [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' || ch == '_';
      };
      while (host_end < authority.size() && host_char(authority[host_end])) ++host_end;
      if (host_end == 0) return bad;
    }
    std::string normalized = scheme + "://" + std::string(authority.substr(0, host_end));
    // Only ":port" may follow: a path, a query or user@ is not part of an origin.
    if (std::string_view rest = authority.substr(host_end); !rest.empty()) {
      int port = 0;
      auto [end, ec] = std::from_chars(rest.data() + 1, rest.data() + rest.size(), port);
      if (rest[0] != ':' || ec != std::errc() || end != rest.data() + rest.size() || port < 1 || port > 65535) {
        return bad;
      }
      if (port != (scheme == "http" ? 80 : 443)) normalized += ":" + std::to_string(port);
    }
    out.push_back(std::move(normalized));
  }
  return out;
}

StatusOr<int64_t> ParseTimeMs(const std::string& text) {
  Status bad = Status::InvalidArgument("\"" + text +
                                       "\" is not unix seconds or ISO-8601 (2026-11-25T18:00:00Z, "
                                       "2026-11-25T19:00:00.5+01:00)");
  auto digit = [&](size_t i) { return i < text.size() && text[i] >= '0' && text[i] <= '9'; };
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    if (text.size() > 12) return bad;
    return std::stoll(text) * 1000;
  }
  // Fixed digits at fixed places, read by hand: sscanf's %d would also take signs and spaces.
  auto number = [&](size_t at, size_t len, int* out) {
    *out = 0;
    for (size_t i = at; i < at + len; ++i) {
      if (!digit(i)) return false;
      *out = *out * 10 + (text[i] - '0');
    }
    return true;
  };
  std::tm tm{};
  if (text.size() < 20 || !number(0, 4, &tm.tm_year) || text[4] != '-' || !number(5, 2, &tm.tm_mon) ||
      text[7] != '-' || !number(8, 2, &tm.tm_mday) || text[10] != 'T' || !number(11, 2, &tm.tm_hour) ||
      text[13] != ':' || !number(14, 2, &tm.tm_min) || text[16] != ':' || !number(17, 2, &tm.tm_sec)) {
    return bad;
  }
  size_t i = 19;
  int ms = 0;
  if (text[i] == '.') {
    // 1 to 9 fraction digits (Python's isoformat gives 6, JavaScript's toISOString 3): milliseconds kept.
    size_t digits = 0;
    for (++i; digit(i); ++i, ++digits) {
      if (digits < 3) ms = ms * 10 + (text[i] - '0');
    }
    if (digits == 0 || digits > 9) return bad;
    for (; digits < 3; ++digits) ms *= 10;
  }
  // "Z", or an offset "+HH:MM" / "-HH:MM" (Carbon's toIso8601String, PHP's DATE_ATOM, Python's isoformat).
  int64_t offset_s = 0;
  if (i + 1 == text.size() && text[i] == 'Z') {
    // UTC
  } else if (i + 6 == text.size() && (text[i] == '+' || text[i] == '-') && text[i + 3] == ':') {
    int oh = 0, om = 0;
    if (!number(i + 1, 2, &oh) || !number(i + 4, 2, &om) || oh > 23 || om > 59) return bad;
    offset_s = (text[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  } else {
    return bad;
  }
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return bad;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (static_cast<int64_t>(timegm(&tm)) - offset_s) * 1000 + ms;
}

StatusOr<int64_t> ParseDurationMs(const std::string& text, int64_t bare_unit_ms) {
  if (text.empty()) return Status::InvalidArgument("empty duration");
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 15) return Status::InvalidArgument("bad duration: " + text);
  int64_t n = std::stoll(text.substr(0, i));
  std::string unit = text.substr(i);
  int64_t unit_ms = 0;
  if (unit.empty()) {
    unit_ms = bare_unit_ms;
  } else if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "s") {
    unit_ms = 1000;
  } else if (unit == "m") {
    unit_ms = 60000;
  } else if (unit == "h") {
    unit_ms = 3600000;
  } else if (unit == "d") {
    unit_ms = 86400000;
  } else {
    return Status::InvalidArgument("bad duration unit in: " + text);
  }
  // 15 digits of hours do not fit in int64 milliseconds (signed overflow: UBSan in fuzz/fuzz_config).
  if (unit_ms > 0 && n > INT64_MAX / unit_ms) return Status::InvalidArgument("duration too large: " + text);
  return n * unit_ms;
}

StatusOr<RedisConfig> ParseRedisUrl(const std::string& url) {
  RedisConfig rc;
  std::string rest;
  if (url.rfind("redis://", 0) == 0) {
    rest = url.substr(8);
  } else if (url.rfind("rediss://", 0) == 0) {
    rest = url.substr(9);
    rc.tls.enabled = true;  // TLS, verified (REDIS_TLS_CA etc. say against what)
  } else {
    return Status::InvalidArgument("expected redis://... or rediss://...");
  }
  auto at = rest.rfind('@');
  if (at != std::string::npos) {
    std::string auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    // redis://user:password@host (ACL user), redis://:password@host or redis://password@host (default user).
    // Percent-decoded, as redis-py's and ioredis' URLs are (the fleet's clients read the same REDIS_URL): a
    // password with ':', '@' or '%' is written %3A, %40, %25. A '%' not followed by two hex digits stays.
    auto colon = auth.find(':');
    rc.password = UrlDecode(colon == std::string::npos ? auth : auth.substr(colon + 1), false);
    if (colon != std::string::npos) rc.username = UrlDecode(auth.substr(0, colon), false);
  }
  auto slash = rest.find('/');
  if (slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), rc.db);
      if (ec != std::errc() || p != db.data() + db.size() || rc.db < 0) {
        return Status::InvalidArgument("bad database number in redis url");
      }
    }
  }
  // "h1:p1,h2:p2": every node is a seed; the first is also host/port (what a single-node client uses).
  std::vector<std::string> nodes = SplitList(rest, ',');
  if (nodes.empty()) return Status::InvalidArgument("missing host in redis url");
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::string host = nodes[i];
    int port = 6379;
    // An IPv6 address is written in brackets (RFC 3986): "[::1]" or "[::1]:6380".
    size_t search_from = 0;
    if (!host.empty() && host[0] == '[') {
      auto close = host.find(']');
      if (close == std::string::npos || (close + 1 < host.size() && host[close + 1] != ':')) {
        return Status::InvalidArgument("bad IPv6 host in redis url (\"[address]:port\")");
      }
      search_from = close;
    }
    auto colon = host.find(':', search_from);
    if (search_from == 0) colon = host.rfind(':');
    if (colon != std::string::npos) {
      std::string port_s = host.substr(colon + 1);
      host = host.substr(0, colon);
      auto [p, ec] = std::from_chars(port_s.data(), port_s.data() + port_s.size(), port);
      if (ec != std::errc() || p != port_s.data() + port_s.size() || port <= 0 || port > 65535) {
        return Status::InvalidArgument("bad port in redis url");
      }
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) return Status::InvalidArgument("missing host in redis url");
    if (i == 0) {
      rc.host = host;
      rc.port = port;
    }
    rc.seeds.push_back(host + ":" + std::to_string(port));
  }
  return rc;
}

StatusOr<std::pair<std::string, int>> ParseListen(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("expected host:port");
  std::string host = text.substr(0, colon);
  std::string port_s = text.substr(colon + 1);
  int port = 0;
  auto [p, ec] = std::from_chars(port_s.data(), port_s.data() + port_s.size(), port);
  if (port_s.empty() || ec != std::errc() || p != port_s.data() + port_s.size() || port < 0 || port > 65535) {
    return Status::InvalidArgument("bad port in " + text);
  }
  if (host.empty()) host = "0.0.0.0";
  return std::make_pair(host, port);
}

namespace {

// The Redis connection (REDIS_*).
void LoadRedis(Reader& r, Config& c) {
  if (r.IsSet("REDIS_URL") && !r.Str("REDIS_URL").empty()) {
    auto rc = ParseRedisUrl(r.Str("REDIS_URL"));
    if (!rc.ok()) {
      r.Fail("REDIS_URL", RedactUrl(r.Str("REDIS_URL")), "redis[s]://[[user]:password@]host[:port][/db] (" + rc.status().message() + ")");
    } else {
      c.redis = *rc;
    }
  } else {
    c.redis.host = r.Str("REDIS_HOST");
    c.redis.port = static_cast<int>(r.Int("REDIS_PORT", 1, 65535));
    c.redis.username = r.Str("REDIS_USERNAME");
    c.redis.password = r.Str("REDIS_PASSWORD");
    c.redis.db = static_cast<int>(r.Int("REDIS_DB", 0, 1 << 20));
    if (c.redis.host.empty()) r.Fail("REDIS_HOST", "", "a host name");
  }
  c.redis.cluster = r.Bool("REDIS_CLUSTER");
  if (r.Bool("REDIS_TLS")) c.redis.tls.enabled = true;
  c.redis.tls.ca_file = r.Str("REDIS_TLS_CA");
  c.redis.tls.cert_file = r.Str("REDIS_TLS_CERT");
  c.redis.tls.key_file = r.Str("REDIS_TLS_KEY");
  c.redis.tls.server_name = r.Str("REDIS_TLS_SERVER_NAME");
  c.redis.tls.insecure = r.Bool("REDIS_TLS_INSECURE");
  if (c.redis.tls.cert_file.empty() != c.redis.tls.key_file.empty()) {
    r.Fail(c.redis.tls.cert_file.empty() ? "REDIS_TLS_CERT" : "REDIS_TLS_KEY", "", "set with its pair (REDIS_TLS_CERT and REDIS_TLS_KEY)");
  }
  c.redis.sentinel.nodes = SplitList(r.Str("REDIS_SENTINELS"), ',');
  c.redis.sentinel.master = r.Str("REDIS_SENTINEL_MASTER");
  c.redis.sentinel.username = r.Str("REDIS_SENTINEL_USERNAME");
  c.redis.sentinel.password = r.Str("REDIS_SENTINEL_PASSWORD");
  if (!c.redis.sentinel.nodes.empty()) {
    if (c.redis.sentinel.master.empty()) r.Fail("REDIS_SENTINEL_MASTER", "", "the master name the sentinels monitor");
    if (c.redis.cluster) r.Fail("REDIS_SENTINELS", r.Str("REDIS_SENTINELS"), "unset with REDIS_CLUSTER=true");
    for (const auto& n : c.redis.sentinel.nodes) {
      auto hp = ParseListen(n);
      if (!hp.ok() || hp->second == 0) r.Fail("REDIS_SENTINELS", n, "host:port of each sentinel");
    }
  }
  if (!c.redis.tls.enabled && (!c.redis.tls.ca_file.empty() || !c.redis.tls.cert_file.empty())) {
    r.Fail("REDIS_TLS", "false", "true (or a rediss:// URL) when REDIS_TLS_CA / REDIS_TLS_CERT are set");
  }
  if (c.redis.seeds.empty()) c.redis.seeds.push_back(c.redis.host + ":" + std::to_string(c.redis.port));
  if (c.redis.cluster && c.redis.db != 0) {
    // Redis Cluster has only database 0 (SELECT fails there).
    r.Fail(r.IsSet("REDIS_URL") ? "REDIS_URL" : "REDIS_DB", std::to_string(c.redis.db),
           "database 0 with REDIS_CLUSTER=true (a cluster has no other database)");
  }
  if (!c.redis.cluster && c.redis.seeds.size() > 1) {
    r.Fail("REDIS_URL", RedactUrl(r.Str("REDIS_URL")), "one node unless REDIS_CLUSTER=true");
  }
  // The Redis clients keep their timeouts in int milliseconds: a day is far beyond any sane timeout.
  int64_t timeout = r.Duration("REDIS_TIMEOUT", 1000, 10, 86400000);
  c.redis.connect_timeout_ms = static_cast<int>(timeout);
  c.redis.command_timeout_ms = static_cast<int>(timeout);
}

// Where the data lives: the database URL, key and stream prefixes, the key schema.
void LoadStorage(Reader& r, Config& c) {
  c.database_url = r.Str("DATABASE_URL");
  if (c.database_url.rfind("sqlite:", 0) != 0 && c.database_url.rfind("postgresql://", 0) != 0 &&
      c.database_url.rfind("postgres://", 0) != 0) {
    r.Fail("DATABASE_URL", RedactUrl(c.database_url), "sqlite:PATH or postgresql://...");
  }
  c.key_prefix = r.Str("STREAMFLEET_KEY_PREFIX");
  c.stream_prefix = r.Str("STREAMFLEET_STREAM_PREFIX");
  if (c.key_prefix.empty()) r.Fail("STREAMFLEET_KEY_PREFIX", "", "a non-empty prefix");
  if (c.stream_prefix.empty()) r.Fail("STREAMFLEET_STREAM_PREFIX", "", "a non-empty prefix");
  // A cluster needs the hash-tagged schema (a script's keys must share a slot): it is the default there,
  // and asking for the standard one is a contradiction, not something to fall back from silently.
  std::string schema = r.IsSet("STREAMFLEET_KEY_SCHEMA") ? r.Str("STREAMFLEET_KEY_SCHEMA")
                                                         : (c.redis.cluster ? "cluster" : "standard");
  if (c.redis.cluster && schema == "standard") {
    r.Fail("STREAMFLEET_KEY_SCHEMA", schema, "cluster when REDIS_CLUSTER=true (multi-key scripts need hash tags)");
  } else if (schema == "standard") {
    c.key_schema = KeySchemaMode::kStandard;
  } else if (schema == "cluster") {
    c.key_schema = KeySchemaMode::kCluster;
  } else {
    r.Fail("STREAMFLEET_KEY_SCHEMA", schema, "standard or cluster");
  }
}

// The chunk path's generations (GENERATION_*) and the cache of compacted ones (IR_CACHE_*).
void LoadGenerations(Reader& r, Config& c) {
  c.chunk_ttl_s = r.Int("GENERATION_CHUNK_TTL", 1, int64_t{1} << 31);
  c.owner_ttl_s = r.Int("GENERATION_OWNER_TTL", 1, int64_t{1} << 31);
  std::string storage = r.Str("GENERATION_CHUNK_STORAGE");
  if (storage == "redis") {
    c.chunk_storage = ChunkStorage::kRedis;
  } else if (storage == "db") {
    c.chunk_storage = ChunkStorage::kDb;
  } else if (storage == "both") {
    c.chunk_storage = ChunkStorage::kBoth;
  } else {
    r.Fail("GENERATION_CHUNK_STORAGE", storage, "redis, db or both");
  }
  std::string compression = r.Str("CHUNK_COMPRESSION");
  if (compression == "zstd" || compression == "off") {
    c.chunk_compression = compression == "zstd";
  } else {
    r.Fail("CHUNK_COMPRESSION", compression, "zstd or off");
  }
  c.chunk_compression_min_bytes = r.Int("CHUNK_COMPRESSION_MIN_BYTES", 1, int64_t{1} << 30);
  c.chunk_batches = r.Bool("CHUNK_BATCHES");
  std::string store = r.Str("ARTIFACT_STORE");
  if (!store.empty()) {
    std::string rest = store.rfind("s3://", 0) == 0 ? store.substr(5) : "";
    auto slash = rest.find('/');
    c.artifact_bucket = rest.substr(0, slash);
    c.artifact_prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!c.artifact_prefix.empty() && c.artifact_prefix.back() == '/') c.artifact_prefix.pop_back();
    if (c.artifact_bucket.empty() || c.artifact_bucket.find_first_of(" ?#") != std::string::npos) {
      r.Fail("ARTIFACT_STORE", store, "s3://BUCKET or s3://BUCKET/PREFIX");
    }
  }
  c.artifact_store_endpoint = r.Str("ARTIFACT_STORE_ENDPOINT");
  if (!c.artifact_store_endpoint.empty() && c.artifact_store_endpoint.rfind("http://", 0) != 0 &&
      c.artifact_store_endpoint.rfind("https://", 0) != 0) {
    r.Fail("ARTIFACT_STORE_ENDPOINT", c.artifact_store_endpoint, "http://HOST[:PORT] or https://HOST[:PORT]");
  }
  c.artifact_store_region = r.Str("ARTIFACT_STORE_REGION");
  c.artifact_store_credentials_file = r.Str("ARTIFACT_STORE_CREDENTIALS_FILE");
  c.artifact_store_timeout_ms = r.Duration("ARTIFACT_STORE_TIMEOUT", 1000, 100, 3600000);
  c.artifact_inline_max_bytes = r.Int("ARTIFACT_INLINE_MAX_BYTES", 0, int64_t{1} << 40);
  c.aws_access_key_id = r.Str("AWS_ACCESS_KEY_ID");
  c.aws_secret_access_key = r.Str("AWS_SECRET_ACCESS_KEY");
  c.aws_session_token = r.Str("AWS_SESSION_TOKEN");
  c.idle_timeout_ms = r.Duration("GENERATION_IDLE_TIMEOUT", 1000, 1);
  c.llen_alert_threshold = r.Int("GENERATION_LLEN_ALERT_THRESHOLD", 1, int64_t{1} << 40);
  c.max_chunks_per_generation = r.Int("GENERATION_MAX_CHUNKS", 1, 10000000);
  c.delete_after_compact = r.Bool("GENERATION_DELETE_AFTER_COMPACT");
  c.delete_grace_s = r.Duration("GENERATION_DELETE_GRACE", 1000, 1000) / 1000;
  c.ir_cache_ttl_s = r.Int("IR_CACHE_TTL", 0, int64_t{1} << 31);
  c.ir_cache_prefix = r.Str("IR_CACHE_PREFIX");
  if (c.ir_cache_prefix.empty() || c.ir_cache_prefix.find_first_of("*?[]/ ") != std::string::npos) {
    r.Fail("IR_CACHE_PREFIX", c.ir_cache_prefix, "a non-empty prefix without glob characters, '/' or spaces");
  }
  c.ir_cache_dir = r.Str("IR_CACHE_DIR");
  c.ir_cache_compress_min_bytes = r.Int("IR_CACHE_COMPRESS_MIN_BYTES", 0, int64_t{1} << 30);
}

// Streams, shards and consumer groups: what every consumer process shares.
void LoadConsumers(Reader& r, Config& c) {
  c.chunk_streams = static_cast<int>(r.Int("CHUNK_STREAMS", 1, 1024));
  c.events_maxlen = r.Int("EVENTS_MAXLEN", 1000, int64_t{1} << 32);
  // Standard mode keeps one stream per queue: the documented XADD-enqueue contract names it.
  c.task_queue_shards = r.IsSet("TASK_QUEUE_SHARDS") ? static_cast<int>(r.Int("TASK_QUEUE_SHARDS", 1, 1024))
                                                    : (c.key_schema == KeySchemaMode::kCluster ? 4 : 1);
  if (c.key_schema != KeySchemaMode::kCluster && c.task_queue_shards != 1) {
    r.Fail("TASK_QUEUE_SHARDS", std::to_string(c.task_queue_shards), "1 unless STREAMFLEET_KEY_SCHEMA=cluster");
  }
  c.consumer_name = r.Str("CONSUMER_NAME");
  if (c.consumer_name.empty()) c.consumer_name = DefaultConsumerName();
  c.visibility_timeout_ms = r.Duration("VISIBILITY_TIMEOUT", 1000, 10);
  c.max_deliveries = r.Int("MAX_DELIVERIES", 1, 1000);
  c.compactor_loops = static_cast<int>(r.Int("COMPACTOR_LOOPS", 1, 64));
  c.dead_consumer_idle_ms = r.Duration("DEAD_CONSUMER_IDLE", 1000, 1000);
}

// The task API's tokens and limit (TASK_API_TOKENS, TASK_MAX_PAYLOAD_BYTES), served by ingest.
void LoadTaskApi(Reader& r, Config& c) {
  c.task_max_payload_bytes = r.Int("TASK_MAX_PAYLOAD_BYTES", 1, int64_t{16} << 20);
  for (const std::string& item : SplitList(r.Str("TASK_API_TOKENS"), ',')) {
    auto colon = item.rfind(':');
    TaskApiToken t;
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < item.size();
    if (ok) {
      t.token = item.substr(0, colon);
      for (const std::string& scope : SplitList(item.substr(colon + 1), '+')) {
        if (scope == "enqueue") {
          t.enqueue = true;
        } else if (scope == "read") {
          t.read = true;
        } else {
          ok = false;
        }
      }
    }
    if (!ok) {
      r.Fail("TASK_API_TOKENS", "...", "TOKEN:SCOPES pairs separated by commas, SCOPES enqueue, read or enqueue+read");
      break;
    }
    c.task_api_tokens.push_back(std::move(t));
  }
}

// Ingest's HTTP API, limits and per-organization tokens (INGEST_*).
void LoadIngest(Reader& r, Config& c) {
  c.ingest_listen = r.Str("INGEST_LISTEN");
  if (!ParseListen(c.ingest_listen).ok()) r.Fail("INGEST_LISTEN", c.ingest_listen, "host:port");
  c.ingest_threads = static_cast<int>(r.Int("INGEST_THREADS", 1, 1024));
  const int64_t org_workers = r.Int("INGEST_ORG_MAX_WORKERS", 0, 1024);
  c.ingest_org_max_workers = org_workers > 0 ? static_cast<int>(std::min<int64_t>(org_workers, c.ingest_threads))
                                             : std::max(1, c.ingest_threads - std::max(1, c.ingest_threads / 8));
  c.ingest_max_connections = r.Int("INGEST_MAX_CONNECTIONS", 0, 10'000'000);
  c.ingest_max_queued_answer_bytes = r.Int("INGEST_MAX_QUEUED_ANSWER_BYTES", 65536, int64_t{1} << 40);
  c.max_chunk_bytes = r.Int("INGEST_MAX_CHUNK_BYTES", 1, int64_t{1} << 30);
  c.max_body_bytes = r.Int("INGEST_MAX_BODY_BYTES", 1, int64_t{1} << 34);
  c.max_generation_bytes = r.Int("INGEST_MAX_GENERATION_BYTES", 1, int64_t{1} << 40);
  c.backpressure_lag = r.Int("INGEST_BACKPRESSURE_LAG", 1, int64_t{1} << 40);
  c.ingest_request_timeout_ms = r.Duration("INGEST_REQUEST_TIMEOUT", 1000, 100);
  c.ingest_wait_replicas = r.Int("INGEST_WAIT_REPLICAS", 0, 100);
  c.ingest_wait_timeout_ms = r.Duration("INGEST_WAIT_TIMEOUT", 1000, 1, 60000);
  c.live_keepalive_ms = r.Duration("LIVE_KEEPALIVE", 1000, 100, 3600000);
  c.live_progress_ms = r.Duration("LIVE_PROGRESS_INTERVAL", 1000, 10, 3600000);
  c.live_max_buffered_bytes = r.Int("LIVE_MAX_BUFFERED_BYTES", 4096, int64_t{1} << 32);
  c.live_slow_reader_ms = r.Duration("LIVE_SLOW_READER_TIMEOUT", 1000, 10, 3600000);
  c.live_start_wait_ms = r.Duration("LIVE_START_WAIT", 1000, 0, 86400000);
  c.live_restart_wait_ms = r.Duration("LIVE_RESTART_WAIT", 1000, 0, 86400000);
  c.live_max_stream_age_ms = r.Duration("LIVE_MAX_STREAM_AGE", 1000, 0, 86400000);
  c.live_org_max_streams = static_cast<int>(r.Int("LIVE_ORG_MAX_STREAMS", 1, 1000000));
  c.live_org_max_held_bytes = r.Int("LIVE_ORG_MAX_HELD_BYTES", 65536, int64_t{1} << 40);
  c.live_cors_origins = r.Spec("LIVE_CORS_ORIGINS", ParseCorsOrigins);

  std::string tokens = r.Str("INGEST_TOKENS");
  for (const std::string& item : SplitList(tokens, ',')) {
    auto colon = item.find(':');
    int64_t org = 0;
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < item.size();
    if (ok) {
      auto [p, ec] = std::from_chars(item.data(), item.data() + colon, org);
      ok = ec == std::errc() && p == item.data() + colon && org > 0;
    }
    if (!ok) {
      r.Fail("INGEST_TOKENS", "...", "ORG:TOKEN pairs separated by commas, ORG a positive integer");
      break;
    }
    c.ingest_tokens[org] = item.substr(colon + 1);
  }
  LoadTaskApi(r, c);
}

// The admin UI (ADMIN_*).
void LoadAdmin(Reader& r, Config& c) {
  c.admin_listen = r.Str("ADMIN_LISTEN");
  if (!ParseListen(c.admin_listen).ok()) r.Fail("ADMIN_LISTEN", c.admin_listen, "host:port");
  c.admin_token = r.Str("ADMIN_TOKEN");
  c.admin_insecure = r.Bool("ADMIN_INSECURE");
  c.admin_sample_interval_ms = r.Duration("ADMIN_SAMPLE_INTERVAL", 1000, 100);
}

// The queue-worker: queues, concurrency, task policy, webhooks, events (QUEUES, WORKER_*, TASK_*, WEBHOOK_*).
// SCHEDULES (JSON text) or SCHEDULES_FILE (a file holding it), not both.
void LoadSchedules(Reader& r, Config& c) {
  std::string text = r.Str("SCHEDULES");
  const std::string file = r.Str("SCHEDULES_FILE");
  const char* name = "SCHEDULES";
  if (!file.empty()) {
    name = "SCHEDULES_FILE";
    if (!text.empty()) {
      r.Fail("SCHEDULES_FILE", file, "either SCHEDULES or SCHEDULES_FILE, not both");
      return;
    }
    std::ifstream in(file);
    if (!in) {
      r.Fail("SCHEDULES_FILE", file, "a readable file");
      return;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto parsed = ParseSchedules(text);
  if (!parsed.ok()) {
    r.Fail(name, file.empty() ? "..." : file, "a JSON array of {name, cron, type, payload?, queue?} (" +
                                                  parsed.status().message() + ")");
    return;
  }
  c.schedules = std::move(*parsed);
}

// TASK_ROUTES, TASK_SIGNING_SECRET, TASK_ROUTE_TIMEOUT: the app's own HTTP task handlers (push handlers).
void LoadTaskRoutes(Reader& r, Config& c) {
  c.task_signing_secret = r.Str("TASK_SIGNING_SECRET");
  c.task_route_timeout_ms = r.Duration("TASK_ROUTE_TIMEOUT", 1000, 1);
  const std::string routes = r.Str("TASK_ROUTES");
  for (std::string item : SplitList(routes, ',')) {
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(0, 1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    auto eq = item.find('=');
    TaskRoute route;
    if (eq != std::string::npos) {
      route.pattern = item.substr(0, eq);
      route.url = item.substr(eq + 1);
    }
    bool pattern_ok = !route.pattern.empty() && route.pattern.size() <= 200 &&
                      route.pattern.find_first_of(" \t=,") == std::string::npos;
    bool url_ok = route.url.rfind("http://", 0) == 0 || route.url.rfind("https://", 0) == 0;
    if (!pattern_ok || !url_ok) {
      r.Fail("TASK_ROUTES", RedactUrl(routes), "TYPE=URL pairs separated by commas, TYPE a name or a glob (*, ?), "
                                               "URL http:// or https://");
      break;
    }
    c.task_routes.push_back(std::move(route));
  }
}

void LoadWorker(Reader& r, Config& c) {
  c.queues.clear();
  {
    std::string q = r.Str("QUEUES");
    for (const std::string& item : SplitList(q, ',')) {
      auto colon = item.find(':');
      std::string name = item.substr(0, colon);
      int weight = 1;
      if (colon != std::string::npos) {
        auto w = item.substr(colon + 1);
        auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), weight);
        if (ec != std::errc() || p != w.data() + w.size() || weight < 1) weight = -1;
      }
      if (name.empty() || weight < 1) {
        r.Fail("QUEUES", q, "name:weight pairs, weight a positive integer");
        break;
      }
      c.queues.emplace_back(name, weight);
    }
    if (c.queues.empty()) r.Fail("QUEUES", q, "at least one queue");
  }
  c.worker_concurrency = static_cast<int>(r.Int("WORKER_CONCURRENCY", 1, 1024));
  c.worker_prefetch = static_cast<int>(r.Int("WORKER_PREFETCH", 1, 1000));
  c.task_max_attempts = static_cast<int>(r.Int("TASK_MAX_ATTEMPTS", 1, 1000));
  c.task_backoff_base_ms = r.Duration("TASK_BACKOFF_BASE", 1000, 0);
  c.task_backoff_cap_ms = r.Duration("TASK_BACKOFF_CAP", 1000, 0);
  c.task_policies = r.Spec("TASK_POLICY", ParseTaskPolicies);
  c.task_result_ttl_s = r.Int("TASK_RESULT_TTL", 0, int64_t{1} << 31);
  c.periodic_tasks = r.Spec("PERIODIC_TASKS", ParsePeriodicTasks);
  LoadSchedules(r, c);
  c.task_timeout_ms = r.Duration("TASK_TIMEOUT", 1000, 0);
  c.task_timeouts = r.Spec("TASK_TIMEOUTS", ParseTaskTimeouts);
  c.task_limits = r.Spec("TASK_LIMITS", ParseTaskLimits);
  c.task_timeout_grace_ms = r.Duration("TASK_TIMEOUT_GRACE", 1000, 0);
  c.webhook_timeout_ms = r.Duration("WEBHOOK_TIMEOUT", 1000, 1);
  c.webhook_max_timeout_ms = r.Duration("WEBHOOK_MAX_TIMEOUT", 1000, 1);
  auto nets = [&r](const char* name) {
    std::string list = r.Str(name);
    auto parsed = ParseIpNets(list);
    if (!parsed.ok()) r.Fail(name, list, "comma-separated IPv4/IPv6 CIDRs (" + parsed.status().message() + ")");
    return list;
  };
  c.webhook_allow_nets = nets("WEBHOOK_ALLOW_NETS");
  c.webhook_deny_nets = nets("WEBHOOK_DENY_NETS");
  c.events_webhook_url = r.Str("EVENTS_WEBHOOK_URL");
  if (!c.events_webhook_url.empty() && c.events_webhook_url.rfind("http://", 0) != 0 &&
      c.events_webhook_url.rfind("https://", 0) != 0) {
    r.Fail("EVENTS_WEBHOOK_URL", RedactUrl(c.events_webhook_url), "an http:// or https:// URL");
  }
  c.chunk_retention_ms = r.Duration("CHUNK_RETENTION", 1000, 1000);
  LoadTaskRoutes(r, c);
}

// The LLM provider generation.run streams from (PROVIDER_*).
void LoadProvider(Reader& r, Config& c) {
  c.provider_base_url = r.Str("PROVIDER_BASE_URL");
  if (c.provider_base_url.rfind("http://", 0) != 0 && c.provider_base_url.rfind("https://", 0) != 0) {
    r.Fail("PROVIDER_BASE_URL", RedactUrl(c.provider_base_url), "an http:// or https:// URL");
  }
  c.provider_api_key = r.Str("PROVIDER_API_KEY");
  c.provider_model = r.Str("PROVIDER_MODEL");
  c.provider_name = r.Str("PROVIDER_NAME");
  c.provider_connect_timeout_ms = r.Duration("PROVIDER_CONNECT_TIMEOUT", 1000, 1);
  // libcurl's low-speed check counts whole seconds.
  c.provider_silence_timeout_s = r.Duration("PROVIDER_SILENCE_TIMEOUT", 1000, 1000) / 1000;
  c.provider_retry_from_scratch = r.Bool("PROVIDER_RETRY_FROM_SCRATCH");
}

// Logs and the fleet's own Redis INFO metrics.
void LoadObservability(Reader& r, Config& c) {
  c.redis_info_metrics = r.Bool("REDIS_INFO_METRICS");
  c.log_level = r.Str("LOG_LEVEL");
  if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
      c.log_level != "error") {
    r.Fail("LOG_LEVEL", c.log_level, "trace, debug, info, warn or error");
  }
  std::string fmt = r.Str("LOG_FORMAT");
  if (fmt != "text" && fmt != "json") r.Fail("LOG_FORMAT", fmt, "text or json");
  c.log_json = fmt == "json";
}

}  // namespace

// The one loader: every section in turn; the first malformed variable is the error (Reader), and a process
// never starts on a configuration that failed to load.
StatusOr<Config> LoadConfig(const EnvLookup& env, const std::string& default_metrics_listen) {
  Reader r(env);
  Config c;
  LoadRedis(r, c);
  LoadStorage(r, c);
  LoadGenerations(r, c);
  LoadConsumers(r, c);
  c.metrics_listen = r.IsSet("METRICS_LISTEN") ? r.Str("METRICS_LISTEN") : default_metrics_listen;
  if (!ParseListen(c.metrics_listen).ok()) r.Fail("METRICS_LISTEN", c.metrics_listen, "host:port");
  LoadIngest(r, c);
  LoadAdmin(r, c);
  LoadWorker(r, c);
  LoadProvider(r, c);
  LoadObservability(r, c);
  if (!r.error().ok()) return r.error();
  return c;
}

void KeepOnlySecretsOf(ProcessRole role, Config& c) {
  if (role == ProcessRole::kTool) return;
  if (role != ProcessRole::kIngest) c.ingest_tokens.clear();
  if (role != ProcessRole::kIngest) c.task_api_tokens.clear();
  if (role != ProcessRole::kAdmin) c.admin_token.clear();
  if (role != ProcessRole::kWorker) c.provider_api_key.clear();
  if (role != ProcessRole::kWorker) c.task_signing_secret.clear();
}

}  // namespace streamfleet
