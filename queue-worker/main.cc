// streamfleet-queue-worker: thin main over the worker library.
#include <iostream>
#include <thread>

#include "queue-worker/generation_run.h"
#include "queue-worker/store_tasks.h"
#include "queue-worker/webhook.h"
#include "queue-worker/worker_service.h"
#include "streamfleet/base/log.h"
#include "streamfleet/observability/metrics_server.h"
#include "streamfleet/base/process_cli.h"
#include "streamfleet/base/shutdown.h"

using namespace streamfleet;

int main(int argc, char** argv) {
  DaemonInfo info{"streamfleet-queue-worker",
                  "Runs typed background tasks from the queue streams: retries with backoff, dead letters,\n"
                  "delayed and periodic tasks, reclaim from dead workers, graceful drain on SIGTERM.",
                  "METRICS_LISTEN (default 0.0.0.0:9102: /metrics, /healthz, /readyz)",
                  {}};
  if (auto code = HandleDaemonArgs(argc, argv, info)) return *code;
  auto config = LoadConfig(ProcessEnv(), "0.0.0.0:9102");
  if (!config.ok()) {
    std::cerr << "streamfleet-queue-worker: configuration error: " << config.status().message() << "\n";
    return 2;
  }
  InitLogging("queue-worker", config->log_level, config->log_json);
  Shutdown::InstallSignalHandlers();
  RedisServerClock clock;
  worker::HandlerRegistry handlers;
  worker::RegisterBuiltins(handlers, clock);
  auto registry = std::make_shared<prometheus::Registry>();
  // cache.warm, hash.sync and generation_chunks.purge use the database, generation.run writes rows; Open()
  // does not connect eagerly (an outage fails those tasks, which retry).
  std::unique_ptr<SqlStore> store;
  if (auto s = SqlStore::Open(config->database_url); s.ok()) {
    store = std::move(*s);
  } else {
    SF_LOG_WARN("DATABASE_URL: {}; cache.warm, hash.sync and generation_chunks.purge tasks will fail",
                s.status().ToString());
  }
  Cache cache(config->redis, CacheOptionsFromConfig(*config), registry.get());
  worker::RegisterCacheHandlers(handlers, cache, store.get());
  worker::RegisterStoreHandlers(handlers, store.get(), clock);
  worker::RegisterWebhookHandler(handlers);
  worker::RegisterGenerationRun(handlers, store.get());
  worker::WorkerService service(*config, clock, handlers, *registry);
  auto metrics = MetricsServer::Start(
      config->metrics_listen, "queue-worker", registry, [&] { return service.Ready(); },
      [&] { service.SampleGauges(); });
  if (!metrics.ok()) {
    SF_LOG_ERROR("metrics listener: {}", metrics.status().ToString());
    return 2;
  }
  (*metrics)->EnableRedisHealth(config->redis);
  SF_LOG_INFO("queue-worker {} started with {} slots, metrics on port {}", config->consumer_name,
              config->worker_concurrency, (*metrics)->port());
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    while (!Shutdown::Requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    SF_LOG_INFO("queue-worker: SIGTERM received, finishing running tasks");
    stop.store(true);
  });
  service.Run(stop);
  watcher.join();
  (*metrics)->Stop();
  SF_LOG_INFO("queue-worker stopped");
  return 0;
}
