// Cache benchmark against a running redis-server: GetOrCompute latency per tier and Redis-hit throughput.
//   redis hit        the key is in Redis
//   filesystem hit   the Redis key is deleted before each get (untimed): Redis miss + file read + warm-up SET
//   filesystem hit, Redis down   a cache pointed at a closed port (degraded mode: file read only)
//   origin           a new content each get and a trivial compute: the full miss path (Redis miss, file miss,
//                    lock, store in both tiers, unlock), i.e. the cache's own overhead on a miss
//   hits/s           1 and N threads doing Redis hits over 100 keys for --seconds
// Prints key=value result lines (see bench/run.sh).
//
//   cache_bench --redis-port P [--tmpdir DIR] [--iterations 5000] [--value-bytes 2048] [--threads 4] [--seconds 3]
#include <atomic>
#include <filesystem>
#include <thread>

#include "bench/bench_util.h"
#include "streamfleet/cache/cache.h"
#include "streamfleet/base/log.h"

using namespace streamfleet;
using namespace streamfleet::bench;

namespace {

int ClosedPort() {
  // A port nothing listens on: bind, read it, close.
  RedisConfig probe;
  for (int p = 20000; p < 20100; ++p) {
    probe.port = p;
    probe.connect_timeout_ms = 100;
    if (!RedisClient::Connect(probe).ok()) return p;
  }
  return 1;
}

void Report(const std::string& name, std::vector<double>& us) {
  Emit("cache_" + name + "_p50_us", Quantile(us, 0.50));
  Emit("cache_" + name + "_p99_us", Quantile(us, 0.99));
}

}  // namespace

int main(int argc, char** argv) {
  Flags f(argc, argv);
  spdlog::set_level(spdlog::level::err);  // degraded-mode warnings are expected here
  const int port = static_cast<int>(f.Int("redis-port", 6379));
  const int iterations = static_cast<int>(f.Int("iterations", 5000));
  const int threads = static_cast<int>(f.Int("threads", 4));
  const double seconds = f.Double("seconds", 3);
  const std::string value(static_cast<size_t>(f.Int("value-bytes", 2048)), 'v');
  const std::string dir = f.Str("tmpdir", "/tmp") + "/cache-bench";
  std::filesystem::remove_all(dir);

  auto admin = ConnectOrDie(port);
  MustOk(admin->Command({"FLUSHALL"}).status(), "FLUSHALL");
  RedisConfig rc;
  rc.port = port;
  CacheOptions o;
  o.prefix = "bench_cache";
  o.fs_dir = dir;
  Cache cache(rc, o);
  ComputeFn origin = [&]() -> StatusOr<std::string> { return value; };
  auto timed = [&](Cache& c, const std::string& content, CacheTier want) {
    auto t0 = Clk::now();
    auto r = c.GetOrCompute("spec", content, origin);
    double us = Seconds(Clk::now() - t0) * 1e6;
    if (!r.ok() || r->tier != want) {
      std::cerr << "cache_bench: expected tier " << CacheTierName(want) << ", got "
                << (r.ok() ? CacheTierName(r->tier) : r.status().ToString()) << "\n";
      std::exit(1);
    }
    return us;
  };

  std::vector<double> lat;
  for (int i = 0; i < iterations; ++i) lat.push_back(timed(cache, "cold-" + std::to_string(i), CacheTier::kOrigin));
  Report("origin", lat);

  lat.clear();
  for (int i = 0; i < iterations; ++i) lat.push_back(timed(cache, "cold-" + std::to_string(i % 100), CacheTier::kRedis));
  Report("redis_hit", lat);

  lat.clear();
  const std::string key = *cache.Key("spec", "cold-0");
  for (int i = 0; i < iterations; ++i) {
    MustOk(admin->Command({"DEL", key}).status(), "DEL");
    lat.push_back(timed(cache, "cold-0", CacheTier::kFilesystem));
  }
  Report("fs_hit", lat);

  RedisConfig down = rc;
  down.port = ClosedPort();
  Cache degraded(down, o);
  lat.clear();
  for (int i = 0; i < iterations; ++i) lat.push_back(timed(degraded, "cold-" + std::to_string(i % 100), CacheTier::kFilesystem));
  Report("fs_hit_redis_down", lat);

  for (int n : {1, threads}) {
    std::atomic<bool> stop{false};
    std::atomic<int64_t> hits{0};
    std::vector<std::thread> ts;
    auto t0 = Clk::now();
    for (int t = 0; t < n; ++t) {
      ts.emplace_back([&, t] {
        int64_t mine = 0;
        for (int i = t; !stop.load(std::memory_order_relaxed); ++i) {
          auto r = cache.GetOrCompute("spec", "cold-" + std::to_string(i % 100), origin);
          if (r.ok() && r->tier == CacheTier::kRedis) ++mine;
        }
        hits += mine;
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : ts) t.join();
    Emit("cache_redis_hits_per_s_" + std::string(n == 1 ? "1" : "n"), static_cast<double>(hits) / Seconds(Clk::now() - t0));
  }
  Emit("cache_threads", threads);
  Emit("cache_value_bytes", static_cast<double>(value.size()));
  std::filesystem::remove_all(dir);
  return 0;
}
