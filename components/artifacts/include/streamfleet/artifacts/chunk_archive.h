#pragma once
// The generation_chunks archive (docs/storage.md, "Chunk archive"): before generation_chunks.purge deletes a
// generation's old chunk rows, they are written to the object store as one zstd-compressed NDJSON object per
// generation, chunk-archive/{generation_id}.ndjson.zst, one line per chunk in seq order:
//   {"generation_id": 7, "organization_id": 1, "scenario_id": 3 | null, "seq": 0, "data_base64": "..."}
// (base64 like the table's column: chunk data is bytes, not necessarily UTF-8). streamfleetctl
// replay-generation reads it back when the rows are gone.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "streamfleet/artifacts/object_store.h"
#include "streamfleet/base/config.h"
#include "streamfleet/sql/sql_store.h"

namespace streamfleet {

std::string ChunkArchiveKey(int64_t generation_id);

// The largest archive text a generation within the configured limits can have (its chunks base64-encoded,
// plus each line's fields): what a reader is prepared to decompress.
size_t ChunkArchiveMaxBytes(const Config& config);

// Adds `rows` (all of one generation) to the generation's archive object: what the object already holds is
// kept (a seq archived before keeps its data, as the table's ON CONFLICT DO NOTHING does), so archiving again
// after a crash or a re-run is idempotent. Returns the number of chunks in the object once it is stored.
StatusOr<int64_t> ArchiveChunks(ObjectStore& store, const std::vector<ChunkRow>& rows, size_t max_bytes);

// The archived rows of a generation in seq order; kNotFound without an archive object, kDataLoss when the
// object is not a valid archive of this generation.
StatusOr<std::vector<ChunkRow>> LoadChunkArchive(ObjectStore& store, int64_t generation_id, size_t max_bytes);

}  // namespace streamfleet
