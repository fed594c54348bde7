#pragma once
// Starting a provider generation: allocate an id this organization owns and enqueue generation.run. One code
// path for ingest, `streamfleetctl generate` and the admin API. Redis only: the SQL row is created by the
// worker that runs the task, so ingest never needs the database to start one.
#include <cstdint>
#include <string>

#include "streamfleet/base/config.h"
#include "streamfleet/chunks/generation_request.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

// The key generation ids are allocated from (INCR): "{STREAMFLEET_STREAM_PREFIX}:generation_ids". Apps
// that also number generations themselves should SET it above their highest id once.
std::string GenerationIdsKey(const Config& config);

// The task id and unique key of a generation's generation.run: "generation-{id}". Reserved: the task API refuses
// unique keys that start with it (one taken by an enqueuer would block that generation's start, and generation
// ids are predictable).
inline constexpr const char kGenerationTaskPrefix[] = "generation-";

struct StartedGeneration {
  int64_t generation_id = 0;
  std::string task_id;  // "generation-{id}": `streamfleetctl tasks show generation-59`
  bool replayed = false;  // an Idempotency-Key's earlier start, answered again (nothing new started)
};

// How long an Idempotency-Key of a start is remembered: a client's retries of one request come within it.
constexpr int64_t kStartIdempotencyTtlS = 86400;

// Allocates the id (INCR) and enqueues generation.run on the "default" queue. req.generation_id is set.
// kUnavailable when Redis cannot be reached (an id may have been burned; ids are not required to be dense).
//
// With an idempotency_key (the request's Idempotency-Key header) a retry is answered with the generation the
// first request started, for kStartIdempotencyTtlS, and starts nothing: a 503 whose start had in fact gone
// through would otherwise pay the provider twice. The key is the organization's own
// ("{key_prefix}:org:{org}:start_idempotency:{key}") and remembers a digest of the request: the same key with
// another request is kAlreadyExists. The task is enqueued unique to its generation ("generation-{id}", for as
// long as the key lives), so a retry after a start that died between remembering the key and enqueueing
// enqueues it, and one after it was enqueued (or ran) enqueues nothing more.
StatusOr<StartedGeneration> StartGeneration(RedisCommands& redis, const Config& config, GenerationRequest& req,
                                            int64_t now_ms, const std::string& idempotency_key = "");

}  // namespace streamfleet
