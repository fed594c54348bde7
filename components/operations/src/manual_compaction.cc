#include "streamfleet/operations/manual_compaction.h"

#include <algorithm>

#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet {

Status MigrateIfBehind(SqlStore& store) {
  auto applied = store.Migrations();
  if (!applied.ok()) return applied.status();
  const bool current = std::all_of(applied->begin(), applied->end(), [](const MigrationInfo& m) { return m.applied; });
  return current ? Status() : store.Migrate();
}

Config DeletingBufferConfig(const Config& config) {
  // A plain DEL after the finalization lost the chunks that came in between, and deleted the buffer whatever
  // the finalization did.
  Config effective = config;
  effective.delete_after_compact = true;
  effective.delete_grace_s = -1;
  return effective;
}

StatusOr<ManualCompaction> CompactGenerationNow(const Config& config, RedisClient& redis, SqlStore& store,
                                                const GenerationId& gen, bool delete_buffer, const std::string& by) {
  // A first compaction may come before any compactor ran.
  if (Status s = MigrateIfBehind(store); !s.ok()) return s;
  const Config effective = delete_buffer ? DeletingBufferConfig(config) : config;
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
