#pragma once
// The C++ task SDK: task handlers of your own in a worker binary of your own, run the way
// streamfleet-queue-worker runs its built-in ones (it is itself a user of this header): configuration from
// the environment, WORKER_CONCURRENCY slots over the weighted QUEUES, retries with backoff, dead letters,
// timeouts and cancellation, status records, /metrics /healthz /readyz, drain on SIGTERM. And Enqueue, for
// C++ producers. The guide: docs/handlers.md.
//
//   int main(int argc, char** argv) {
//     streamfleet::Worker w;
//     streamfleet::HandlerOptions o;
//     o.retry = streamfleet::RetryPolicy{3, 500, 10000};  // attempts, backoff base and cap (ms)
//     o.timeout = std::chrono::seconds(30);
//     w.Handle("thumbnail.render", [](streamfleet::Task& t) -> streamfleet::Status {
//       auto p = t.payload_json();
//       if (!p.ok()) return p.status();  // not JSON: dead-lettered at once
//       ...
//       t.set_result(R"({"url": "..."})");
//       return streamfleet::Status::Ok();
//     }, o);
//     return w.Run(argc, argv);
//   }
//
// CMake: find_package(streamfleet REQUIRED) and target_link_libraries(app PRIVATE streamfleet::worker).
//
// Thread-safety: build a Worker and call Handle from one thread, before Run. Handlers run concurrently, one
// task per slot thread at a time, so whatever they share must be thread-safe; a Task is used only by its
// handler's call. Enqueue uses the client it is given (a RedisClient is not shared between threads).
// Errors: Run returns the process's exit code (0 after a clean stop, 2 for a configuration or start error,
// e.g. an invalid HandlerOptions, named on stderr). A handler's Status decides its task's fate (HandlerOptions).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "streamfleet/base/config.h"
#include "streamfleet/base/status.h"
#include "streamfleet/base/task_specs.h"

namespace streamfleet {

class RedisClient;
class RedisCommands;
namespace worker {
struct TaskContext;
}

// The most bytes of a result kept in the task's status record (as for push handlers): a longer one is cut.
inline constexpr size_t kMaxTaskResultBytes = 64 * 1024;

// One attempt of one task, as its handler sees it. Valid only during the handler's call, on its thread.
class Task {
 public:
  const std::string& id() const;       // the same on every attempt and redelivery: the idempotency key
  const std::string& type() const;
  const std::string& queue() const;
  const std::string& payload() const;  // as enqueued (JSON text by convention)
  // The payload parsed with the input limits (16 MiB, nesting depth, no duplicate keys); an empty payload
  // is {}. Not JSON: kInvalidArgument "payload: <why>", which dead-letters the task when returned.
  StatusOr<nlohmann::json> payload_json() const;
  int attempt() const;       // 0 on the first run, then the failed attempts before this one
  int max_attempts() const;  // the type's policy: attempt() + 1 == max_attempts() is the last try
  int64_t enqueued_at_ms() const;

  // Set when this attempt's timeout passed or its lease went to another worker: the attempt already counts
  // as failed (the task runs again), so a long handler checks it between steps and returns.
  bool cancelled() const;
  // When the timeout fires (time_point::max() when the type has none): for calls that take a timeout.
  std::chrono::steady_clock::time_point deadline() const;

  // The task's result, kept in its status record for TASK_RESULT_TTL (at most kMaxTaskResultBytes) when
  // the handler returns OK.
  void set_result(std::string result);
  // On an error return: retry after `delay` instead of the policy's backoff (still one of its attempts;
  // at most a day). For "the downstream said come back in N seconds".
  void retry_after(std::chrono::milliseconds delay);

  // This attempt's own Redis connection (e.g. to Enqueue follow-up tasks) and the worker's configuration.
  RedisClient& redis() const;
  const Config& config() const;

  // Made by the worker.
  Task(worker::TaskContext& ctx, int max_attempts) : ctx_(ctx), max_attempts_(max_attempts) {}

 private:
  worker::TaskContext& ctx_;
  int max_attempts_;
};

// What a handler returns:
//   OK                                       succeeded (the result is kept)
//   kInvalidArgument, kFailedPrecondition    permanent: dead-lettered at once, with the message as reason
//   any other error, or an exception         retried with backoff until the policy's attempts are used up,
//                                            then dead-lettered ("failed after N attempts: ...")
using TaskHandler = std::function<Status(Task& task)>;

struct HandlerOptions {
  // Attempts and backoff; nullopt = TASK_MAX_ATTEMPTS / TASK_BACKOFF_BASE / TASK_BACKOFF_CAP. The
  // operator's TASK_POLICY for the type wins over this.
  std::optional<RetryPolicy> retry;
  // Each attempt's timeout; nullopt = TASK_TIMEOUT, 0 = none. The operator's TASK_TIMEOUTS for the type wins
  // over this.
  std::optional<std::chrono::milliseconds> timeout;
  // The most tasks of this type running at once in this process (0 = no limit but WORKER_CONCURRENCY). A
  // task over the limit waits for a running one to end while holding its slot (its timeout counting).
  int concurrency = 0;
};

struct WorkerOptions {
  std::string name = "streamfleet-queue-worker";  // --help and error messages
  std::string summary =
      "Runs typed background tasks from the queue streams: retries with backoff, dead letters,\n"
      "delayed and periodic tasks, reclaim from dead workers, graceful drain on SIGTERM.";
  std::string log_name = "queue-worker";        // the logs' process field and the metrics' process label
  std::string metrics_listen = "0.0.0.0:9102";  // METRICS_LISTEN's default
  // The built-in task types (noop, generation.compact, generation.run, cache.*, hash.sync, webhook, ...).
  // Keep them when this worker reads the queues the fleet's built-in tasks go to: a worker without a
  // handler for a task's type dead-letters it.
  bool builtin_handlers = true;
  // TASK_ROUTES (docs/push-handlers.md). An exact route replaces a handler of the same type (built-in or
  // Handle's): the operator's configuration wins over the code.
  bool push_routes = true;
};

class Worker {
 public:
  explicit Worker(WorkerOptions options = {});
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The handler for `type` (a later Handle for the same type, or for a built-in's, replaces it).
  Worker& Handle(const std::string& type, TaskHandler handler, HandlerOptions options = {});
  // Runs the worker until SIGTERM/SIGINT, then drains (running tasks finish): --help, --version, the
  // configuration from the environment, logging, the metrics endpoint. Returns the exit code; call once.
  int Run(int argc, char** argv);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Enqueueing from C++ (what streamfleetctl enqueue and the task API do, with the same checks).
struct TaskOptions {
  std::string queue = "default";
  int64_t run_at_ms = 0;                // unix ms; 0 = now (or after `delay`)
  std::chrono::milliseconds delay{0};   // run this much later (when run_at_ms is 0)
  std::string unique_key;               // "" = not unique; else a second enqueue within unique_for is a no-op
  std::chrono::seconds unique_for{3600};
};

struct EnqueuedTask {
  std::string id;
  bool duplicate = false;  // the unique key was held: nothing enqueued; id is the task that holds it
  bool scheduled = false;  // waiting for its time in the scheduled set
};

// Enqueues one task on `redis` (RedisClient::Connect(config.redis), streamfleet/redis/redis.h; a handler's
// task.redis()) with the fleet's key schema and status-record TTL from `config`. kInvalidArgument before
// anything is sent for a payload that is not JSON or an invalid queue name; kUnavailable when Redis is not.
StatusOr<EnqueuedTask> Enqueue(RedisCommands& redis, const Config& config, const std::string& type,
                               const std::string& payload, const TaskOptions& options = {});
// The same on a connection of its own, opened and closed by the call: for a one-off.
StatusOr<EnqueuedTask> Enqueue(const Config& config, const std::string& type, const std::string& payload,
                               const TaskOptions& options = {});

}  // namespace streamfleet
