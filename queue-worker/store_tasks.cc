#include "queue-worker/store_tasks.h"

#include <nlohmann/json.hpp>

#include "streamfleet/base/time.h"
#include "streamfleet/redis/redis_scan.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet::worker {

namespace {

Status PurgeChunks(TaskContext& ctx, SqlStore& store, Clock& clock) {
  auto parsed = ctx.PayloadJson();
  if (!parsed.ok()) return parsed.status();
  nlohmann::json& j = *parsed;
  if (!j.is_object() || (j.contains("older_than") && !j["older_than"].is_string())) {
    return Status::InvalidArgument("payload must be {} or {\"older_than\": \"7d\"}");
  }
  int64_t retention = ctx.config.chunk_retention_ms;
  if (j.contains("older_than")) {
    auto r = ParseRetentionMs(j["older_than"].get<std::string>());
    if (!r.ok()) return r.status();
    retention = *r;
  }
  int64_t now = clock.NowMs();
  std::string cutoff = IsoUtcFromMs(now - retention);
  auto n = store.PurgeChunksOlderThan(cutoff);
  if (!n.ok()) return n.status();
  ctx.result = std::to_string(*n) + " chunk rows created before " + cutoff + " deleted";
  return Status::Ok();
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
      const RedisValue& v = (*values)[i];
      if (v.is_error() && v.str.rfind("WRONGTYPE", 0) == 0) continue;  // not a hash
      if (v.is_error()) {
        failed = TranslateRedisError(v.str);
        return false;
      }
      if (!v.is_array() || v.elements.empty()) continue;  // deleted since SCAN saw it
      nlohmann::json fields = nlohmann::json::object();
      for (size_t f = 0; f + 1 < v.elements.size(); f += 2) fields[v.elements[f].str] = v.elements[f + 1].str;
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
  return Status::Ok();
}

}  // namespace

StatusOr<int64_t> ParseRetentionMs(const std::string& text) {
  StatusOr<int64_t> ms = Status::InvalidArgument("");
  if (!text.empty() && text.back() == 'd') {
    auto h = ParseDurationMs(text.substr(0, text.size() - 1) + "h", 1000);
    if (h.ok()) ms = *h * 24;
  } else {
    ms = ParseDurationMs(text, 1000);
  }
  if (!ms.ok() || *ms <= 0) {
    return Status::InvalidArgument("older_than \"" + text + "\": expected a duration like 7d, 12h, 30m");
  }
  return ms;
}

void RegisterStoreHandlers(HandlerRegistry& registry, SqlStore* store, Clock& clock) {
  auto need_store = [](SqlStore* s, const char* type) {
    return s != nullptr ? Status::Ok()
                        : Status::FailedPrecondition(std::string(type) + " needs a database (DATABASE_URL)");
  };
  registry.Register("generation_chunks.purge", [store, &clock, need_store](TaskContext& ctx) {
    SF_RETURN_IF_ERROR(need_store(store, "generation_chunks.purge"));
    return PurgeChunks(ctx, *store, clock);
  });
  registry.Register("hash.sync", [store, need_store](TaskContext& ctx) {
    SF_RETURN_IF_ERROR(need_store(store, "hash.sync"));
    return SyncHashes(ctx, *store);
  });
}

}  // namespace streamfleet::worker
