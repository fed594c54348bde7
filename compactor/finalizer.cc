#include "compactor/finalizer.h"

#include <nlohmann/json.hpp>

#include "compactor/assembly.h"
#include "streamfleet/common/codec.h"
#include "streamfleet/common/generation_cache.h"
#include "streamfleet/common/log.h"
#include "streamfleet/common/stream_admin.h"
#include "streamfleet/v1/event.pb.h"

namespace streamfleet::compactor {

namespace {

nlohmann::json MsToIso(const BufferSnapshot& s, const std::string& key) {
  int64_t ms = s.MetaInt(key);
  if (ms <= 0) return nullptr;
  return IsoUtcFromMs(ms);
}

}  // namespace

StatusOr<FinalizeOutcome> Finalizer::Finalize(RedisClient& redis, const FinalizeRequest& req) {
  auto snap = buffer_.Snapshot(redis, req.gen);
  if (!snap.ok()) return snap.status();
  std::map<int64_t, std::string> from_db;
  if (config_.chunk_storage != ChunkStorage::kRedis) {
    auto rows = store_.GetChunks(req.gen.gen);
    if (!rows.ok()) return rows.status();
    for (auto& r : *rows) from_db.emplace(r.seq, std::move(r.data));
  }
  FinalizeOutcome out;
  if (!snap->exists && from_db.empty()) {
    out.empty = true;
    return out;
  }
  int64_t total = snap->MetaInt("total_chunks");
  Assembled a = Assemble(snap->elements, from_db, total);
  JsonDecode json = DecodeJson(a.text);
  out.json_valid = json.valid;
  out.chunk_count = a.chunk_count;
  out.missing = a.missing;

  int64_t received = snap->MetaInt("received_chunks");
  int64_t received_bytes = snap->MetaInt("received_bytes");
  int64_t queued_ms = StreamIdMs(req.finalize_id);
  std::string compacted_at = IsoUtcFromMs(queued_ms > 0 ? queued_ms : 0);

  nlohmann::json progress = {{"received_chunks", received},
                             {"total_chunks", total > 0 ? nlohmann::json(total) : nlohmann::json(nullptr)},
                             {"received_bytes", received_bytes},
                             {"expected_total_bytes", nullptr},
                             {"percent", total > 0 ? nlohmann::json(std::min<int64_t>(100, 100 * a.chunk_count / total))
                                                   : nlohmann::json(100)}};
  nlohmann::json md = {{"progress", progress},
                       {"chunk_count", a.chunk_count},
                       {"compacted_at", compacted_at},
                       {"compacted_by", consumer_},
                       {"received_chunks", received},
                       {"received_bytes", received_bytes},
                       {"first_chunk_at", MsToIso(*snap, "first_chunk_at")},
                       {"last_chunk_at", MsToIso(*snap, "last_chunk_at")},
                       {"finalize_trigger", req.reason},
                       {"json_valid", json.valid}};
  if (!json.valid) {
    md["json_fallback"] = {{"reason", json.error}, {"stored", "compacted only; llm_response left unchanged"}};
  } else {
    md["json_fallback"] = nullptr;
  }
  if (total > 0) {
    // Bounded: a generation with many holes must not bloat the metadata column.
    std::vector<int64_t> shown(a.missing.begin(), a.missing.begin() + std::min<size_t>(a.missing.size(), 1000));
    md["missing_seqs"] = shown;
    md["missing_count"] = a.missing.size();
  }
  GenerationWrite w;
  w.id = req.gen.gen;
  w.organization_id = req.gen.org;
  w.scenario_id = req.gen.scenario;
  if (json.valid) w.llm_response = json.normalized;
  w.compacted = Base64Encode(a.text);
  w.metadata_patch = md.dump();
  w.chunk_count = a.chunk_count;
  w.compacted_at = compacted_at;
  w.compacted_by = consumer_;
  w.finalize_id = req.finalize_id;
  auto written = store_.UpsertGeneration(w);
  if (!written.ok()) return written.status();
  out.replay = *written != UpsertResult::kWritten;
  if (cache_ != nullptr && *written != UpsertResult::kKeptFullerRow) {
    // Also on a replay: the first attempt may have committed and then failed here. An error leaves the
    // finalize entry pending, so the redelivery (a replay) invalidates again.
    auto inv = cache_->Invalidate(kGenerationCacheName, GenerationCacheContent(req.gen.org, req.gen.gen));
    if (!inv.ok()) return inv.status();
  }
  if (*written == UpsertResult::kKeptFullerRow) {
    SF_LOG_WARN("finalize {}: buffer has {} chunks but the row already has more (buffer deleted or expired before "
                "a late chunk); keeping the row",
                KeySchema::Member(req.gen), a.chunk_count);
    auto marked = buffer_.MarkCompacted(redis, req.gen, received, req.finalize_id);
    if (!marked.ok()) return marked.status();
    out.marked_compacted = *marked;
    return out;
  }

  auto marked = buffer_.MarkCompacted(redis, req.gen, received, req.finalize_id);
  if (!marked.ok()) return marked.status();
  out.marked_compacted = *marked;

  // Published on replays too (at-least-once): a crash between the commit and this XADD must not lose the
  // event. Consumers dedupe on (generation_id, compacted_at_ms).
  {
    v1::Event ev;
    auto* gc = ev.mutable_generation_compacted();
    gc->set_organization_id(req.gen.org);
    gc->set_scenario_id(req.gen.scenario);
    gc->set_generation_id(req.gen.gen);
    gc->set_chunk_count(a.chunk_count);
    gc->set_trigger(req.reason);
    gc->set_json_valid(json.valid);
    gc->set_compacted_by(consumer_);
    gc->set_compacted_at_ms(queued_ms);
    auto x = redis.Command({"XADD", buffer_.keys().EventsStream(), "MAXLEN", "~", "100000", "*", "type",
                            "generation.compacted", "e", ev.SerializeAsString()});
    if (!x.ok()) return x.status();
  }
  return out;
}

}  // namespace streamfleet::compactor
