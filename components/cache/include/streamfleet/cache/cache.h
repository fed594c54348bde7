#pragma once
// A multi-tier cache in front of slow work (e.g. the intermediate results of a generation): cache-aside over
//   tier 1  Redis        shared by the fleet, TTL (PX), key {prefix}:{name}_{hash8};
//   tier 2  filesystem   per host, {dir}/{prefix}/{name}_{hash8}.json written atomically; survives a Redis
//                        restart and warms Redis back up on a hit;
//   tier 3  the origin   the caller's `compute`.
// hash8 = the first 8 hex characters of SHA-256(content): the same content always maps to the same key.
//
// Stampede: one caller in the whole fleet computes a missing key at a time. It holds {key}:lock (SET NX PX
// lock_ttl_ms, released with a compare-and-delete script); the others poll the Redis tier (or, with the
// Redis tier disabled, this host's filesystem tier) for up to lock_wait_ms, then serve a stale filesystem
// value if there is one, else compute themselves. A holder that dies only delays the others by lock_ttl_ms.
//
// Invalidation reaches every host's filesystem tier without talking to the hosts: each entry records the
// key's version marker ({key}:vtoken, a new random token on each invalidation, kept for MarkerTtlMs) and the
// cache epoch ({prefix}:_epoch_token, a new random token on each name or pattern flush) it was computed under
// ("" for none), and a filesystem entry whose markers differ from Redis's, or that is older than a marker
// lives, is a miss (its file is removed). Tokens never repeat (counters did, after an expiry, and matched files
// written before an invalidation). The limit: if Redis loses its data (a restart without persistence, a
// failover to a replica behind), it loses the record of the invalidations and flushes too, and a file written
// before one of them that no read on its host removed since is served again. That is what keeps the
// filesystem tier serving across a Redis restart; where it must not happen, run Redis with persistence or
// leave the tier off (IR_CACHE_DIR empty, as the Kubernetes manifests do).
//
// Redis down (degraded mode): the filesystem and origin tiers keep serving without version checks or the
// lock (each caller that misses computes); the transition is logged once and every request served that way
// is counted. Redis is retried after degraded_retry_ms, not on every call.
//
// Filesystem entries past their TTL are not served as hits, but kept as a stale fallback for when the origin
// fails or the lock wait times out, until a marker's life (MarkerTtlMs) after they were written: then an
// hourly sweep, run by a miss that wrote a file, removes them (and temp files a crashed writer left). A
// corrupt or truncated file (bad JSON, wrong key, checksum mismatch) is a miss; the next store rewrites it.
//
// Thread-safety: a Cache is safe for concurrent use (Redis clients come from an internal pool).
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "streamfleet/base/clock.h"
#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/base/status.h"

namespace streamfleet {

// Values larger than this are computed and returned but not written to the Redis tier (the filesystem tier,
// when on, still keeps them).
inline constexpr size_t kMaxRedisValueBytes = size_t{8} << 20;

class FsCacheTier;
struct FsCacheEntry;

struct CacheOptions {
  std::string prefix = "ir_cache";  // Redis key prefix, filesystem subdirectory and the metrics' cache label
  int64_t redis_ttl_s = 604800;     // 0 disables the Redis value tier (locks and markers still use Redis)
  std::string fs_dir = ".cache";    // filesystem tier root; empty disables the tier
  int64_t fs_ttl_s = 604800;        // 0 disables the filesystem tier
  int64_t lock_ttl_ms = 10000;      // longest a computing caller keeps others waiting
  int64_t lock_wait_ms = 5000;      // how long a waiter polls before falling back (stale, else compute)
  int64_t poll_ms = 10;
  int64_t degraded_retry_ms = 1000;  // after a Redis failure, skip Redis this long
  // Values of at least this many bytes are kept zstd-compressed in Redis, under "{key}:z" (0 = never). The
  // separate key keeps builds without compression from reading a frame as a value (docs/storage.md).
  int64_t compress_min_bytes = 0;
  int64_t max_value_bytes = int64_t{256} << 20;  // most a compressed value may expand to (a larger one is a miss)
};

// The fleet's cache options: IR_CACHE_PREFIX, IR_CACHE_TTL (both tiers), IR_CACHE_DIR, IR_CACHE_COMPRESS_MIN_BYTES.
CacheOptions CacheOptionsFromConfig(const Config& c);

enum class CacheTier { kRedis, kFilesystem, kOrigin, kStale };
const char* CacheTierName(CacheTier t);

struct CacheResult {
  std::string value;
  CacheTier tier = CacheTier::kOrigin;
};

struct GetOptions {
  bool force_refresh = false;  // skip both cache tiers, compute and store (still under the lock)
};

// The origin. An error is returned to the caller unless a stale value can be served instead.
using ComputeFn = std::function<StatusOr<std::string>()>;

struct CacheStats {
  bool redis_ok = false;
  int64_t redis_keys = 0;
  int64_t redis_bytes = 0;               // sum of MEMORY USAGE
  std::map<std::string, int64_t> names;  // name -> Redis keys
  int64_t fs_files = 0;
  int64_t fs_bytes = 0;
};

class Cache {
 public:
  // registry: where streamfleet_cache_* are registered (nullptr: a private one). clock: a seam for the
  // filesystem TTL (ManualClock in tests); nullptr or 0 from NowMsOverride() = the system clock.
  Cache(const RedisConfig& redis, CacheOptions options, prometheus::Registry* registry = nullptr,
        Clock* clock = nullptr);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // First 8 hex characters of SHA-256(content).
  static std::string Hash8(std::string_view content);
  // {prefix}:{name}_{hash8}. name: [A-Za-z0-9._-]+ (it becomes a file name and a SCAN pattern).
  StatusOr<std::string> Key(const std::string& name, std::string_view content) const;

  // The value for (name, content) from the first tier that has it, else compute() (stored in both tiers).
  StatusOr<CacheResult> GetOrCompute(const std::string& name, std::string_view content, const ComputeFn& compute,
                                     GetOptions options = {});

  // Invalidation (Redis keys via SCAN COUNT 100, never KEYS; this host's files; every host's files through
  // the markers). Each returns the number of Redis keys deleted. Needs Redis (kUnavailable when down; this
  // host's files are removed anyway).
  StatusOr<int64_t> InvalidateKey(const std::string& key);
  // Many keys in one Redis round trip (the compactor invalidates a whole finalize batch at once).
  StatusOr<int64_t> InvalidateKeys(const std::vector<std::string>& keys);
  StatusOr<int64_t> Invalidate(const std::string& name, std::string_view content);
  StatusOr<int64_t> InvalidateName(const std::string& name);
  // A Redis glob over full keys ("ir_cache:generation_*"); only this cache's value keys are deleted, so a
  // careless pattern cannot touch other data.
  StatusOr<int64_t> InvalidatePattern(const std::string& pattern);

  // Redis side is skipped (redis_ok=false) when Redis is down.
  CacheStats Stats();

  const CacheOptions& options() const { return options_; }
  bool degraded() const { return degraded_.load(); }

  // The markers' keys. New names with the tokens (counters were {key}:ver and {prefix}:_epoch): a build
  // with counters, during a rolling upgrade or after a rollback, INCRs its own keys instead of failing on ours.
  static std::string VerKey(const std::string& key) { return key + ":vtoken"; }
  std::string EpochKey() const { return options_.prefix + ":_epoch_token"; }
  // How long a key's invalidation marker lives: past both tiers' TTLs by a day, so it outlives every entry it
  // guards (ReadFsTier drops a file older than this whatever its markers say).
  int64_t MarkerTtlMs() const { return (std::max(options_.redis_ttl_s, options_.fs_ttl_s) + 86400) * 1000; }

 private:
  struct Markers;
  struct Lookup;
  std::optional<CacheResult> ReadRedisTier(Lookup& l, const GetOptions& opts);
  std::optional<FsCacheEntry> ReadFsTier(Lookup& l, bool count);
  void WarmRedis(Lookup& l, const FsCacheEntry& e);
  void MaybeSweep(int64_t now_ms);
  // The Redis value tier's reads and writes, in either form (plain at the key, compressed at "{key}:z").
  std::vector<std::vector<std::string>> ValueReads(const std::string& key) const;
  // The value from the replies of ValueReads (nullopt: a miss; a frame that does not decompress is one too).
  std::optional<std::string> ValueFrom(RedisValue& plain, RedisValue& compressed) const;
  std::optional<std::string> ReadValue(RedisClient& redis, const std::string& key);
  // Writes the value looked up by l, then takes it back if the key was invalidated (or the cache flushed)
  // since l's markers were read: the value may be from before that.
  void WriteValue(RedisClient& redis, const Lookup& l, const std::string& value, int64_t ttl_ms);
  std::optional<CacheResult> ReadPublished(Lookup& l);
  std::optional<CacheResult> WaitForLock(Lookup& l, const GetOptions& opts);
  void ReleaseLock(Lookup& l);
  StatusOr<CacheResult> ComputeAndStore(Lookup& l, const ComputeFn& compute);
  StatusOr<RedisPool::Lease> Redis();
  void RedisFailed(const Status& s);
  void RedisRecovered();
  int64_t NowMs();
  bool redis_tier() const { return options_.redis_ttl_s > 0; }
  void Count(const char* tier, const char* result);
  StatusOr<int64_t> InvalidateMatching(const std::string& pattern, bool bump_epoch);

  CacheOptions options_;
  RedisPool pool_;
  Clock* clock_;
  std::unique_ptr<FsCacheTier> fs_;  // null when the filesystem tier is disabled
  static constexpr int64_t kSweepIntervalMs = 3600 * 1000;
  std::atomic<int64_t> next_sweep_ms_{0};  // when MaybeSweep runs next (0: not scheduled yet)
  std::unique_ptr<prometheus::Registry> own_registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Counter* degraded_requests_;
  std::atomic<bool> degraded_{false};
  std::atomic<int64_t> redis_retry_at_ms_{0};
};

}  // namespace streamfleet
