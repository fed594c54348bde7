#include "streamfleet/chunks/generation_start.h"

#include "streamfleet/chunks/generation_owner.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet {

std::string GenerationIdsKey(const Config& config) { return config.stream_prefix + ":generation_ids"; }

StatusOr<StartedGeneration> StartGeneration(RedisCommands& redis, const Config& config, GenerationRequest& req,
                                            int64_t now_ms) {
  // The id must be this organization's: one that somebody already used for chunks of their own (ids are
  // client-chosen there) is skipped. The skips double, so a tenant that claims a run of ids ahead of the
  // counter cannot make starting generations fail for everyone: 40 tries reach 2^40 ids further.
  KeySchema keys = KeySchema::FromConfig(config);
  constexpr int kMaxTries = 40;
  for (int i = 0;; ++i) {
    auto id = redis.Command({"INCRBY", GenerationIdsKey(config), std::to_string(int64_t{1} << i)});
    if (!id.ok()) return id.status();
    req.generation_id = id->AsInt();
    Status claim = ClaimGeneration(redis, keys, req.organization_id, req.generation_id, config.owner_ttl_s);
    if (claim.ok()) break;
    if (!IsOwnedElsewhere(claim)) return claim;
    if (i + 1 >= kMaxTries) return Status::Unavailable("generation ids: no free id found; try again");
  }
  EnqueueOptions opts = EnqueueOptions::FromConfig(config);
  opts.id = "generation-" + std::to_string(req.generation_id);
  auto r = EnqueueTask(redis, TaskKeys::FromConfig(config), kGenerationRunTask, GenerationRunPayload(req), opts,
                       now_ms);
  if (!r.ok()) return r.status();
  return StartedGeneration{req.generation_id, r->id};
}

}  // namespace streamfleet
