#pragma once
// Every process's observability endpoint: /metrics (Prometheus text 0.0.4 from a prometheus-cpp registry),
// /healthz (alive), /readyz (the readiness check: Redis and DB reachable). Thread-safe.
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "streamfleet/http/http_server.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/base/status.h"

namespace streamfleet {

class ProcessMetrics;

class MetricsServer {
 public:
  using ReadyCheck = std::function<Status()>;
  // Called before each scrape: refresh sampled gauges (bounded cost).
  using CollectHook = std::function<void()>;

  // Registers streamfleet_build_info{process,version} and the process_* metrics into registry.
  static StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen, const std::string& process,
                                                        std::shared_ptr<prometheus::Registry> registry,
                                                        ReadyCheck ready, CollectHook hook = nullptr);
  int port() const { return http_->port(); }
  // Serves GET /health: the seed's JSON (connected, dbSize, total_connections_received,
  // total_commands_processed, used_memory_human) from its own Redis connection.
  void EnableRedisHealth(const RedisConfig& redis);
  void Stop() { http_->Stop(); }
  ~MetricsServer();
  // The exposition text, as served on /metrics.
  std::string Render();

 private:
  MetricsServer() = default;
  void Handle(HttpExchange& ex);

  std::shared_ptr<prometheus::Registry> registry_;
  ReadyCheck ready_;
  CollectHook hook_;
  std::unique_ptr<ProcessMetrics> process_;
  std::mutex health_mu_;
  std::unique_ptr<RedisClient> health_redis_;  // guarded by health_mu_
  std::unique_ptr<HttpServer> http_;
};

}  // namespace streamfleet
