#include "queue-worker/store_tasks.h"

#include <nlohmann/json.hpp>

#include "streamfleet/base/text.h"
#include "streamfleet/artifacts/chunk_archive.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/time.h"
#include "streamfleet/redis/redis_scan.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet::worker {

namespace {

// Generations per page of the archive pass: one SQL query per page, each generation then archived and
// deleted on its own, so a crash leaves at most one generation archived but not yet deleted (archived again,
// idempotently, next time).
constexpr int kArchivePage = 100;

// Failures that fail the whole pass (retried with backoff, or dead-lettered with the reason): the store or the
// database away, credentials refused or missing. Anything else (an archive object that cannot be read, one over
// the limits, a corrupt row) keeps that generation's rows and the pass goes on.
bool FailsThePass(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated:
    case StatusCode::kFailedPrecondition:
      return true;
    default:
      return false;
  }
}
// A store that fails this many generations in a row is away: stop instead of trying every generation.
constexpr int kFailuresInARowToStop = 3;

Status ArchiveAndPurge(TaskContext& ctx, SqlStore& db, ObjectStore& archive, const std::string& cutoff) {
  const size_t max_bytes = ChunkArchiveMaxBytes(ctx.config);
  int64_t generations = 0, deleted = 0, kept = 0, failures_in_a_row = 0;
  std::string first_kept;
  Status pass_failure;  // the first failure of the pass: returned at the end, so the task is retried
  for (int64_t after = 0;;) {
    auto ids = db.GenerationIdsWithChunksBefore(cutoff, after, kArchivePage);
    if (!ids.ok()) return ids.status();
    if (ids->empty()) break;
    for (int64_t id : *ids) {
      after = id;
      if (ctx.Cancelled()) {
        return Status::DeadlineExceeded("generation_chunks.purge cancelled after " + std::to_string(generations) +
                                        " generations (the rest is archived next time)");
      }
      // All the generation's rows, the newer ones too: the archive then holds what the table held, and the
      // newer rows are archived again (no change) when they are old enough to go.
      auto rows = db.GetChunks(id);
      StatusOr<int64_t> archived = rows.ok() ? ArchiveChunks(archive, *rows, max_bytes) : StatusOr<int64_t>(rows.status());
      if (!archived.ok() && FailsThePass(archived.status())) {
        if (pass_failure.ok()) pass_failure = archived.status();
        // One generation's store trouble (a timeout on a large object) must not stop the others for good.
        if (++failures_in_a_row >= kFailuresInARowToStop) return pass_failure;
        continue;
      }
      failures_in_a_row = 0;
      if (!archived.ok()) {
        // Never delete what is not archived: these rows stay until an operator looks (the result says which).
        SF_LOG_WARN("generation_chunks.purge: generation {} kept in the table: {}", id, archived.status().ToString());
        if (kept++ == 0) first_kept = "generation " + std::to_string(id) + ": " + archived.status().message();
        continue;
      }
      // Only the rows read and archived: a row written since is not in the object, so it stays.
      std::vector<int64_t> seqs;
      seqs.reserve(rows->size());
      for (const ChunkRow& r : *rows) seqs.push_back(r.seq);
      auto n = db.DeleteChunksBefore(id, cutoff, seqs);
      if (!n.ok()) return n.status();
      deleted += *n;
      ++generations;
    }
  }
  SF_RETURN_IF_ERROR(pass_failure);
  ctx.result = std::to_string(deleted) + " chunk rows created before " + cutoff + " of " +
               std::to_string(generations) + " generations archived to " + archive.Url("chunk-archive/") +
               " and deleted";
  if (kept > 0) ctx.result += "; " + std::to_string(kept) + " generations kept in the table (" + first_kept + ")";
  return Status::Ok();
}

Status PurgeChunks(TaskContext& ctx, SqlStore& store, ObjectStore* archive, Clock& clock) {
  auto parsed = ctx.PayloadJson();
  if (!parsed.ok()) return parsed.status();
  nlohmann::json& j = *parsed;
  if (!j.is_object() || (j.contains("older_than") && !j["older_than"].is_string()) ||
      (j.contains("archive") && !j["archive"].is_boolean())) {
    return Status::InvalidArgument("payload must be {} or {\"older_than\": \"7d\", \"archive\": true|false}");
  }
  int64_t retention = ctx.config.chunk_retention_ms;
  if (j.contains("older_than")) {
    auto r = ParseRetentionMs(j["older_than"].get<std::string>());
    if (!r.ok()) return r.status();
    retention = *r;
  }
  // With an object store the rows are archived before they are deleted, unless the payload says not to.
  const bool archive_first = j.value("archive", archive != nullptr);
  if (archive_first && archive == nullptr) {
    return Status::FailedPrecondition("generation_chunks.purge: \"archive\": true needs ARTIFACT_STORE");
  }
  int64_t now = clock.NowMs();
  std::string cutoff = IsoUtcFromMs(now - retention);
  if (archive_first) return ArchiveAndPurge(ctx, store, *archive, cutoff);
  auto n = store.PurgeChunksOlderThan(cutoff);
  if (!n.ok()) return n.status();
  ctx.result = std::to_string(*n) + " chunk rows created before " + cutoff + " deleted";
  return Status::Ok();
}

// PostgreSQL's jsonb refuses U+0000 (22P05): one hash holding a NUL byte failed its whole batch of 100, on
// every run. It becomes U+FFFD on both backends, as invalid UTF-8 does below, so a snapshot reads the same
// whichever database holds it.
std::string WithoutNul(const std::string& s) {
  if (s.find('\0') == std::string::npos) return s;
  std::string out;
  out.reserve(s.size() + 2);
  for (char c : s) {
    if (c == '\0') {
      out += "\xEF\xBF\xBD";
    } else {
      out += c;
    }
  }
  return out;
}

Status SyncHashes(TaskContext& ctx, SqlStore& store) {
  auto parsed = ctx.PayloadJson();
  if (!parsed.ok()) return parsed.status();
  nlohmann::json& j = *parsed;
  if (!j.is_object() || !j.contains("pattern") || !j["pattern"].is_string() ||
      j["pattern"].get<std::string>().empty() || (j.contains("table") && !j["table"].is_string())) {
    return Status::InvalidArgument(
        "payload must be {\"pattern\": \"progress:*\", \"table\": \"redis_hash_snapshots\"}");
  }
  if (j.contains("table") && j["table"].get<std::string>() != kHashSnapshotTable) {
    return Status::InvalidArgument(std::string("hash.sync writes only the table ") + kHashSnapshotTable);
  }
  const std::string pattern = j["pattern"].get<std::string>();
  int64_t synced = 0;
  int64_t skipped = 0;  // keys that cannot be a row's key (not UTF-8, or a NUL)
  Status failed;
  // Every master (ScanAll). SCAN's TYPE filter is per node and ScanAll has none: HGETALL answers WRONGTYPE
  // for the keys that are not hashes, which are skipped.
  Status scanned = ScanAll(ctx.redis, pattern, 100, [&](const std::vector<std::string>& keys) {
    if (ctx.Cancelled()) {
      failed = Status::DeadlineExceeded("hash.sync cancelled after " + std::to_string(synced) + " hashes");
      return false;
    }
    if (keys.empty()) return true;
    std::vector<std::vector<std::string>> cmds;
    for (const auto& k : keys) cmds.push_back({"HGETALL", k});
    auto values = ctx.redis.Pipeline(cmds);
    if (!values.ok()) {
      failed = values.status();
      return false;
    }
    std::vector<HashSnapshot> rows;
    for (size_t i = 0; i < keys.size(); ++i) {
      // The key is the row's primary key, kept as it is (a replaced byte would name another key): one that is
      // not UTF-8 or holds a NUL, which PostgreSQL's text refuses and failed its whole batch every run, is
      // skipped and counted.
      if (keys[i].find('\0') != std::string::npos || FirstInvalidUtf8(keys[i])) {
        ++skipped;
        continue;
      }
      const RedisValue& v = (*values)[i];
      if (v.is_error() && v.str.rfind("WRONGTYPE", 0) == 0) continue;  // not a hash
      if (v.is_error()) {
        failed = TranslateRedisError(v.str);
        return false;
      }
      if (!v.is_array() || v.elements.empty()) continue;  // deleted since SCAN saw it
      nlohmann::json fields = nlohmann::json::object();
      for (size_t f = 0; f + 1 < v.elements.size(); f += 2) {
        fields[WithoutNul(v.elements[f].str)] = WithoutNul(v.elements[f + 1].str);
      }
      // Hash values are bytes; JSON needs UTF-8: invalid sequences become U+FFFD rather than failing.
      rows.push_back({keys[i], fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
    }
    failed = store.UpsertHashSnapshots(rows);
    if (!failed.ok()) return false;
    synced += static_cast<int64_t>(rows.size());
    return true;
  });
  SF_RETURN_IF_ERROR(failed);
  SF_RETURN_IF_ERROR(scanned);
  ctx.result = std::to_string(synced) + " hashes synced to " + kHashSnapshotTable;
  if (skipped > 0) ctx.result += "; " + std::to_string(skipped) + " skipped: their keys are not UTF-8 text";
  return Status::Ok();
}

}  // namespace

StatusOr<int64_t> ParseRetentionMs(const std::string& text) {
  // ParseDurationMs reads days itself and refuses what overflows: "213503982335d" once went through hours
  // times 24 and wrapped to about 9.6 hours, and the purge then deleted what it was asked to keep.
  StatusOr<int64_t> ms = ParseDurationMs(text, 1000);
  if (!ms.ok() || *ms <= 0) {
    return Status::InvalidArgument("older_than \"" + text + "\": expected a duration like 7d, 12h, 30m");
  }
  return ms;
}

void RegisterStoreHandlers(HandlerRegistry& registry, SqlStore* store, ObjectStore* archive, Clock& clock) {
  auto need_store = [](SqlStore* s, const char* type) {
    return s != nullptr ? Status::Ok()
                        : Status::FailedPrecondition(std::string(type) + " needs a database (DATABASE_URL)");
  };
  registry.Register("generation_chunks.purge", [store, archive, &clock, need_store](TaskContext& ctx) {
    SF_RETURN_IF_ERROR(need_store(store, "generation_chunks.purge"));
    return PurgeChunks(ctx, *store, archive, clock);
  });
  registry.Register("hash.sync", [store, need_store](TaskContext& ctx) {
    SF_RETURN_IF_ERROR(need_store(store, "hash.sync"));
    return SyncHashes(ctx, *store);
  });
}

}  // namespace streamfleet::worker
