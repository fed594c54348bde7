#include "streamfleet/cache/cache.h"

#include <chrono>
#include <thread>

#include "streamfleet/base/random.h"
#include "cache_fs.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/base/compression.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/time.h"
#include "streamfleet/redis/redis_scan.h"

namespace streamfleet {

namespace {

using SteadyClk = std::chrono::steady_clock;

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

// Compare-and-delete: only the holder's token releases the lock (an expired lock re-taken by another caller
// is left alone).
const LuaScript& UnlockScript() {
  static const LuaScript s(
      "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0");
  return s;
}

// An invalidation's marker (SET key token PX ttl), also when Redis is full (maxmemory with noeviction refuses a
// plain SET): a compaction invalidates its generation's cached row after committing it, and a refused marker
// made the compactor retry that finalization for ever while Redis stayed full. One small key with a TTL.
const LuaScript& MarkerScript() {
  static const LuaScript s("#!lua flags=allow-oom\nreturn redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])");
  return s;
}

// "{key}:z": where a value is kept compressed (CacheOptions::compress_min_bytes).
constexpr std::string_view kCompressedSuffix = ":z";
std::string CompressedKey(const std::string& key) { return key + std::string(kCompressedSuffix); }
// The plain key of either form: "{key}:z" -> "{key}", "{key}" -> "{key}".
std::string PlainKeyOf(const std::string& key) {
  bool z = key.size() > kCompressedSuffix.size() &&
           key.compare(key.size() - kCompressedSuffix.size(), kCompressedSuffix.size(), kCompressedSuffix) == 0;
  return z ? key.substr(0, key.size() - kCompressedSuffix.size()) : key;
}

// {prefix}:{name}_{8 hex}[:z]: a value key, plain or compressed (not a :lock / :vtoken marker, not the epoch, not
// someone else's key).
bool IsValueKey(const std::string& prefix, const std::string& given, std::string* name) {
  const std::string key = PlainKeyOf(given);
  if (key.size() <= prefix.size() + 1 || key.compare(0, prefix.size(), prefix) != 0 || key[prefix.size()] != ':') {
    return false;
  }
  std::string stem = key.substr(prefix.size() + 1);
  auto us = stem.rfind('_');
  if (us == std::string::npos || us == 0 || stem.size() - us != 9 || !ValidName(stem)) return false;
  for (size_t i = us + 1; i < stem.size(); ++i) {
    if (!((stem[i] >= '0' && stem[i] <= '9') || (stem[i] >= 'a' && stem[i] <= 'f'))) return false;
  }
  if (name != nullptr) *name = stem.substr(0, us);
  return true;
}

std::string NewToken() {
  return std::to_string(RandomU64()) + "-" + std::to_string(RandomU64());
}

}  // namespace

// The invalidation markers a value was computed under (see the header).
// Tokens, not counters: a key's counter that expired (or was lost) started again from 0, and its next
// invalidation made it 1 again, matching files written under the earlier 1: an invalidated value was served
// again, and warmed back into Redis for the fleet. A token never repeats.
struct Cache::Markers {
  std::string ver;     // "" while the key was never invalidated (or its marker expired: see MarkerTtlMs)
  std::string epoch;   // "" while the cache was never flushed
  bool known = false;  // false when Redis was unreachable
};

namespace {
// A marker reply as its token: nil is "" (no marker).
std::string MarkerOf(const RedisValue& v) { return v.is_nil() ? "" : v.str; }
}  // namespace

CacheOptions CacheOptionsFromConfig(const Config& c) {
  CacheOptions o;
  o.prefix = c.ir_cache_prefix;
  o.redis_ttl_s = c.ir_cache_ttl_s;
  o.fs_ttl_s = c.ir_cache_ttl_s;
  o.fs_dir = c.ir_cache_dir;
  o.compress_min_bytes = c.ir_cache_compress_min_bytes;
  return o;
}

const char* CacheTierName(CacheTier t) {
  switch (t) {
    case CacheTier::kRedis: return "redis";
    case CacheTier::kFilesystem: return "filesystem";
    case CacheTier::kOrigin: return "origin";
    case CacheTier::kStale: return "stale";
  }
  return "?";
}

Cache::Cache(const RedisConfig& redis, CacheOptions options, prometheus::Registry* registry, Clock* clock)
    : options_(std::move(options)), pool_(redis), clock_(clock) {
  if (!options_.fs_dir.empty() && options_.fs_ttl_s > 0) {
    fs_ = std::make_unique<FsCacheTier>(options_.fs_dir + "/" + options_.prefix, options_.prefix);
  }
  if (registry == nullptr) {
    own_registry_ = std::make_unique<prometheus::Registry>();
    registry = own_registry_.get();
  }
  requests_ = &prometheus::BuildCounter()
                   .Name("streamfleet_cache_requests_total")
                   .Help("Cache lookups per tier and result (hit, miss, corrupt, stale, error)")
                   .Register(*registry);
  if (redis_tier()) {
    // At 0 from the start: a cache that never hits must still show its hit series, or the hit-rate alert
    // (StreamfleetRedisCacheHitRateLow: hits / lookups of the Redis tier) has no numerator and cannot fire.
    for (const char* result : {"hit", "miss", "error"}) {
      requests_->Add({{"cache", options_.prefix}, {"tier", "redis"}, {"result", result}});
    }
  }
  degraded_requests_ = &prometheus::BuildCounter()
                            .Name("streamfleet_cache_degraded_requests_total")
                            .Help("Cache requests served without Redis (filesystem and origin tiers only)")
                            .Register(*registry)
                            .Add({{"cache", options_.prefix}});
}

Cache::~Cache() = default;

std::string Cache::Hash8(std::string_view content) { return Sha256Hex(content).substr(0, 8); }

StatusOr<std::string> Cache::Key(const std::string& name, std::string_view content) const {
  if (!ValidName(name)) return Status::InvalidArgument("cache name \"" + name + "\" must match [A-Za-z0-9._-]+");
  return options_.prefix + ":" + name + "_" + Hash8(content);
}

int64_t Cache::NowMs() {
  return clock_ != nullptr ? clock_->NowMs() : WallClockMs();
}

void Cache::Count(const char* tier, const char* result) {
  requests_->Add({{"cache", options_.prefix}, {"tier", tier}, {"result", result}}).Increment();
}

StatusOr<RedisPool::Lease> Cache::Redis() {
  if (SteadyClockMs() < redis_retry_at_ms_.load()) return Status::Unavailable("redis marked down (degraded mode)");
  auto lease = pool_.Acquire();
  if (!lease.ok()) RedisFailed(lease.status());
  return lease;
}

void Cache::RedisFailed(const Status& s) {
  if (!s.retryable()) {
    SF_LOG_WARN("cache {}: redis error: {}", options_.prefix, s.ToString());
    return;
  }
  redis_retry_at_ms_.store(SteadyClockMs() + options_.degraded_retry_ms);
  if (!degraded_.exchange(true)) {
    SF_LOG_WARN("cache {}: redis unreachable ({}): serving from the filesystem and origin tiers (degraded mode)",
                options_.prefix, s.ToString());
  }
}

void Cache::RedisRecovered() {
  if (degraded_.exchange(false)) SF_LOG_INFO("cache {}: redis reachable again, degraded mode over", options_.prefix);
}

// One GetOrCompute call's state, passed between the tiers.
struct Cache::Lookup {
  std::string key, lock_key, ver_key, epoch_key;
  Markers markers;
  std::optional<std::string> stale;           // an expired filesystem entry: the fallback when all else fails
  std::optional<RedisPool::Lease> redis;      // set when Redis answered the first round trip
  std::string token;                          // the stampede lock's token
  bool locked = false;
  bool refreshing = false;                    // GetOptions::force_refresh: Redis may hold an older value
};

StatusOr<CacheResult> Cache::GetOrCompute(const std::string& name, std::string_view content,
                                          const ComputeFn& compute, GetOptions opts) {
  auto key = Key(name, content);
  if (!key.ok()) return key.status();
  Lookup l;
  l.key = *key;
  l.lock_key = l.key + ":lock";
  l.refreshing = opts.force_refresh;
  l.ver_key = VerKey(l.key);
  l.epoch_key = EpochKey();

  if (auto hit = ReadRedisTier(l, opts)) return std::move(*hit);
  if (fs_ && !opts.force_refresh) {
    if (auto e = ReadFsTier(l, true)) {
      Count("filesystem", "hit");
      WarmRedis(l, *e);
      return CacheResult{std::move(e->value), CacheTier::kFilesystem};
    }
  }
  // Tier 3 under the fleet-wide lock. Without a tier to publish the value in, waiting is pointless.
  if (l.redis && (redis_tier() || fs_)) {
    if (auto published = WaitForLock(l, opts)) return std::move(*published);
  }
  return ComputeAndStore(l, compute);
}

// Tier 1 and the invalidation markers, one round trip. A miss (or Redis down) returns nothing.
std::optional<CacheResult> Cache::ReadRedisTier(Lookup& l, const GetOptions& opts) {
  if (auto lease = Redis(); lease.ok()) {
    std::vector<std::vector<std::string>> cmds = {{"GET", l.ver_key}, {"GET", l.epoch_key}};
    bool read_value = redis_tier() && !opts.force_refresh;
    if (read_value) {
      for (auto& c : ValueReads(l.key)) cmds.push_back(std::move(c));
    }
    auto r = (*lease)->Pipeline(cmds);
    // An error reply (LOADING while Redis reads its dataset after a restart, CLUSTERDOWN, a marker key of
    // another type) is Redis not answering, not markers of 0: read as 0, they invalidated every file of the
    // filesystem tier, the one that is there to outlive a Redis restart.
    if (r.ok()) {
      for (const auto& v : *r) {
        if (v.is_error()) {
          r = Status::Unavailable("cache read: " + v.str);
          break;
        }
      }
    }
    if (r.ok()) {
      RedisRecovered();
      l.redis.emplace(std::move(*lease));
      l.markers = Markers{MarkerOf((*r)[0]), MarkerOf((*r)[1]), true};
      if (read_value) {
        if (auto v = ValueFrom((*r)[2], (*r)[3])) {
          Count("redis", "hit");
          return CacheResult{std::move(*v), CacheTier::kRedis};
        }
        Count("redis", "miss");
      }
      return std::nullopt;
    }
    RedisFailed(r.status());
  }
  degraded_requests_->Increment();
  if (redis_tier() && !opts.force_refresh) Count("redis", "error");
  return std::nullopt;
}

// Tier 2: a fresh entry valid under the markers is returned, an expired one becomes the stale fallback.
std::optional<FsCacheEntry> Cache::ReadFsTier(Lookup& l, bool count) {
  auto e = fs_->Read(l.key);
  if (!e.ok()) {
    if (count) Count("filesystem", e.status().code() == StatusCode::kDataLoss ? "corrupt" : "miss");
    if (e.status().code() == StatusCode::kDataLoss) SF_LOG_WARN("cache: {} (repairing)", e.status().message());
    return std::nullopt;
  }
  // Older than a marker lives: an invalidation it missed may have expired since (its key then reads "" again,
  // the marker of a file written before any invalidation). A fresh hit is never that old; this bounds the stale
  // fallback. Not when Redis is down (degraded mode serves without checks, as documented).
  const bool outlived_markers = e->written_at_ms + MarkerTtlMs() <= NowMs();
  if (l.markers.known && (e->ver != l.markers.ver || e->epoch != l.markers.epoch || outlived_markers)) {
    fs_->Remove(l.key);  // invalidated since it was written: never served, not even stale
    if (count) Count("filesystem", "miss");
    return std::nullopt;
  }
  if (e->expires_at_ms <= NowMs()) {
    l.stale = e->value;
    if (count) Count("filesystem", "miss");
    return std::nullopt;
  }
  return std::move(*e);
}

// A filesystem hit warms Redis for what is left of the entry's TTL.
void Cache::WarmRedis(Lookup& l, const FsCacheEntry& e) {
  if (!l.redis || !redis_tier()) return;
  int64_t left = std::min(e.expires_at_ms - NowMs(), options_.redis_ttl_s * 1000);
  if (left <= 0) return;
  WriteValue(**l.redis, l, e.value, left);
}

std::vector<std::vector<std::string>> Cache::ValueReads(const std::string& key) const {
  return {{"GET", key}, {"GET", CompressedKey(key)}};
}

std::optional<std::string> Cache::ValueFrom(RedisValue& plain, RedisValue& compressed) const {
  // The compressed form wins: a writer sets it before it deletes the plain one (WriteValue).
  if (compressed.type == RedisValue::Type::kString) {
    auto v = ZstdDecompress(compressed.str, static_cast<size_t>(options_.max_value_bytes));
    if (v.ok()) return std::move(*v);
    SF_LOG_WARN("cache {}: a compressed value does not decompress ({}): a miss", options_.prefix,
                v.status().message());
    return std::nullopt;
  }
  if (plain.type == RedisValue::Type::kString) return std::move(plain.str);
  return std::nullopt;
}

std::optional<std::string> Cache::ReadValue(RedisClient& redis, const std::string& key) {
  auto r = redis.Pipeline(ValueReads(key));
  if (!r.ok()) {
    RedisFailed(r.status());
    return std::nullopt;
  }
  return ValueFrom((*r)[0], (*r)[1]);
}

// One form only, so a reader never gets an older value in the other form: the compressed one is set before the
// plain one is deleted (readers prefer it), the plain one after the compressed one is deleted.
void Cache::WriteValue(RedisClient& redis, const Lookup& l, const std::string& value, int64_t ttl_ms) {
  // Not a value above kMaxRedisValueBytes, computed or warmed from the filesystem tier: the write would hold it
  // twice more in this process (the command and its wire form) and block Redis while it copies it, for a
  // value read rarely (a generation's whole answer).
  // On a forced refresh Redis may hold an older value (one that grew past the bound since): deleted, or
  // readers kept getting it until its TTL. Otherwise this was a miss: nothing to delete, no round trip.
  if (value.size() > kMaxRedisValueBytes) {
    if (!l.refreshing) return;
    auto d = redis.Pipeline({{"DEL", l.key}, {"DEL", CompressedKey(l.key)}});
    if (!d.ok()) RedisFailed(d.status());
    return;
  }
  const std::string& key = l.key;
  std::string px = std::to_string(ttl_ms);
  std::vector<std::vector<std::string>> cmds;
  std::optional<std::string> z;
  if (options_.compress_min_bytes > 0 && static_cast<int64_t>(value.size()) >= options_.compress_min_bytes) {
    z = ZstdCompressIfSmaller(value);
  }
  if (z) {
    cmds = {{"SET", CompressedKey(key), *z, "PX", px}, {"DEL", key}};
  } else {
    cmds = {{"DEL", CompressedKey(key)}, {"SET", key, value, "PX", px}};
  }
  // The markers again, once the write is done. An invalidation between our read of them and this write (a
  // re-finalization committed meanwhile) changed them, and its DEL came before our SET: the value written may
  // be the row from before it, and would be served until its TTL (7 days by default). Taken back then; an
  // invalidation after the SET deletes it itself. Two round trips, not one pipeline: on a Redis Cluster the
  // value and its marker live on different nodes, and a pipeline's commands to two nodes are not run in order.
  auto written = redis.Pipeline(cmds);
  if (!written.ok()) {
    RedisFailed(written.status());
    return;
  }
  auto w = redis.Pipeline({{"GET", l.ver_key}, {"GET", l.epoch_key}});
  if (!w.ok()) {
    RedisFailed(w.status());
    return;
  }
  const RedisValue& ver = (*w)[0];
  const RedisValue& epoch = (*w)[1];
  if (ver.is_error() || epoch.is_error() || MarkerOf(ver) != l.markers.ver || MarkerOf(epoch) != l.markers.epoch) {
    auto undo = redis.Pipeline({{"DEL", key}, {"DEL", CompressedKey(key)}});
    if (!undo.ok()) RedisFailed(undo.status());
  }
}

// The value another caller published while we waited, from whichever tier publishes it.
std::optional<CacheResult> Cache::ReadPublished(Lookup& l) {
  if (redis_tier()) {
    if (auto v = ReadValue(**l.redis, l.key)) {
      Count("redis", "hit");
      return CacheResult{std::move(*v), CacheTier::kRedis};
    }
  } else if (auto e = ReadFsTier(l, false)) {
    Count("filesystem", "hit");
    return CacheResult{std::move(e->value), CacheTier::kFilesystem};
  }
  return std::nullopt;
}

// Takes the stampede lock (l.locked), waiting up to lock_wait_ms while another caller computes; returns the
// value when that caller published it meanwhile, or the stale value when the lock could not be had.
std::optional<CacheResult> Cache::WaitForLock(Lookup& l, const GetOptions& opts) {
  l.token = NewToken();
  const int64_t deadline = SteadyClockMs() + options_.lock_wait_ms;
  while (true) {
    auto r = (*l.redis)->Command({"SET", l.lock_key, l.token, "NX", "PX", std::to_string(options_.lock_ttl_ms)});
    if (!r.ok()) {
      RedisFailed(r.status());
      break;  // compute without the lock
    }
    if (r->type == RedisValue::Type::kStatus) {
      l.locked = true;
      break;
    }
    if (SteadyClockMs() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.poll_ms));
    if (opts.force_refresh) continue;
    if (auto published = ReadPublished(l)) return published;
  }
  if (l.locked && !opts.force_refresh && redis_tier()) {
    // Published between our miss and our lock (the previous holder just released it).
    if (auto v = ReadValue(**l.redis, l.key)) {
      ReleaseLock(l);
      Count("redis", "hit");
      return CacheResult{std::move(*v), CacheTier::kRedis};
    }
  }
  if (!l.locked && l.stale) {
    Count("filesystem", "stale");
    return CacheResult{std::move(*l.stale), CacheTier::kStale};
  }
  return std::nullopt;
}

void Cache::ReleaseLock(Lookup& l) {
  if (!l.locked || !l.redis) return;
  l.locked = false;
  auto u = (*l.redis)->Eval(UnlockScript(), {l.lock_key}, {l.token});
  if (!u.ok()) RedisFailed(u.status());
}

// Tier 3: the origin, then both tiers written (the filesystem entry under the markers read at the start, so
// an invalidation in between makes it unservable), then the lock released.
StatusOr<CacheResult> Cache::ComputeAndStore(Lookup& l, const ComputeFn& compute) {
  auto value = compute();
  if (!value.ok()) {
    ReleaseLock(l);
    if (l.stale) {
      SF_LOG_WARN("cache {}: origin failed ({}); serving the stale value", l.key, value.status().ToString());
      Count("filesystem", "stale");
      return CacheResult{std::move(*l.stale), CacheTier::kStale};
    }
    Count("origin", "error");
    return value.status();
  }
  Count("origin", "hit");
  if (l.redis && redis_tier()) {
    WriteValue(**l.redis, l, *value, options_.redis_ttl_s * 1000);
  }
  if (fs_) {
    int64_t now = NowMs();
    Status s = fs_->Write({l.key, *value, now, now + options_.fs_ttl_s * 1000, l.markers.ver, l.markers.epoch});
    if (!s.ok()) SF_LOG_WARN("cache {}: filesystem tier write failed: {}", l.key, s.ToString());
    MaybeSweep(now);
  }
  ReleaseLock(l);
  return CacheResult{std::move(*value), CacheTier::kOrigin};
}

// At most once per kSweepIntervalMs, on the thread that just wrote a file (a miss, which waited on its origin
// anyway): files no read may serve any more (older than a marker lives, ReadFsTier) are removed.
void Cache::MaybeSweep(int64_t now_ms) {
  int64_t due = next_sweep_ms_.load();
  if (now_ms < due || !next_sweep_ms_.compare_exchange_strong(due, now_ms + kSweepIntervalMs)) return;
  if (due == 0) return;  // the first write only schedules: a process's first requests do not pay for a sweep
  const int64_t removed = fs_->Sweep(MarkerTtlMs());
  if (removed > 0) {
    SF_LOG_INFO("cache {}: removed {} filesystem entries past their markers' life", options_.prefix, removed);
  }
}

StatusOr<int64_t> Cache::Invalidate(const std::string& name, std::string_view content) {
  auto key = Key(name, content);
  if (!key.ok()) return key.status();
  return InvalidateKey(*key);
}

StatusOr<int64_t> Cache::InvalidateKey(const std::string& key) { return InvalidateKeys({key}); }

StatusOr<int64_t> Cache::InvalidateKeys(const std::vector<std::string>& given) {
  std::vector<std::string> keys;  // the value keys, a compressed form ("{key}:z") named by its plain key
  for (const auto& key : given) {
    if (!IsValueKey(options_.prefix, key, nullptr)) {
      return Status::InvalidArgument("\"" + key + "\" is not a key of cache " + options_.prefix);
    }
    keys.push_back(PlainKeyOf(key));
  }
  if (keys.empty()) return int64_t{0};
  if (fs_) {
    for (const auto& key : keys) fs_->Remove(key);
  }
  auto lease = Redis();
  if (!lease.ok()) return lease.status();
  // The new markers before the DELs, in a round trip of their own (a cluster runs a pipeline's commands to
  // different nodes in no set order): a writer that read the markers before them and writes after the DEL sees
  // them changed when it checks again after its write, and takes its value back (WriteValue).
  std::vector<std::vector<std::string>> markers, dels;
  markers.reserve(keys.size());
  dels.reserve(keys.size() * 2);
  (*lease)->Register(MarkerScript());
  for (const auto& key : keys) {
    markers.push_back(RedisClient::EvalArgv(MarkerScript(), {VerKey(key)}, {NewToken(), std::to_string(MarkerTtlMs())}));
    dels.push_back({"DEL", key});
    dels.push_back({"DEL", CompressedKey(key)});
  }
  auto send = [&](const std::vector<std::vector<std::string>>& cmds) -> StatusOr<std::vector<RedisValue>> {
    auto r = (*lease)->Pipeline(cmds);
    if (!r.ok()) {
      RedisFailed(r.status());
      return r.status();
    }
    for (const auto& v : *r) {
      if (v.is_error()) return TranslateRedisError(v.str);
    }
    return r;
  };
  if (auto m = send(markers); !m.ok()) return m.status();
  auto d = send(dels);
  if (!d.ok()) return d.status();
  int64_t deleted = 0;
  for (const auto& v : *d) deleted += v.integer;
  return deleted;
}

StatusOr<int64_t> Cache::InvalidateName(const std::string& name) {
  if (!ValidName(name)) return Status::InvalidArgument("cache name \"" + name + "\" must match [A-Za-z0-9._-]+");
  return InvalidateMatching(options_.prefix + ":" + name + "_*", true);
}

StatusOr<int64_t> Cache::InvalidatePattern(const std::string& pattern) {
  if (pattern.empty()) return Status::InvalidArgument("empty pattern");
  return InvalidateMatching(pattern, true);
}


StatusOr<int64_t> Cache::InvalidateMatching(const std::string& pattern, bool bump_epoch) {
  if (fs_) fs_->RemoveMatching(pattern);
  auto lease = Redis();
  if (!lease.ok()) return lease.status();
  auto fail = [&](const Status& s) {
    RedisFailed(s);
    return s;
  };
  if (bump_epoch) {
    // Every host's filesystem entries written before this point stop matching.
    auto e = (*lease)->Command({"SET", EpochKey(), NewToken()});
    if (!e.ok()) return fail(e.status());
  }
  int64_t deleted = 0;
  Status unlinked;
  // Every master (a cluster holds a third of the keys on each); one UNLINK per key, pipelined, since a
  // multi-key UNLINK across slots is CROSSSLOT.
  Status scanned = ScanAll(**lease, pattern, 100, [&](const std::vector<std::string>& keys) {
    std::vector<std::vector<std::string>> cmds;
    for (const auto& k : keys) {
      if (IsValueKey(options_.prefix, k, nullptr)) cmds.push_back({"UNLINK", k});
    }
    if (cmds.empty()) return true;
    auto d = (*lease)->Pipeline(cmds);
    if (!d.ok()) {
      unlinked = d.status();
      return false;
    }
    for (const auto& v : *d) deleted += v.integer;
    return true;
  });
  if (!unlinked.ok()) return fail(unlinked);
  if (!scanned.ok()) return fail(scanned);
  return deleted;
}

CacheStats Cache::Stats() {
  CacheStats st;
  if (fs_) fs_->Usage(&st.fs_files, &st.fs_bytes);
  auto lease = Redis();
  if (!lease.ok()) return st;
  Status usage_failed;
  Status scanned = ScanAll(**lease, options_.prefix + ":*", 100, [&](const std::vector<std::string>& keys) {
    std::vector<std::vector<std::string>> usage;
    for (const auto& k : keys) {
      std::string name;
      if (!IsValueKey(options_.prefix, k, &name)) continue;
      ++st.redis_keys;
      ++st.names[name];
      usage.push_back({"MEMORY", "USAGE", k});
    }
    if (usage.empty()) return true;
    auto u = (*lease)->Pipeline(usage);
    if (!u.ok()) {
      usage_failed = u.status();
      return false;
    }
    for (const auto& v : *u) st.redis_bytes += v.integer;  // nil (expired meanwhile) counts 0
    return true;
  });
  if (!usage_failed.ok() || !scanned.ok()) {
    RedisFailed(!usage_failed.ok() ? usage_failed : scanned);
    return st;
  }
  st.redis_ok = true;
  return st;
}

}  // namespace streamfleet
