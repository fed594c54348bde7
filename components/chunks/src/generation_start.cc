#include "streamfleet/chunks/generation_start.h"

#include <optional>
#include <utility>

#include "streamfleet/base/codec.h"
#include "streamfleet/chunks/generation_owner.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet {

std::string GenerationIdsKey(const Config& config) { return config.stream_prefix + ":generation_ids"; }

namespace {

// A new id this organization owns: one that somebody already used for chunks of their own (ids are
// client-chosen there) is skipped. The skips double, so a tenant that claims a run of ids ahead of the
// counter cannot make starting generations fail for everyone: 40 tries reach 2^40 ids further.
StatusOr<int64_t> AllocateGenerationId(RedisCommands& redis, const Config& config, int64_t org) {
  KeySchema keys = KeySchema::FromConfig(config);
  constexpr int kMaxTries = 40;
  for (int i = 0;; ++i) {
    auto id = redis.Command({"INCRBY", GenerationIdsKey(config), std::to_string(int64_t{1} << i)});
    if (!id.ok()) return id.status();
    Status claim = ClaimGeneration(redis, keys, org, id->AsInt(), config.owner_ttl_s);
    if (claim.ok()) return id->AsInt();
    if (!IsOwnedElsewhere(claim)) return claim;
    if (i + 1 >= kMaxTries) return Status::Unavailable("generation ids: no free id found; try again");
  }
}

// "<generation id> <request digest>", as the idempotency key holds it.
std::optional<std::pair<int64_t, std::string>> ParseRemembered(const std::string& v) {
  auto space = v.find(' ');
  if (space == std::string::npos) return std::nullopt;
  int64_t id = 0;
  try {
    id = std::stoll(v.substr(0, space));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (id <= 0) return std::nullopt;
  return std::make_pair(id, v.substr(space + 1));
}

}  // namespace

StatusOr<StartedGeneration> StartGeneration(RedisCommands& redis, const Config& config, GenerationRequest& req,
                                            int64_t now_ms, const std::string& idempotency_key) {
  EnqueueOptions opts = EnqueueOptions::FromConfig(config);
  StartedGeneration started;
  if (idempotency_key.empty()) {
    auto id = AllocateGenerationId(redis, config, req.organization_id);
    if (!id.ok()) return id.status();
    req.generation_id = *id;
  } else {
    req.generation_id = 0;
    const std::string digest = Sha256Hex(GenerationRunPayload(req));
    // Under the key prefix, beside the organization's control hashes: the Redis user ingest runs as may use
    // those keys (deploy/redis/users.acl), and no other organization's key can be named.
    const std::string key = config.key_prefix + ":org:" + std::to_string(req.organization_id) +
                            ":start_idempotency:" + idempotency_key;
    auto known = redis.Command({"GET", key});
    if (!known.ok()) return known.status();
    if (known->is_nil()) {
      auto id = AllocateGenerationId(redis, config, req.organization_id);
      if (!id.ok()) return id.status();
      // Remembered before the task is enqueued: a retry after a failure in between enqueues it (below).
      auto set = redis.Command({"SET", key, std::to_string(*id) + " " + digest, "NX", "GET", "EX",
                                std::to_string(kStartIdempotencyTtlS)});
      if (!set.ok()) return set.status();
      known = std::move(set);  // nil: ours; else the start of a request with this key that came in meanwhile
      if (known->is_nil()) req.generation_id = *id;
    }
    if (req.generation_id == 0) {
      auto remembered = ParseRemembered(known->str);
      if (!remembered) return Status::Internal("idempotency key " + key + " holds something else");
      if (remembered->second != digest) {
        return Status(StatusCode::kAlreadyExists,
                      "the Idempotency-Key was used for another generation request within " +
                          std::to_string(kStartIdempotencyTtlS / 3600) + " hours");
      }
      req.generation_id = remembered->first;
      started.replayed = true;
    }
    // At most one generation.run per generation, however many retries: unique to the generation for as long as
    // the key is remembered (a unique key lives its TTL out; it is not given back when the task finishes).
    opts.unique_key = kGenerationTaskPrefix + std::to_string(req.generation_id);
    opts.unique_ttl_s = kStartIdempotencyTtlS;
  }
  opts.id = kGenerationTaskPrefix + std::to_string(req.generation_id);
  auto r = EnqueueTask(redis, TaskKeys::FromConfig(config), kGenerationRunTask, GenerationRunPayload(req), opts,
                       now_ms);
  if (!r.ok()) return r.status();
  if (r->duplicate && r->id != opts.id) {
    // The unique key is held by another task (one enqueued through the task API with this unique_key): this
    // generation's task is not in, and answering 202 would leave it never running.
    return Status::Internal("unique key " + opts.unique_key + " is held by task " + r->id +
                            ", not by this generation's task");
  }
  started.generation_id = req.generation_id;
  started.task_id = opts.id;
  return started;
}

}  // namespace streamfleet
