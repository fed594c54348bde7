#pragma once
// "Compact now" for one generation, outside the compactor loop: the operator's path, shared by
// `streamfleetctl compact-generation` and the admin UI. Same Finalizer as the compactor (same row, same
// event, same cache invalidation); optionally deletes the Redis buffer and its deadline once the row is
// committed.
#include <string>

#include "streamfleet/chunks/finalizer.h"

namespace streamfleet {

struct ManualCompaction {
  FinalizeOutcome outcome;
  bool buffer_deleted = false;
};

// Migrates the store first when a migration is missing (idempotent). kNotFound when nothing is buffered for the generation.
// `by` is recorded as compacted_by ("streamfleetctl", "streamfleet-admin").
StatusOr<ManualCompaction> CompactGenerationNow(const Config& config, RedisClient& redis, SqlStore& store,
                                                const GenerationId& gen, bool delete_buffer, const std::string& by);

}  // namespace streamfleet
