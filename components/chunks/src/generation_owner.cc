#include "streamfleet/chunks/generation_owner.h"

namespace streamfleet {

std::vector<std::string> ClaimOwnerCommand(const KeySchema& keys, int64_t org, int64_t gen, int64_t ttl_s) {
  return {"SET", keys.OwnerKey(gen), std::to_string(org), "NX", "GET", "EX", std::to_string(ttl_s)};
}

std::vector<std::string> SetOwnerCommand(const KeySchema& keys, int64_t org, int64_t gen, int64_t ttl_s) {
  return {"SET", keys.OwnerKey(gen), std::to_string(org), "EX", std::to_string(ttl_s)};
}

Status CheckClaimReply(const RedisValue& reply, int64_t org, int64_t gen) {
  if (reply.is_error()) return TranslateRedisError(reply.str);
  if (reply.is_nil() || reply.str == std::to_string(org)) return Status::Ok();
  return OwnedElsewhereError(gen);
}

Status ClaimGeneration(RedisCommands& redis, const KeySchema& keys, int64_t org, int64_t gen, int64_t ttl_s) {
  auto r = redis.Command(ClaimOwnerCommand(keys, org, gen, ttl_s));
  if (!r.ok()) return r.status();
  return CheckClaimReply(*r, org, gen);
}

}  // namespace streamfleet
