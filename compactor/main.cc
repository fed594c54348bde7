// streamfleet-compactor: thin main over the compactor library.
#include <atomic>
#include <iostream>
#include <thread>

#include "compactor/compactor_loops.h"
#include "streamfleet/base/backoff.h"
#include "streamfleet/base/log.h"
#include "streamfleet/observability/metrics_server.h"
#include "streamfleet/base/process_cli.h"
#include "streamfleet/base/shutdown.h"
#include "streamfleet/base/text.h"

using namespace streamfleet;

int main(int argc, char** argv) {
  DaemonInfo info{"streamfleet-compactor",
                  "Consumes the chunk streams in the \"compactor\" group, buffers each generation in Redis and\n"
                  "finalizes it (final marker, total reached or idle timeout) into the scenario_generations row.",
                  "METRICS_LISTEN (default 0.0.0.0:9101: /metrics, /healthz, /readyz)",
                  {}};
  if (auto code = HandleDaemonArgs(argc, argv, info)) return *code;
  auto config = LoadConfig(ProcessEnv(), "0.0.0.0:9101");
  if (!config.ok()) {
    std::cerr << "streamfleet-compactor: configuration error: " << config.status().message() << "\n";
    return 2;
  }
  InitLogging("compactor", config->log_level, config->log_json);
  Shutdown::InstallSignalHandlers();
  auto store = SqlStore::Open(config->database_url);
  if (!store.ok()) {
    SF_LOG_ERROR("database: {}", store.status().ToString());
    return 2;
  }
  // Migrations are idempotent and serialized across processes; wait for the DB if it is not up yet
  // (logged when the wait starts and when it ends, not per attempt).
  bool waiting = false;
  for (JitteredBackoff backoff(100); !Shutdown::Requested();) {
    Status s = (*store)->Migrate();
    if (s.ok()) {
      if (waiting) SF_LOG_INFO("database ready");
      break;
    }
    if (!waiting) SF_LOG_WARN("database not ready: {} (retrying with backoff)", s.ToString());
    waiting = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff.Next()));
  }
  RedisServerClock clock;
  auto registry = std::make_shared<prometheus::Registry>();
  store->reset();  // migrated; each loop opens its own session
  auto opened = compactor::CompactorLoops::Open(*config, clock, *registry);
  if (!opened.ok()) {
    SF_LOG_ERROR("database: {}", opened.status().ToString());
    return 2;
  }
  compactor::CompactorLoops& service = **opened;
  auto metrics = MetricsServer::Start(
      config->metrics_listen, "compactor", registry, [&] { return service.Ready(); },
      [&] { service.SampleGauges(); });
  if (!metrics.ok()) {
    SF_LOG_ERROR("metrics listener: {}", metrics.status().ToString());
    return 2;
  }
  (*metrics)->EnableRedisHealth(config->redis);
  SF_LOG_INFO("compactor {} started: {} loops, redis {}:{}, database {}, metrics on port {}", config->consumer_name,
              service.size(), config->redis.host, config->redis.port, RedactUrl(config->database_url),
              (*metrics)->port());
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    while (!Shutdown::Requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop.store(true);
  });
  service.Run(stop);
  watcher.join();
  (*metrics)->Stop();
  SF_LOG_INFO("compactor stopped");
  return 0;
}
