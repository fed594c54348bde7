#pragma once
// Task types over the SQL store (streamfleet/sql/sql_store.h). `store` may be nullptr (no database reachable at
// startup): then these tasks fail with kFailedPrecondition (dead-lettered, not retried).
//   generation_chunks.purge  {"older_than": "7d"}  (or {} for CHUNK_RETENTION): deletes generation_chunks
//                            rows created before now - older_than. Meant as a periodic task, e.g.
//                            PERIODIC_TASKS=chunks-purge=generation_chunks.purge@1h@low. With an object store
//                            (`archive` may be nullptr: ARTIFACT_STORE unset) each generation's rows are first
//                            written to its archive object (streamfleet/artifacts/chunk_archive.h), and deleted
//                            only once it is stored; {"archive": false} purges without archiving.
//   hash.sync                {"pattern": "progress:*", "table": "redis_hash_snapshots"}: write-behind of
//                            Redis hashes: SCAN MATCH pattern COUNT 100 TYPE hash (never KEYS), HGETALL each,
//                            upsert (key, fields JSON, synced_at) into redis_hash_snapshots, one transaction
//                            per SCAN page. Idempotent. "table" may be omitted; any other table is refused.
#include "queue-worker/handlers.h"
#include "streamfleet/artifacts/object_store.h"

namespace streamfleet::worker {

// The one table hash.sync writes (a whitelist of one: no task payload ever names a table in SQL).
inline constexpr const char* kHashSnapshotTable = "redis_hash_snapshots";

// "7d", "12h", "30m", "90s", "500ms" (a bare number = seconds) into milliseconds.
StatusOr<int64_t> ParseRetentionMs(const std::string& text);

void RegisterStoreHandlers(HandlerRegistry& registry, SqlStore* store, ObjectStore* archive, Clock& clock);

}  // namespace streamfleet::worker
