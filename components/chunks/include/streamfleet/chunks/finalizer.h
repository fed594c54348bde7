#pragma once
// Finalization: snapshot the buffer, assemble in seq order, decode JSON (with a recorded fallback),
// base64-compact, upsert the row in one transaction, then mark the buffer compacted and publish a
// generation.compacted event. Idempotent: replaying the same finalize id changes nothing.
// Used by the compactor loop and by `streamfleetctl compact-generation` (same code).
// With a cache, a committed (or replayed) write invalidates the generation's cache entry
// (streamfleet/cache/generation_cache.h), so GET .../generations/{gen} never serves the row from before it.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "streamfleet/artifacts/object_store.h"
#include "streamfleet/chunks/chunk_buffer.h"
#include "streamfleet/cache/cache.h"
#include "streamfleet/sql/sql_store.h"

namespace streamfleet {

struct FinalizeRequest {
  GenerationId gen;
  std::string reason;        // "complete" | "idle_timeout" | "manual"
  std::string finalize_id;   // the finalize stream entry id (or a manual id); decides compacted_at
  // The id it was first queued under when that is not finalize_id (a requeued dead letter's field "q"):
  // what is compared with the generation's start (superseded). "" = finalize_id.
  std::string queued_id = {};
};

struct FinalizeOutcome {
  bool empty = false;            // nothing buffered (expired or never started): no row written
  // The generation id belongs to another organization (its Redis owner record or its row): nothing was
  // written; the caller dead-letters the finalize entry with kOwnedElsewhere and counts it.
  bool owned_elsewhere = false;
  // Queued before the producer started the generation over (ChunkWriter::Reset): an earlier attempt's final
  // marker or idle timeout, read after the next attempt's first chunks. Nothing was written; the next
  // attempt's own finalization writes the row.
  bool superseded = false;
  bool replay = false;           // this finalize id was already committed
  // The stored row outdid this text (it holds chunks this one lacks, or a later attempt): nothing changed.
  bool kept_row = false;
  bool marked_compacted = false; // false when chunks arrived during finalization (a later one follows)
  bool json_valid = false;
  int64_t chunk_count = 0;
  // Buffer elements that did not decode (a compressed frame that does not decompress): left out of the text,
  // counted in the row's metadata.malformed_chunks (their seqs are among missing_seqs when the total is known).
  int64_t malformed = 0;
  uint32_t attempt = 0;          // the control hash's attempt: which start of the text this is
  std::vector<int64_t> missing;
};

// Which dependency an error of FinalizeBatch came from: the compactor counts and reports the outage against
// the right one (streamfleet_compactor_{redis,db}_errors_total, its readiness). The object store
// (ARTIFACT_STORE), where a large text goes before its row, counts as the database: both are where the
// result is made durable.
enum class FinalizeDependency { kRedis, kDatabase, kArtifactStore };

class Finalizer {
 public:
  // cache: the fleet cache to invalidate after a write (nullptr: none). The object store is the one
  // ARTIFACT_STORE names (none: every text stays in its row).
  Finalizer(const Config& config, ChunkBuffer& buffer, GenerationRepository& store, std::string consumer_name,
            Cache* cache = nullptr)
      : config_(config), buffer_(buffer), store_(store), consumer_(std::move(consumer_name)), cache_(cache),
        artifacts_(OpenObjectStore(config)) {}

  // Redis errors come back as kUnavailable etc.; DB errors as the store reports them (kUnavailable for
  // an outage: retry later, the finalize entry stays pending).
  StatusOr<FinalizeOutcome> Finalize(RedisCommands& redis, const FinalizeRequest& req);
  // Many finalizations with one Redis round trip per step and ONE database transaction for all rows
  // (outcomes in input order). All or nothing: on an error nothing is acknowledged and the whole batch is
  // retried, which is safe because every step is idempotent.
  // *failed (when given) says which dependency the error came from.
  StatusOr<std::vector<FinalizeOutcome>> FinalizeBatch(RedisCommands& redis, const std::vector<FinalizeRequest>& reqs,
                                                       FinalizeDependency* failed = nullptr);

 private:
  // The finalize entry is not after the control hash's started_after: the producer started over since.
  static bool QueuedBeforeTheAttempt(const FinalizeRequest& req, const BufferSnapshot& snap);
  // Sets outs[i].owned_elsewhere for generations that belong to another organization (Redis owner record,
  // or the row where the record disagrees with it); queues owner-record refreshes and corrections in fixes.
  Status ResolveOwners(RedisCommands& redis, const std::vector<FinalizeRequest>& reqs,
                       const std::vector<BufferSnapshot>& snaps, std::vector<FinalizeOutcome>& outs,
                       std::vector<std::vector<std::string>>& fixes, FinalizeDependency* failed);
  // *text: the assembled text (the store's copy when it is large).
  GenerationWrite BuildWrite(const FinalizeRequest& req, const BufferSnapshot& snap,
                             const std::map<int64_t, std::string>& from_db, FinalizeOutcome* out,
                             int64_t* received, std::string* text) const;
  // With an object store: a text over ARTIFACT_INLINE_MAX_BYTES goes there and the write keeps its reference
  // (metadata.artifact) instead of `compacted`; a smaller one clears a reference an earlier write left.
  Status PlaceText(GenerationWrite& w, const std::string& text);
  std::vector<std::string> EventCommand(const FinalizeRequest& req, const FinalizeOutcome& out) const;

  const Config& config_;
  ChunkBuffer& buffer_;
  GenerationRepository& store_;
  std::string consumer_;
  Cache* cache_;
  std::unique_ptr<ObjectStore> artifacts_;
};

}  // namespace streamfleet
