#include "streamfleet/operations/replay_generation.h"

#include <algorithm>
#include <map>

#include "streamfleet/artifacts/chunk_archive.h"
#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet {

namespace {
// Chunks per Apply call: one script call per batch keeps Redis responsive for the fleet while a large
// generation is replayed.
constexpr size_t kBatch = 500;


// The table's rows and the archive's, in seq order, each seq once: the archived line when both have it, as the
// archive keeps the first data of a seq (the table's own ON CONFLICT DO NOTHING rule), so a replay gives the
// same text before and after the next purge.
StatusOr<std::vector<ChunkRow>> ChunksOf(SqlStore& store, ObjectStore* archive, size_t archive_max_bytes,
                                         int64_t generation_id, int64_t& only_archived) {
  auto rows = store.GetChunks(generation_id);
  if (!rows.ok()) return rows.status();
  only_archived = 0;
  if (archive == nullptr) return rows;
  auto archived = LoadChunkArchive(*archive, generation_id, archive_max_bytes);
  if (!archived.ok() && archived.status().code() == StatusCode::kNotFound) return rows;
  if (!archived.ok()) return archived.status();
  std::map<int64_t, ChunkRow> by_seq;
  for (ChunkRow& r : *archived) by_seq.emplace(r.seq, std::move(r));
  only_archived = static_cast<int64_t>(by_seq.size());
  for (ChunkRow& r : *rows) {
    if (!by_seq.emplace(r.seq, std::move(r)).second) --only_archived;  // in both
  }
  std::vector<ChunkRow> out;
  out.reserve(by_seq.size());
  for (auto& [seq, r] : by_seq) out.push_back(std::move(r));
  return out;
}

Status OwnedElsewhere(int64_t generation_id, int64_t owner) {
  return Status::FailedPrecondition("generation " + std::to_string(generation_id) +
                                    " is held by another organization than " + std::to_string(owner) +
                                    " (its owner record): nothing replayed");
}

}  // namespace

StatusOr<ReplayResult> ReplayGeneration(RedisClient& redis, SqlStore& store, ObjectStore* archive,
                                        size_t archive_max_bytes, ChunkBuffer& buffer, Finalizer& finalizer,
                                        int64_t generation_id, bool delete_buffer,
                                        const std::function<void(int64_t, int64_t)>& on_progress) {
  int64_t only_archived = 0;
  auto rows = ChunksOf(store, archive, archive_max_bytes, generation_id, only_archived);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) {
    return Status::NotFound("no generation_chunks rows for generation " + std::to_string(generation_id) +
                            (archive != nullptr ? " in the table or the chunk archive" : "") +
                            " (GENERATION_CHUNK_STORAGE=redis keeps none)");
  }
  // Whose generation it is: the row's organization, else the first chunk's. A generation id can carry another
  // organization's chunks too (its owner record lapsed and the id was used again); those are never replayed
  // into this one's text, as the Finalizer never reads them.
  auto row = store.GetGeneration(generation_id);
  if (!row.ok()) return row.status();
  const int64_t owner = row->has_value() ? (*row)->organization_id : rows->front().organization_id;
  ReplayResult out;
  const size_t read = rows->size();
  rows->erase(std::remove_if(rows->begin(), rows->end(), [owner](const ChunkRow& r) { return r.organization_id != owner; }),
              rows->end());
  out.other_organizations = static_cast<int64_t>(read - rows->size());
  if (rows->empty()) {
    return Status::NotFound("generation " + std::to_string(generation_id) + " belongs to organization " +
                            std::to_string(owner) + ", and none of its chunk rows are that organization's");
  }
  out.rows = static_cast<int64_t>(rows->size());
  out.archived = only_archived;
  const ChunkRow& first = rows->front();
  out.gen = GenerationId{owner, first.scenario_id, generation_id};
  // The id's owner record names another organization: refused before anything is buffered (the finalization
  // would write nothing, and the buffer applied here would stay behind).
  auto held_by = redis.Command({"GET", buffer.keys().OwnerKey(generation_id)});
  if (!held_by.ok()) return held_by.status();
  if (!held_by->is_nil() && !held_by->is_error() && held_by->str != std::to_string(owner)) {
    return OwnedElsewhere(generation_id, owner);
  }
  for (size_t i = 0; i < rows->size(); i += kBatch) {
    std::vector<ChunkItem> items;
    for (size_t k = i; k < std::min(rows->size(), i + kBatch); ++k) {
      const ChunkRow& r = (*rows)[k];
      ChunkItem item;
      item.gen = out.gen;
      item.seq = r.seq;
      item.data = r.data;
      SF_RETURN_IF_ERROR(buffer.Validate(item));
      items.push_back(std::move(item));
    }
    auto applied = buffer.Apply(redis, items);
    if (!applied.ok()) return applied.status();
    out.appended += std::count(applied->applied.begin(), applied->applied.end(), true);
    if (on_progress) on_progress(static_cast<int64_t>(std::min(rows->size(), i + kBatch)), out.rows);
  }
  auto o = finalizer.Finalize(redis, {out.gen, "replay", std::to_string(WallClockMs()) + "-replay"});
  if (!o.ok()) return o.status();
  out.outcome = std::move(*o);
  if (out.outcome.owned_elsewhere) return OwnedElsewhere(generation_id, owner);  // claimed meanwhile
  // The finalizer's config deleted the buffer when asked (DeletingBufferConfig): only what it marked compacted
  // with nothing arrived since, and not a row it kept. Its deadline goes with it.
  if (delete_buffer && out.outcome.marked_compacted && !out.outcome.kept_row) {
    const KeySchema& keys = buffer.keys();
    auto z = redis.Command({"ZREM", keys.DeadlinesKeyOf(out.gen), KeySchema::Member(out.gen)});
    if (!z.ok()) return z.status();
    out.buffer_deleted = true;
  }
  return out;
}

}  // namespace streamfleet
