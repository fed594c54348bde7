// streamfleet-queue-worker: thin main over the worker library (the shared part is RunProcess): which
// handlers this worker has, and the worker service that runs them.
#include "queue-worker/generation_run.h"
#include "queue-worker/push_handlers.h"
#include "queue-worker/store_tasks.h"
#include "queue-worker/webhook.h"
#include "queue-worker/worker_service.h"
#include "streamfleet/daemon/run_process.h"

using namespace streamfleet;

int main(int argc, char** argv) {
  ProcessSpec spec{{"streamfleet-queue-worker",
                    "Runs typed background tasks from the queue streams: retries with backoff, dead letters,\n"
                    "delayed and periodic tasks, reclaim from dead workers, graceful drain on SIGTERM.",
                    "METRICS_LISTEN (default 0.0.0.0:9102: /metrics, /healthz, /readyz)",
                    {}},
                   ProcessRole::kWorker, "queue-worker", "0.0.0.0:9102"};
  return RunProcess(argc, argv, spec, [](ProcessContext& ctx) -> StatusOr<RunningService> {
    const Config& config = ctx.config;
    auto clock = std::make_shared<RedisServerClock>();
    auto handlers = std::make_shared<worker::HandlerRegistry>();
    worker::RegisterBuiltins(*handlers, *clock);
    // cache.warm, hash.sync and generation_chunks.purge use the database, generation.run writes rows; an
    // outage fails those tasks, which retry.
    std::shared_ptr<SqlStore> store = SqlStore::OpenOptional(
        config.database_url, "cache.warm, hash.sync and generation_chunks.purge tasks will fail");
    auto cache = std::make_shared<Cache>(config.redis, CacheOptionsFromConfig(config), ctx.registry.get());
    worker::RegisterCacheHandlers(*handlers, *cache, store.get());
    worker::RegisterStoreHandlers(*handlers, store.get(), *clock);
    worker::RegisterWebhookHandler(*handlers);
    worker::RegisterGenerationRun(*handlers, store.get());
    // Last: a route for a built-in's name replaces it (the app's own handler wins).
    worker::RegisterPushHandlers(*handlers, config);
    auto service = std::make_shared<worker::WorkerService>(config, *clock, *handlers, *ctx.registry);
    worker::WorkerService* svc = service.get();
    RunningService r;
    r.ready = [svc] { return svc->Ready(); };
    r.sample_gauges = [svc] { svc->SampleGauges(); };
    r.run = [svc](const std::atomic<bool>& stop) { svc->Run(stop); };
    r.started = "queue-worker " + config.consumer_name + " started with " +
                std::to_string(config.worker_concurrency) + " slots";
    r.stopping = "queue-worker: SIGTERM received, finishing running tasks";
    r.parts = {clock, handlers, store, cache, service};
    return r;
  });
}
