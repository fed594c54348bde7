#include "queue-worker/store_tasks.h"

#include <nlohmann/json.hpp>

#include "streamfleet/common/task_queue.h"

namespace streamfleet::worker {

namespace {

Status PurgeChunks(TaskContext& ctx, SqlStore& store, Clock& clock) {
  auto j = nlohmann::json::parse(ctx.task.payload().empty() ? "{}" : ctx.task.payload(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || (j.contains("older_than") && !j["older_than"].is_string())) {
    return Status::InvalidArgument("payload must be {} or {\"older_than\": \"7d\"}");
  }
  int64_t retention = ctx.config.chunk_retention_ms;
  if (j.contains("older_than")) {
    auto r = ParseRetentionMs(j["older_than"].get<std::string>());
    if (!r.ok()) return r.status();
    retention = *r;
  }
  int64_t now = clock.NowMsOverride() > 0 ? clock.NowMsOverride() : WallClockMs();
  std::string cutoff = IsoUtcFromMs(now - retention);
  auto n = store.PurgeChunksOlderThan(cutoff);
  if (!n.ok()) return n.status();
  ctx.result = std::to_string(*n) + " chunk rows created before " + cutoff + " deleted";
  return Status::Ok();
}

Status SyncHashes(TaskContext& ctx, SqlStore& store) {
  auto j = nlohmann::json::parse(ctx.task.payload(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("pattern") || !j["pattern"].is_string() ||
      j["pattern"].get<std::string>().empty() || (j.contains("table") && !j["table"].is_string())) {
    return Status::InvalidArgument(
        "payload must be {\"pattern\": \"progress:*\", \"table\": \"redis_hash_snapshots\"}");
  }
  if (j.contains("table") && j["table"].get<std::string>() != kHashSnapshotTable) {
    return Status::InvalidArgument(std::string("hash.sync writes only the table ") + kHashSnapshotTable);
  }
  const std::string pattern = j["pattern"].get<std::string>();
  std::string cursor = "0";
  int64_t synced = 0;
  do {
    if (ctx.Cancelled()) {
      return Status::DeadlineExceeded("hash.sync cancelled after " + std::to_string(synced) + " hashes");
    }
    auto page = ctx.redis.Command({"SCAN", cursor, "MATCH", pattern, "COUNT", "100", "TYPE", "hash"});
    if (!page.ok()) return page.status();
    if (!page->is_array() || page->elements.size() != 2) return Status::Internal("unexpected SCAN reply");
    cursor = page->elements[0].str;
    const auto& keys = page->elements[1].elements;
    if (keys.empty()) continue;
    std::vector<std::vector<std::string>> cmds;
    for (const auto& k : keys) cmds.push_back({"HGETALL", k.str});
    auto values = ctx.redis.Pipeline(cmds);
    if (!values.ok()) return values.status();
    std::vector<HashSnapshot> rows;
    for (size_t i = 0; i < keys.size(); ++i) {
      const RedisValue& v = (*values)[i];
      if (v.is_error()) return TranslateRedisError(v.str);
      if (!v.is_array() || v.elements.empty()) continue;  // deleted since SCAN saw it
      nlohmann::json fields = nlohmann::json::object();
      for (size_t f = 0; f + 1 < v.elements.size(); f += 2) fields[v.elements[f].str] = v.elements[f + 1].str;
      // Hash values are bytes; JSON needs UTF-8: invalid sequences become U+FFFD rather than failing.
      rows.push_back({keys[i].str, fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
    }
    SF_RETURN_IF_ERROR(store.UpsertHashSnapshots(rows));
    synced += static_cast<int64_t>(rows.size());
  } while (cursor != "0");
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
