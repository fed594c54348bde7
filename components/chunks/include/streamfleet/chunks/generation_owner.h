#pragma once
// Tenant isolation of generation ids: an id belongs to the first organization that uses it. Ingest records
// the owner atomically with the first chunk (standalone: inside its append script; cluster: a SET NX of its
// own just before, the owner key living in another slot), StartGeneration records it for the ids it hands
// out, and the compactor checks it (claiming it for envelopes written by hand) before a row is written. The
// SQL upsert is the backstop: its condition includes the organization, so a row never changes owner.
//
// Thread-safety: stateless. Errors: kFailedPrecondition whose message starts with kOwnedElsewhere (callers
// answer 409 or dead-letter with it; it never names the owner), or the Redis error.
#include <cstdint>
#include <string>
#include <vector>

#include "streamfleet/base/keys.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/sql/owned_elsewhere.h"

namespace streamfleet {

// SET owner org NX GET EX ttl: claims the id when nobody has, and returns the previous owner either way.
std::vector<std::string> ClaimOwnerCommand(const KeySchema& keys, int64_t org, int64_t gen, int64_t ttl_s);
// SET owner org EX ttl: records `org` as the owner whatever the record said (a correction from the row).
std::vector<std::string> SetOwnerCommand(const KeySchema& keys, int64_t org, int64_t gen, int64_t ttl_s);
// The reply of ClaimOwnerCommand: Ok when `org` owns the id (claimed now or before).
Status CheckClaimReply(const RedisValue& reply, int64_t org, int64_t gen);
Status ClaimGeneration(RedisCommands& redis, const KeySchema& keys, int64_t org, int64_t gen, int64_t ttl_s);

}  // namespace streamfleet
