#include "streamfleet/operations/manual_compaction.h"

#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet {

StatusOr<ManualCompaction> CompactGenerationNow(const Config& config, RedisClient& redis, SqlStore& store,
                                                const GenerationId& gen, bool delete_buffer, const std::string& by) {
  if (Status s = store.Migrate(); !s.ok()) return s;
  RedisServerClock clock;
  ChunkBuffer buffer(config, clock);
  Cache cache(config.redis, CacheOptionsFromConfig(config));
  Finalizer fin(config, buffer, store, by, &cache);
  auto o = fin.Finalize(redis, {gen, "manual", std::to_string(WallClockMs()) + "-manual"});
  if (!o.ok()) return o.status();
  const KeySchema& keys = buffer.keys();
  if (o->empty) return Status::NotFound("no buffer for " + keys.BufferKey(gen) + " (nothing to compact)");
  ManualCompaction out{*o, false};
  if (delete_buffer) {
    auto d = redis.Command({"DEL", keys.BufferKey(gen), keys.MetaKey(gen), keys.SeenKey(gen)});
    if (!d.ok()) return d.status();
    auto z = redis.Command({"ZREM", keys.DeadlinesKeyOf(gen), KeySchema::Member(gen)});
    if (!z.ok()) return z.status();
    out.buffer_deleted = true;
  }
  return out;
}

}  // namespace streamfleet
