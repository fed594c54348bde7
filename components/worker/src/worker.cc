// Worker (streamfleet/worker/worker.h): what streamfleet-queue-worker's main was, with the handlers of the
// program that runs it. The worker itself is the queue-worker's library (queue-worker/worker_service.h).
#include "streamfleet/worker/worker.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "queue-worker/generation_run.h"
#include "queue-worker/push_handlers.h"
#include "queue-worker/store_tasks.h"
#include "queue-worker/watchdog.h"
#include "queue-worker/webhook.h"
#include "queue-worker/worker_service.h"
#include "sdk_handler.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/time.h"
#include "streamfleet/daemon/run_process.h"
#include "streamfleet/operations/operator_task.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

// Task: a view of the attempt's TaskContext.
const std::string& Task::id() const { return ctx_.task.id(); }
const std::string& Task::type() const { return ctx_.task.type(); }
const std::string& Task::queue() const { return ctx_.task.queue(); }
const std::string& Task::payload() const { return ctx_.task.payload(); }
StatusOr<nlohmann::json> Task::payload_json() const { return ctx_.PayloadJson(); }
int Task::attempt() const { return ctx_.task.attempt(); }
int Task::max_attempts() const { return max_attempts_; }
int64_t Task::enqueued_at_ms() const { return ctx_.task.enqueued_at_ms(); }
bool Task::cancelled() const { return ctx_.Cancelled(); }
std::chrono::steady_clock::time_point Task::deadline() const { return ctx_.deadline; }
void Task::set_result(std::string result) { ctx_.result = std::move(result); }
void Task::retry_after(std::chrono::milliseconds delay) { ctx_.retry_after_ms = std::max<int64_t>(0, delay.count()); }
RedisClient& Task::redis() const { return ctx_.redis; }
const Config& Task::config() const { return ctx_.config; }

namespace {

struct Registered {
  std::string type;
  TaskHandler handler;
  HandlerOptions options;
};

Status Check(const Registered& r) {
  const std::string what = "Worker::Handle(\"" + r.type + "\"): ";
  if (r.type.empty()) return Status::InvalidArgument("Worker::Handle: a handler needs a task type");
  if (!r.handler) return Status::InvalidArgument(what + "no handler function");
  if (r.options.concurrency < 0) return Status::InvalidArgument(what + "concurrency must be >= 0");
  if (r.options.timeout && r.options.timeout->count() < 0) return Status::InvalidArgument(what + "timeout must be >= 0");
  if (const auto& p = r.options.retry; p && (p->max_attempts < 1 || p->base_ms < 0 || p->cap_ms < 0)) {
    return Status::InvalidArgument(what + "retry needs max_attempts >= 1 and backoff milliseconds >= 0");
  }
  return Status::Ok();
}

StatusOr<RunningService> Start(ProcessContext& ctx, const WorkerOptions& options, const std::vector<Registered>& mine) {
  Config& config = ctx.config;
  for (const Registered& r : mine) SF_RETURN_IF_ERROR(Check(r));
  // The code's timeouts, under the operator's TASK_TIMEOUTS (the worker reads them from its Config).
  for (const Registered& r : mine) {
    if (r.options.timeout && !config.task_timeouts.contains(r.type)) config.task_timeouts[r.type] = r.options.timeout->count();
  }
  auto clock = std::make_shared<RedisServerClock>();
  auto handlers = std::make_shared<worker::HandlerRegistry>();
  std::shared_ptr<SqlStore> store;
  std::shared_ptr<Cache> cache;
  std::shared_ptr<ObjectStore> archive;
  if (options.builtin_handlers) {
    worker::RegisterBuiltins(*handlers, *clock);
    // cache.warm, hash.sync and generation_chunks.purge use the database, generation.run writes rows; an
    // outage fails those tasks, which retry.
    store = SqlStore::OpenOptional(config.database_url,
                                   "cache.warm, hash.sync and generation_chunks.purge tasks will fail");
    cache = std::make_shared<Cache>(config.redis, CacheOptionsFromConfig(config), ctx.registry.get());
    worker::RegisterCacheHandlers(*handlers, *cache, store.get());
    archive = OpenObjectStore(config);  // ARTIFACT_STORE: chunk rows are archived before they are purged
    worker::RegisterStoreHandlers(*handlers, store.get(), archive.get(), *clock);
    worker::RegisterWebhookHandler(*handlers);
    worker::RegisterGenerationRun(*handlers, store.get());
  }
  // After the built-ins: the program's own handler for a built-in's name replaces it.
  for (const Registered& r : mine) {
    if (r.options.retry) handlers->SetPolicy(r.type, *r.options.retry);
    handlers->Register(r.type, worker::SdkHandler(r.handler, r.options.concurrency,
                                                  handlers->Policy(r.type, config).max_attempts));
  }
  // Last: an exact route replaces the handler of its type (the operator's configuration wins over the code).
  if (options.push_routes) {
    worker::RegisterPushHandlers(*handlers, config);
  } else if (!config.task_routes.empty()) {
    SF_LOG_WARN("TASK_ROUTES is set but this worker runs no push handlers: its routes are ignored");
  }
  auto service = std::make_shared<worker::WorkerService>(config, *clock, *handlers, *ctx.registry);
  worker::WorkerService* svc = service.get();
  RunningService r;
  r.ready = [svc] { return svc->Ready(); };
  r.sample_gauges = [svc] { svc->SampleGauges(); };
  r.run = [svc](const std::atomic<bool>& stop) { svc->Run(stop); };
  r.threads_left_running = [] { return worker::Watchdog::AbandonedNow(); };
  r.started = options.log_name + " " + config.consumer_name + " started with " +
              std::to_string(config.worker_concurrency) + " slots";
  r.stopping = options.log_name + ": SIGTERM received, finishing running tasks";
  r.parts = {clock, handlers, store, cache, archive, service};
  return r;
}

}  // namespace

struct Worker::Impl {
  WorkerOptions options;
  std::vector<Registered> handlers;  // one per type, in the order first registered
};

Worker::Worker(WorkerOptions options) : impl_(std::make_unique<Impl>()) { impl_->options = std::move(options); }
Worker::~Worker() = default;

Worker& Worker::Handle(const std::string& type, TaskHandler handler, HandlerOptions options) {
  for (Registered& r : impl_->handlers) {
    if (r.type == type) {
      r.handler = std::move(handler);
      r.options = options;
      return *this;
    }
  }
  impl_->handlers.push_back({type, std::move(handler), options});
  return *this;
}

int Worker::Run(int argc, char** argv) {
  const WorkerOptions& o = impl_->options;
  ProcessSpec spec{{o.name, o.summary, "METRICS_LISTEN (default " + o.metrics_listen + ": /metrics, /healthz, /readyz)", {}},
                   ProcessRole::kWorker, o.log_name, o.metrics_listen};
  return RunProcess(argc, argv, spec, [this](ProcessContext& ctx) { return Start(ctx, impl_->options, impl_->handlers); });
}

StatusOr<EnqueuedTask> Enqueue(RedisCommands& redis, const Config& config, const std::string& type,
                               const std::string& payload, const TaskOptions& options) {
  const int64_t now = WallClockMs();
  OperatorTask task{type, payload.empty() ? "{}" : payload, options.queue, options.unique_key, options.run_at_ms,
                    options.unique_for.count()};
  if (task.run_at_ms == 0 && options.delay.count() > 0) task.run_at_ms = now + options.delay.count();
  auto r = EnqueueOperatorTask(redis, config, task, now);
  if (!r.ok()) return r.status();
  return EnqueuedTask{std::move(r->id), r->duplicate, r->scheduled};
}

StatusOr<EnqueuedTask> Enqueue(const Config& config, const std::string& type, const std::string& payload,
                               const TaskOptions& options) {
  auto redis = RedisClient::Connect(config.redis);
  if (!redis.ok()) return redis.status();
  return Enqueue(**redis, config, type, payload, options);
}

}  // namespace streamfleet
