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

// Migrates `store` only when a migration is missing: Migrate takes the write lock (SQLite) and runs CREATE TABLE
// IF NOT EXISTS, which PostgreSQL 15+ refuses to a role without CREATE on the schema even when the table exists.
Status MigrateIfBehind(SqlStore& store);

// `config` with a finalization's buffer deleted at once (MarkCompacted with a negative grace): the buffer goes
// only when no chunk arrived since the snapshot the row was written from, in the same atomic step, and never
// when the finalization wrote nothing (another organization's generation) or kept the row.
Config DeletingBufferConfig(const Config& config);

// Migrates the store first when a migration is missing (idempotent). kNotFound when nothing is buffered for the generation.
// `by` is recorded as compacted_by ("streamfleetctl", "streamfleet-admin").
StatusOr<ManualCompaction> CompactGenerationNow(const Config& config, RedisClient& redis, SqlStore& store,
                                                const GenerationId& gen, bool delete_buffer, const std::string& by);

}  // namespace streamfleet
