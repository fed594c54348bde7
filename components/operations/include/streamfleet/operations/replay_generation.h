#pragma once
// streamfleetctl replay-generation: rebuild a generation's Redis buffer from its `generation_chunks` rows and
// finalize it with the compactor's own Finalizer (what a `test:redis-buffer` command did in the PHP apps). Safe to repeat: the
// buffer dedupes by seq and the row upsert is idempotent.
#include <cstdint>
#include <functional>

#include "streamfleet/chunks/finalizer.h"

namespace streamfleet {

struct ReplayResult {
  GenerationId gen;
  int64_t rows = 0;       // generation_chunks rows read
  int64_t appended = 0;   // chunks that were not in the buffer already
  FinalizeOutcome outcome;
  bool buffer_deleted = false;
};

// kNotFound when the generation has no generation_chunks rows (GENERATION_CHUNK_STORAGE=redis keeps none).
// on_progress(done, total) is called as chunks are applied.
StatusOr<ReplayResult> ReplayGeneration(RedisClient& redis, SqlStore& store,
                                        ChunkBuffer& buffer, Finalizer& finalizer,
                                        int64_t generation_id, bool delete_buffer,
                                        const std::function<void(int64_t, int64_t)>& on_progress);

}  // namespace streamfleet
