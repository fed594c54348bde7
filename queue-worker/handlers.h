#pragma once
// Task handlers: the registry a worker dispatches on, per-type retry policies, and the built-in types.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "streamfleet/cache/cache.h"
#include "streamfleet/base/clock.h"
#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/sql/sql_store.h"
#include "streamfleet/v1/task.pb.h"

namespace streamfleet::worker {

// The largest task payload a built-in handler parses (the same as ingest's default body limit).
inline constexpr size_t kMaxTaskPayloadBytes = 16 * 1024 * 1024;

struct TaskContext {
  const v1::TaskEnvelope& task;
  RedisClient& redis;   // this attempt's own connection (not shared with the slot's lease heartbeat)
  const Config& config;
  std::string result;   // set by the handler; kept in the status hash (TASK_RESULT_TTL)
  // Set when the attempt's timeout (TASK_TIMEOUT / TASK_TIMEOUTS) passed or its lease was lost: the
  // attempt already counts as failed, so a long handler should check it between steps and return.
  const std::atomic<bool>* cancelled = nullptr;
  // When the timeout fires (time_point::max() without one): for handlers that pass timeouts on (HTTP).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // Set by a handler whose failure says when to try again (an HTTP Retry-After): the retry runs then instead
  // of after the policy's backoff (still one attempt of the policy's). 0 = the backoff.
  int64_t retry_after_ms = 0;

  bool Cancelled() const { return cancelled != nullptr && cancelled->load(); }
  // The payload as JSON, parsed with the input limits (streamfleet/base/json_input.h): a payload nested too deep,
  // larger than kMaxTaskPayloadBytes, with duplicate keys or not JSON at all is kInvalidArgument
  // ("payload: <why>"), which dead-letters the task at once with that reason instead of crashing the
  // worker. An empty payload reads as {}.
  StatusOr<nlohmann::json> PayloadJson() const;
};

// A handler returns OK, or an error (retried with backoff up to the policy's attempts). Exceptions are
// caught by the worker and treated as errors.
using Handler = std::function<Status(TaskContext&)>;

class HandlerRegistry {
 public:
  void Register(const std::string& type, Handler h) { handlers_[type] = std::move(h); }
  // A handler for every type matching `glob` (fnmatch: *, ?, [...]) that has no handler of its own; globs
  // are tried in the order they were registered (TASK_ROUTES' order).
  void RegisterPattern(const std::string& glob, Handler h) { patterns_.emplace_back(glob, std::move(h)); }
  // The type's own handler, else the first matching pattern's; nullptr for an unknown type.
  const Handler* Find(const std::string& type) const;
  // A handler's own default retry policy (RetryPolicy: streamfleet/base/task_specs.h).
  void SetPolicy(const std::string& type, RetryPolicy p) { policies_[type] = p; }
  // The policy a task of `type` runs under: TASK_POLICY's for the type, else the handler's own default,
  // else TASK_MAX_ATTEMPTS / TASK_BACKOFF_BASE / TASK_BACKOFF_CAP. One answer for the worker's retry
  // decision and for handlers that must know whether an attempt is their last.
  RetryPolicy Policy(const std::string& type, const Config& config) const;

 private:
  std::map<std::string, Handler> handlers_;
  std::vector<std::pair<std::string, Handler>> patterns_;
  std::map<std::string, RetryPolicy> policies_;
};

// Registers noop and generation.compact.
void RegisterBuiltins(HandlerRegistry& registry, Clock& clock);

// Registers the cache tasks over the fleet cache (streamfleet/cache/cache.h); both must outlive the registry.
//   cache.flush  {"key": K} | {"name": N} | {"pattern": P}: invalidation, SCAN COUNT 100, cache keys only.
//   cache.warm   {"generations": [{"organization_id": O, "generation_id": G}, ...], "force": false}: loads the
//                rows into the generation cache (store may be nullptr: then cache.warm fails, not retried).
void RegisterCacheHandlers(HandlerRegistry& registry, Cache& cache, SqlStore* store);

}  // namespace streamfleet::worker
