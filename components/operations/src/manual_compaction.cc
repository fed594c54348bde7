#include "streamfleet/operations/manual_compaction.h"

#include <algorithm>

#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet {

StatusOr<ManualCompaction> CompactGenerationNow(const Config& config, RedisClient& redis, SqlStore& store,
                                                const GenerationId& gen, bool delete_buffer, const std::string& by) {
  // Migrated only when a migration is missing (a first compaction before any compactor ran): Migrate takes the
  // write lock (SQLite) and runs CREATE TABLE IF NOT EXISTS, which PostgreSQL refuses to a role without CREATE
  // on the schema even when the table exists (the default from PostgreSQL 15): every "compact now" failed.
  auto applied = store.Migrations();
  if (!applied.ok()) return applied.status();
  const bool current = std::all_of(applied->begin(), applied->end(), [](const MigrationInfo& m) { return m.applied; });
  if (!current) {
    if (Status s = store.Migrate(); !s.ok()) return s;
  }
  // Deleting the buffer is marking it compacted with no grace (MarkCompacted, a negative grace): it lets the
  // buffer go only when no chunk arrived since the snapshot the row was written from, in the same atomic step.
  // A plain DEL after the finalization lost the chunks that came in between, and deleted the buffer whatever
  // the finalization did (nothing, for another organization's generation or a row it kept).
  Config effective = config;
  if (delete_buffer) {
    effective.delete_after_compact = true;
    effective.delete_grace_s = -1;
  }
  RedisServerClock clock;
  ChunkBuffer buffer(effective, clock);
  Cache cache(effective.redis, CacheOptionsFromConfig(effective));
  Finalizer fin(effective, buffer, store, by, &cache);
  auto o = fin.Finalize(redis, {gen, "manual", std::to_string(WallClockMs()) + "-manual"});
  if (!o.ok()) return o.status();
  const KeySchema& keys = buffer.keys();
  if (o->empty) return Status::NotFound("no buffer for " + keys.BufferKey(gen) + " (nothing to compact)");
  if (o->owned_elsewhere) {
    return Status::FailedPrecondition("generation " + std::to_string(gen.gen) +
                                      " belongs to another organization than " + std::to_string(gen.org) +
                                      ": nothing written, the buffer left as it is");
  }
  ManualCompaction out{*o, false};
  if (delete_buffer && o->marked_compacted && !o->kept_row) {  // marked with no grace: deleted
    auto z = redis.Command({"ZREM", keys.DeadlinesKeyOf(gen), KeySchema::Member(gen)});
    if (!z.ok()) return z.status();
    out.buffer_deleted = true;
  }
  return out;
}

}  // namespace streamfleet
