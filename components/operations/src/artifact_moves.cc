#include "streamfleet/operations/artifact_moves.h"

#include <nlohmann/json.hpp>

#include "streamfleet/artifacts/artifact.h"
#include "streamfleet/base/codec.h"

namespace streamfleet {

namespace {

// The row's metadata with `artifact` set (an object, or null).
std::string WithArtifact(const std::string& metadata, nlohmann::json artifact) {
  nlohmann::json md = nlohmann::json::parse(metadata, nullptr, false);
  if (!md.is_object()) md = nlohmann::json::object();
  md["artifact"] = std::move(artifact);
  return md.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Moves one row; false when there was nothing to move after all.
StatusOr<bool> MoveRow(SqlStore& db, ObjectStore& store, const Config& config, ArtifactMoveDirection direction,
                       bool preview, GenerationRow& row, ArtifactMoveResult& out) {
  if (direction == ArtifactMoveDirection::kToStore) {
    if (!row.compacted) return false;
    auto text = Base64Decode(*row.compacted);
    if (!text) return Status::DataLoss("generation " + std::to_string(row.id) + ": compacted is not base64");
    if (static_cast<int64_t>(text->size()) <= config.artifact_inline_max_bytes) return false;
    out.text_bytes += static_cast<int64_t>(text->size());
    if (preview) return true;
    auto ref = StoreArtifact(store, *text);  // before the row names it
    if (!ref.ok()) return ref.status();
    auto done = db.ReplaceCompactedIfUnchanged(row, std::nullopt,
                                               WithArtifact(row.metadata, nlohmann::json::parse(ArtifactJson(*ref))));
    if (!done.ok()) return done.status();
    if (!*done) ++out.changed;
    return *done;
  }
  auto ref = ArtifactOfMetadata(row.metadata);
  if (row.compacted || !ref) return false;
  out.text_bytes += ref->bytes;
  if (preview) return true;
  auto text = LoadArtifact(store, *ref);  // digest checked: a wrong object never becomes the row's text
  if (!text.ok()) return text.status();
  auto done = db.ReplaceCompactedIfUnchanged(row, Base64Encode(*text), WithArtifact(row.metadata, nullptr));
  if (!done.ok()) return done.status();
  if (!*done) ++out.changed;
  return *done;
}

}  // namespace

StatusOr<ArtifactMoveResult> MoveArtifacts(SqlStore& db, ObjectStore& store, const Config& config,
                                           ArtifactMoveDirection direction, bool preview, int batch,
                                           const std::function<void(const ArtifactMoveResult&)>& on_progress) {
  ArtifactMoveResult out;
  // base64 grows 3 bytes to 4: a text over the limit has a compacted column over 4/3 of it.
  int64_t over = direction == ArtifactMoveDirection::kToStore ? config.artifact_inline_max_bytes / 3 * 4 : -1;
  while (true) {
    auto ids = db.GenerationIdsByCompacted(out.last_id, over, batch);
    if (!ids.ok()) return ids.status();
    if (ids->empty()) return out;
    for (int64_t id : *ids) {
      out.last_id = id;
      auto row = db.GetGeneration(id);
      if (!row.ok()) return row.status();
      if (!*row) continue;  // deleted meanwhile
      auto moved = MoveRow(db, store, config, direction, preview, **row, out);
      const StatusCode code = moved.ok() ? StatusCode::kOk : moved.status().code();
      if (code == StatusCode::kNotFound || code == StatusCode::kDataLoss || code == StatusCode::kInvalidArgument ||
          code == StatusCode::kResourceExhausted) {
        // This row's text is gone or corrupt, names another bucket or prefix (InvalidArgument), or is over the
        // size limits: no rerun changes that, and stopping here stopped every rerun at this row (they start
        // again from the first id). Left as it is, for the operator. Not a refusal (403): that is the
        // credentials' or the clock's, would skip every row, and a rerun after the fix moves them.
        if (out.skipped++ == 0) out.first_skip_reason = moved.status().ToString();
        if (out.skipped_ids.size() < ArtifactMoveResult::kMaxListedSkips) out.skipped_ids.push_back(id);
        continue;
      }
      if (!moved.ok()) return moved.status();
      if (*moved) ++out.rows;
    }
    if (on_progress) on_progress(out);
  }
}

}  // namespace streamfleet
