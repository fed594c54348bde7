#pragma once
// streamfleetctl replay-generation: rebuild a generation's Redis buffer from its `generation_chunks` rows and
// finalize it with the compactor's own Finalizer (what a `test:redis-buffer` command did in the PHP apps). Safe to repeat: the
// buffer dedupes by seq and the row upsert is idempotent. Rows that generation_chunks.purge archived and deleted
// are read back from the chunk archive (streamfleet/artifacts/chunk_archive.h) when an object store is given.
#include <cstdint>
#include <functional>

#include "streamfleet/artifacts/object_store.h"
#include "streamfleet/chunks/finalizer.h"

namespace streamfleet {

struct ReplayResult {
  GenerationId gen;
  int64_t rows = 0;       // chunks read: the table's rows and the archive's, each seq once
  int64_t archived = 0;   // of those, the ones only the archive still held
  // Rows of another organization under the same id (left out): the owner is the scenario_generations row's
  // organization, else the first chunk row's.
  int64_t other_organizations = 0;
  int64_t appended = 0;   // chunks that were not in the buffer already
  FinalizeOutcome outcome;
  bool buffer_deleted = false;
};

// The chunks come from the table and, when `archive` is not nullptr, from the generation's archive object
// (read within archive_max_bytes; an archived line wins over a table row of the same seq: the archive keeps a
// seq's first data, as the table does). kNotFound when
// neither has any (GENERATION_CHUNK_STORAGE=redis keeps none); an unreadable archive is an error, not a
// replay of what is left. on_progress(done, total) is called as chunks are applied. With delete_buffer,
// `finalizer` must be built on DeletingBufferConfig (streamfleet/operations/manual_compaction.h): the buffer is
// deleted by the finalization itself, only when nothing arrived meanwhile and the row was written.
// kFailedPrecondition when the generation's owner record names another organization (nothing written).
StatusOr<ReplayResult> ReplayGeneration(RedisClient& redis, SqlStore& store, ObjectStore* archive,
                                        size_t archive_max_bytes,
                                        ChunkBuffer& buffer, Finalizer& finalizer,
                                        int64_t generation_id, bool delete_buffer,
                                        const std::function<void(int64_t, int64_t)>& on_progress);

}  // namespace streamfleet
