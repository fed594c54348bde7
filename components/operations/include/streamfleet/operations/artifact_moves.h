#pragma once
// Moving compacted texts between the rows and the object store (ARTIFACT_STORE; docs/storage.md): for a fleet
// that turns the store on with rows already written, or turns it off again. One command for operators
// (streamfleetctl artifacts move). Idempotent and resumable: each row is moved in its own conditional update,
// and a run lists only rows still to move, so a killed run is finished by running it again. A row that a
// finalization rewrites meanwhile is left to that finalization (counted as changed).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "streamfleet/artifacts/object_store.h"
#include "streamfleet/base/config.h"
#include "streamfleet/sql/sql_store.h"

namespace streamfleet {

enum class ArtifactMoveDirection { kToStore, kToDatabase };

struct ArtifactMoveResult {
  int64_t rows = 0;          // rows that would move (preview) or moved
  int64_t text_bytes = 0;    // their texts' size
  int64_t changed = 0;       // rewritten by a finalization while being moved: left alone
  int64_t last_id = 0;       // the last row looked at
  // Rows whose text cannot be read (its object missing or not what its digest says, or compacted not
  // base64): left as they are, so that one of them does not stop every run at the same row.
  int64_t skipped = 0;
  std::vector<int64_t> skipped_ids;  // the first kMaxListedSkips of them
  std::string first_skip_reason;
  static constexpr size_t kMaxListedSkips = 1000;
};

// kToStore: rows whose text is larger than ARTIFACT_INLINE_MAX_BYTES go to the store (reference in
// metadata.artifact, compacted NULL). kToDatabase: rows whose text is in the store get it back in compacted
// (metadata.artifact null; the objects stay, content-addressed and maybe shared: docs/storage.md says when
// they may be deleted). preview: count only. A row whose text cannot be read is skipped and listed; the run
// stops at the first store or database outage (run again to go on).
StatusOr<ArtifactMoveResult> MoveArtifacts(SqlStore& db, ObjectStore& store, const Config& config,
                                           ArtifactMoveDirection direction, bool preview, int batch = 100,
                                           const std::function<void(const ArtifactMoveResult&)>& on_progress = {});

}  // namespace streamfleet
