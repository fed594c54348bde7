#pragma once
// The HTTP task API served by ingest (docs/task-api.md): apps in any language enqueue tasks, follow them and
// cancel them without speaking the Redis protocol of docs/task-protocol.md.
//   POST   /v1/tasks          one task       -> 202 {task_id, state} (200 with duplicate: true for a held unique key)
//   POST   /v1/tasks:batch    up to 1,000    -> 202 {tasks: [{task_id, state, duplicate}, ...]}
//   GET    /v1/tasks/{id}     its status record (state, attempts, error, result, timestamps)
//   DELETE /v1/tasks/{id}     cancels it if it has not started (task_control.h)
// Enqueueing goes through EnqueueOperatorTask(s), the code path of `streamfleetctl enqueue`; POST /v1/tasks on
// the shared AsyncRedis (standard key schema) is answered without a worker thread instead (HandleFast): the
// same writes (EnqueueCommands; a unique task as one GuardedEnqueueScript call, as everywhere in the task
// API), sent asynchronously from the HTTP loop.
// Tokens are the task API's own (TASK_API_TOKENS, scopes enqueue and read), not the per-organization chunk
// tokens.
//
// Thread-safety: Handle runs on ingest's worker threads, concurrently; the shared RedisCommands is
// thread-safe (AsyncRedis, or the cluster pool) and the rest is immutable after construction.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ingest/metrics.h"
#include "streamfleet/base/config.h"
#include "streamfleet/http/http_exchange.h"
#include "streamfleet/operations/operator_task.h"
#include "streamfleet/redis/async_redis.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet::ingest {

class TaskApi {
 public:
  // At most this many tasks per POST /v1/tasks:batch.
  static constexpr size_t kMaxBatch = 1000;

  TaskApi(const Config& config, RedisCommands& redis, IngestMetrics& metrics);

  // Whether `path` is one of the task API's routes (it then answers every method on it).
  static bool Owns(const std::string& path);
  void Handle(HttpExchange& ex);
  // On the HTTP loop thread, a request whose body is complete: answers POST /v1/tasks through `async`
  // (the answer comes from its callback; `done` runs once it is answered) and returns true; false for
  // every other request (Handle then runs on a worker thread).
  bool HandleFast(const std::shared_ptr<HttpExchange>& ex, AsyncRedis& async, std::function<void()> done);

 private:
  enum class Scope { kEnqueue, kRead };
  // Answers 401/403 and returns false unless the request's bearer token has `scope`.
  bool Authorize(HttpExchange& ex, Scope scope);
  void Reject(HttpExchange& ex, int status, const std::string& reason, const std::string& detail,
              std::vector<std::pair<std::string, std::string>> headers = {});
  // Redis errors: 503 with Retry-After when it cannot be reached, 400 for what the enqueue refused, else 500.
  void RejectRedis(HttpExchange& ex, const Status& s);
  // The body as JSON (415/413/400 answered when it is not); `limit` bytes at most.
  bool ReadJson(HttpExchange& ex, size_t limit, nlohmann::json& out);
  // The single-task body, checked; nullopt when it answered.
  std::optional<OperatorTask> ReadTask(HttpExchange& ex, int64_t now_ms);
  void Enqueue(HttpExchange& ex);
  // A task without a unique key: the status record and the XADD/ZADD, answered from the add's reply.
  void AddAsync(const std::shared_ptr<HttpExchange>& ex, AsyncRedis& async, const OperatorTask& task,
                int64_t now_ms, std::function<void()> done);
  void EnqueueBatch(HttpExchange& ex);
  void Show(HttpExchange& ex, const std::string& id);
  void Cancel(HttpExchange& ex, const std::string& id);

  const Config& config_;
  RedisCommands& redis_;
  IngestMetrics& metrics_;
  std::vector<std::string> queues_;  // the queues the fleet's workers read (QUEUES): the only ones accepted
  bool open_;                         // no TASK_API_TOKENS and no INGEST_TOKENS: development, no auth
};

}  // namespace streamfleet::ingest
