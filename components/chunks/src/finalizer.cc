#include "streamfleet/chunks/finalizer.h"

#include "streamfleet/artifacts/artifact.h"

#include <nlohmann/json.hpp>

#include "streamfleet/base/time.h"
#include "streamfleet/chunks/assembly.h"
#include "streamfleet/chunks/chunk_scripts.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/base/hash_fields.h"
#include "streamfleet/cache/generation_cache.h"
#include "streamfleet/chunks/generation_owner.h"
#include "streamfleet/base/log.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/base/text.h"
#include "streamfleet/v1/event.pb.h"

namespace streamfleet {

namespace {

// Most runs of consecutive seqs a row's metadata lists ("seq_runs"): a complete generation has one.
constexpr size_t kMaxSeqRuns = 64;

nlohmann::json MsToIso(const BufferSnapshot& s, const std::string& key) {
  int64_t ms = s.MetaInt(key);
  if (ms <= 0) return nullptr;
  return IsoUtcFromMs(ms);
}

}  // namespace

StatusOr<FinalizeOutcome> Finalizer::Finalize(RedisCommands& redis, const FinalizeRequest& req) {
  auto r = FinalizeBatch(redis, {req});
  if (!r.ok()) return r.status();
  return std::move(r->at(0));
}

GenerationWrite Finalizer::BuildWrite(const FinalizeRequest& req, const BufferSnapshot& snap,
                                      const std::map<int64_t, std::string>& from_db, FinalizeOutcome* out,
                                      int64_t* received, std::string* text) const {
  int64_t total = snap.MetaInt("total_chunks");
  Assembled a = Assemble(snap.elements, from_db, total, static_cast<size_t>(config_.max_generation_bytes));
  JsonDecode json = DecodeJson(a.text);
  out->json_valid = json.valid;
  out->chunk_count = a.chunk_count;
  out->missing = a.missing;
  out->malformed = a.malformed_elements;

  *received = snap.MetaInt("received_chunks");
  int64_t received_bytes = snap.MetaInt("received_bytes");
  int64_t queued_ms = StreamIdMs(req.finalize_id);
  std::string compacted_at = IsoUtcFromMs(queued_ms > 0 ? queued_ms : 0);

  nlohmann::json progress = {{"received_chunks", *received},
                             {"total_chunks", total > 0 ? nlohmann::json(total) : nlohmann::json(nullptr)},
                             {"received_bytes", received_bytes},
                             {"expected_total_bytes", nullptr},
                             {"percent", total > 0 ? nlohmann::json(std::min<int64_t>(100, 100 * a.chunk_count / total))
                                                   : nlohmann::json(100)}};
  nlohmann::json md = {{"progress", progress},
                       {"chunk_count", a.chunk_count},
                       {"compacted_at", compacted_at},
                       {"compacted_by", consumer_},
                       {"received_chunks", *received},
                       {"received_bytes", received_bytes},
                       {"first_chunk_at", MsToIso(snap, "first_chunk_at")},
                       {"last_chunk_at", MsToIso(snap, "last_chunk_at")},
                       {"finalize_trigger", req.reason},
                       {"json_valid", json.valid}};
  if (!json.valid) {
    md["json_fallback"] = {{"reason", json.error}, {"stored", "compacted only; llm_response left unchanged"}};
    // Producers writing envelopes directly may send any bytes; they are kept byte-exact in `compacted`.
    if (auto bad = FirstInvalidUtf8(a.text)) md["json_fallback"]["invalid_utf8_at"] = *bad;
  } else {
    md["json_fallback"] = nullptr;
  }
  // Which chunks the text holds, so a later finalization that lacks some of them (a buffer that expired and
  // was re-created by late chunks) does not replace it (SqlStore::UpsertGenerations). Bounded like
  // missing_seqs; null when there are more runs (the row is then compared by chunk count alone).
  if (a.runs.size() <= kMaxSeqRuns) {
    nlohmann::json runs = nlohmann::json::array();
    for (const auto& [first, last] : a.runs) runs.push_back({first, last});
    md["seq_runs"] = std::move(runs);
  } else {
    md["seq_runs"] = nullptr;
  }
  if (total > 0) {
    // Bounded: a generation with many holes must not bloat the metadata column.
    std::vector<int64_t> shown(a.missing.begin(), a.missing.begin() + std::min<size_t>(a.missing.size(), 1000));
    md["missing_seqs"] = shown;
    md["missing_count"] = a.missing.size();
  }
  // Which attempt of the generation this text is (ChunkWriter::Reset counts them): a row of an earlier one is
  // replaced whatever chunks it holds, and this write never replaces a later one's (SqlStore). Only above 0,
  // so the rows of generations never started over stay as they were. Not known once the control hash is gone
  // (expired; a rebuild from generation_chunks): the chunks decide then, as before.
  const bool attempt_known = !snap.control.empty();
  if (attempt_known && out->attempt > 0) md["attempt"] = out->attempt;
  // Said, not only left out: the text lacks them, and nothing else records why.
  if (a.malformed_elements > 0) md["malformed_chunks"] = a.malformed_elements;
  GenerationWrite w;
  if (attempt_known) w.attempt = out->attempt;
  w.id = req.gen.gen;
  w.organization_id = req.gen.org;
  w.scenario_id = req.gen.scenario;
  if (json.valid) w.llm_response = json.as_sent ? a.text : std::move(json.normalized);
  w.compacted = Base64Encode(a.text);
  // replace, not throw: no string in the metadata may take the compactor down (it would crash-loop on this
  // finalize entry until it is dead-lettered, and the generation would have no row).
  w.metadata_patch = md.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  w.chunk_count = a.chunk_count;
  w.compacted_at = compacted_at;
  w.compacted_by = consumer_;
  w.finalize_id = req.finalize_id;
  w.seq_runs = std::move(a.runs);
  *text = std::move(a.text);
  return w;
}

Status Finalizer::PlaceText(GenerationWrite& w, const std::string& text) {
  if (!artifacts_) return Status::Ok();
  nlohmann::json md = nlohmann::json::parse(w.metadata_patch, nullptr, false);
  if (static_cast<int64_t>(text.size()) > config_.artifact_inline_max_bytes) {
    // Stored before the row: a row never names an object the store did not acknowledge.
    auto ref = StoreArtifact(*artifacts_, text);
    if (!ref.ok()) return ref.status();
    md["artifact"] = nlohmann::json::parse(ArtifactJson(*ref));
    w.compacted.reset();
  } else {
    md["artifact"] = nullptr;
  }
  w.metadata_patch = md.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return Status::Ok();
}

std::vector<std::string> Finalizer::EventCommand(const FinalizeRequest& req, const FinalizeOutcome& out) const {
  v1::Event ev;
  auto* gc = ev.mutable_generation_compacted();
  gc->set_organization_id(req.gen.org);
  gc->set_scenario_id(req.gen.scenario);
  gc->set_generation_id(req.gen.gen);
  gc->set_chunk_count(out.chunk_count);
  gc->set_trigger(req.reason);
  gc->set_json_valid(out.json_valid);
  gc->set_compacted_by(consumer_);
  gc->set_compacted_at_ms(StreamIdMs(req.finalize_id));
  gc->set_attempt(out.attempt);
  return RedisClient::EvalArgv(scripts::PublishEvent(), {buffer_.keys().EventsStream()},
                               {buffer_.keys().EventsMaxlen(), "generation.compacted", ev.SerializeAsString()});
}

namespace {

// An error from the database: noted in *failed (errors are Redis's unless noted).
Status DatabaseError(Status s, FinalizeDependency* failed) {
  if (failed != nullptr) *failed = FinalizeDependency::kDatabase;
  return s;
}

}  // namespace

bool Finalizer::QueuedBeforeTheAttempt(const FinalizeRequest& req, const BufferSnapshot& snap) {
  // A manual finalization made at once (streamfleetctl compact-generation: its id is no stream entry's)
  // compacts what is there now, as asked. One queued through the stream (the generation.compact task) is
  // an entry like the others.
  const std::string& queued = req.queued_id.empty() ? req.finalize_id : req.queued_id;
  if (!ValidStreamId(queued)) return false;
  auto started = snap.control.find("started_after");
  return started != snap.control.end() && CompareStreamIds(queued, started->second) <= 0;
}

Status Finalizer::ResolveOwners(RedisCommands& redis, const std::vector<FinalizeRequest>& reqs,
                                const std::vector<BufferSnapshot>& snaps, std::vector<FinalizeOutcome>& outs,
                                std::vector<std::vector<std::string>>& fixes, FinalizeDependency* failed) {
  const KeySchema& keys = buffer_.keys();
  // Whose generation is it? The first organization that used the id (ingest recorded it). An envelope
  // written by hand, with no owner record, claims the id here, before its row exists; a finalization with
  // nothing buffered (a manual compaction of an expired or unknown generation) only looks.
  // Read first, claim only what has no record: a read is served when Redis is full (maxmemory, noeviction),
  // a SET ... NX is refused even when the key exists, and ingest records every owner it sees.
  std::vector<std::vector<std::string>> cmds;
  for (size_t i = 0; i < reqs.size(); ++i) cmds.push_back({"GET", keys.OwnerKey(reqs[i].gen.gen)});
  auto owners = redis.Pipeline(cmds);
  if (!owners.ok()) return owners.status();
  std::vector<size_t> unclaimed;
  cmds.clear();
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (!snaps[i].exists || !(*owners)[i].is_nil()) continue;
    unclaimed.push_back(i);
    cmds.push_back(ClaimOwnerCommand(keys, reqs[i].gen.org, reqs[i].gen.gen, config_.owner_ttl_s));
  }
  if (!cmds.empty()) {
    auto claims = redis.Pipeline(cmds);
    if (!claims.ok()) return claims.status();
    for (size_t k = 0; k < unclaimed.size(); ++k) {
      RedisValue& claim = (*claims)[k];
      // Redis full (noeviction): the record is not claimed here, and need not be: the row's write is
      // conditioned on its organization (kOwnedElsewhere), which is what decides. Refused, the finalization
      // was retried for ever.
      if (claim.is_error() && claim.str.rfind("OOM", 0) == 0) continue;
      (*owners)[unclaimed[k]] = std::move(claim);
    }
  }
  for (size_t i = 0; i < reqs.size(); ++i) {
    const GenerationId& g = reqs[i].gen;
    Status s = CheckClaimReply((*owners)[i], g.org, g.gen);
    if (s.ok()) {
      // In use by its owner: the record lives on (SET NX GET does not restart its TTL).
      if (snaps[i].exists) fixes.push_back({"EXPIRE", keys.OwnerKey(g.gen), std::to_string(config_.owner_ttl_s)});
      continue;
    }
    if (!IsOwnedElsewhere(s)) return s;
    // Redis names another organization. Where a row exists it decides: the record may have expired while
    // this organization kept using the id, and been claimed by another one since.
    auto row = store_.GetGeneration(g.gen);
    if (!row.ok()) return DatabaseError(row.status(), failed);
    if (*row && (*row)->organization_id == g.org) {
      fixes.push_back(SetOwnerCommand(keys, g.org, g.gen, config_.owner_ttl_s));
      continue;
    }
    outs[i].owned_elsewhere = true;
  }
  return Status::Ok();
}

StatusOr<std::vector<FinalizeOutcome>> Finalizer::FinalizeBatch(RedisCommands& redis,
                                                               const std::vector<FinalizeRequest>& reqs,
                                                               FinalizeDependency* failed) {
  if (failed != nullptr) *failed = FinalizeDependency::kRedis;
  std::vector<FinalizeOutcome> outs(reqs.size());
  if (reqs.empty()) return outs;
  // 1. Every buffer in one round trip.
  std::vector<GenerationId> gens;
  gens.reserve(reqs.size());
  for (const auto& r : reqs) gens.push_back(r.gen);
  auto snaps = buffer_.Snapshots(redis, gens);
  if (!snaps.ok()) return snaps.status();
  for (size_t i = 0; i < reqs.size(); ++i) outs[i].superseded = QueuedBeforeTheAttempt(reqs[i], (*snaps)[i]);
  // Owner-record commands sent with step 4's round trip (TTL refreshes, corrections).
  std::vector<std::vector<std::string>> owner_fixes;
  SF_RETURN_IF_ERROR(ResolveOwners(redis, reqs, *snaps, outs, owner_fixes, failed));

  // 2. Assemble and decode each; every row in one transaction.
  std::vector<GenerationWrite> writes;
  std::vector<size_t> written_of;  // writes[k] belongs to reqs[written_of[k]]
  std::vector<int64_t> received(reqs.size(), 0);
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (outs[i].superseded) continue;  // before the database is asked: an outage must not hold these up
    std::map<int64_t, std::string> from_db;
    if (config_.chunk_storage != ChunkStorage::kRedis && !outs[i].owned_elsewhere) {
      auto rows = store_.GetChunks(reqs[i].gen.gen);
      if (!rows.ok() && rows.status().code() == StatusCode::kDataLoss) {
        // A row altered outside the fleet: assemble from the buffer alone rather than block this batch forever.
        SF_LOG_WARN("finalize {}: generation_chunks unreadable, using the Redis buffer only: {}",
                    KeySchema::Member(reqs[i].gen), rows.status().ToString());
        rows = std::vector<ChunkRow>{};
      }
      if (!rows.ok()) return DatabaseError(rows.status(), failed);
      for (auto& r : *rows) {
        if (r.organization_id == reqs[i].gen.org) from_db.emplace(r.seq, std::move(r.data));  // never another's
      }
    }
    BufferSnapshot& snap = (*snaps)[i];
    if (outs[i].owned_elsewhere) continue;
    if (!snap.exists && from_db.empty()) {
      outs[i].empty = true;
      continue;
    }
    std::string text;
    outs[i].attempt = static_cast<uint32_t>(IntField(snap.control, "attempt"));
    writes.push_back(BuildWrite(reqs[i], snap, from_db, &outs[i], &received[i], &text));
    // Assembled: the elements are not read again, and a large generation's would otherwise be held (once
    // more than its text) until the batch's rows are written.
    std::vector<std::string>().swap(snap.elements);
    Status placed = PlaceText(writes.back(), text);
    if (!placed.ok()) {
      if (failed != nullptr) *failed = FinalizeDependency::kArtifactStore;
      return placed;
    }
    written_of.push_back(i);
  }
  if (writes.empty()) return outs;
  auto results = store_.UpsertGenerations(writes);
  if (!results.ok()) return DatabaseError(results.status(), failed);

  // 3. After the commit, before anything is acknowledged: drop the cached rows, so GET .../generations/{gen}
  // never serves the row from before this write. Also on a replay: the first attempt may have committed and
  // then failed here; an error leaves the finalize entries pending and their redelivery invalidates again.
  if (cache_ != nullptr) {
    std::vector<std::string> stale;
    for (size_t k = 0; k < writes.size(); ++k) {
      UpsertResult res = (*results)[k];
      if (res == UpsertResult::kKeptFullerRow || res == UpsertResult::kKeptLaterAttempt ||
          res == UpsertResult::kOwnedElsewhere) {
        continue;
      }
      const GenerationId& g = reqs[written_of[k]].gen;
      auto key = cache_->Key(kGenerationCacheName, GenerationCacheContent(g.org, g.gen));
      if (!key.ok()) return key.status();
      stale.push_back(std::move(*key));
    }
    auto inv = cache_->InvalidateKeys(stale);
    if (!inv.ok()) return inv.status();
  }

  // 4. Mark each buffer compacted and publish the events, in one round trip.
  std::vector<std::vector<std::string>> cmds;
  std::vector<int> mark_slot(reqs.size(), -1);
  for (size_t k = 0; k < writes.size(); ++k) {
    size_t i = written_of[k];
    UpsertResult res = (*results)[k];
    if (res == UpsertResult::kOwnedElsewhere) {
      // The row is another organization's (its Redis owner record expired): the SQL condition refused it.
      // Redis learns the row's owner again, so ingest refuses the next foreign chunk instead of this one.
      outs[i].owned_elsewhere = true;
      auto row = store_.GetGeneration(reqs[i].gen.gen);
      if (!row.ok()) return DatabaseError(row.status(), failed);
      if (*row) {
        owner_fixes.push_back(
            SetOwnerCommand(buffer_.keys(), (*row)->organization_id, reqs[i].gen.gen, config_.owner_ttl_s));
      }
      continue;
    }
    outs[i].replay = res == UpsertResult::kAlreadyApplied;
    outs[i].kept_row = res == UpsertResult::kKeptFullerRow || res == UpsertResult::kKeptLaterAttempt;
    if (res == UpsertResult::kKeptFullerRow) {
      SF_LOG_WARN("finalize {}: the buffer's {} chunks lack some of the row's (the buffer was deleted or expired "
                  "and late chunks re-created it); keeping the row",
                  KeySchema::Member(reqs[i].gen), outs[i].chunk_count);
    } else if (res == UpsertResult::kKeptLaterAttempt) {
      SF_LOG_INFO("finalize {}: attempt {} of the generation, the row already holds a later one; keeping the row",
                  KeySchema::Member(reqs[i].gen), outs[i].attempt);
    }
    mark_slot[i] = static_cast<int>(cmds.size());
    // A kept row's buffer is not let go after the grace: it may hold the late chunks the row lacks.
    cmds.push_back(buffer_.MarkCompactedCommand(redis, reqs[i].gen, received[i], reqs[i].finalize_id, outs[i].attempt,
                                                outs[i].kept_row));
    // Published on replays too (at-least-once): a crash between the commit and this XADD must not lose
    // the event. Consumers dedupe on (generation_id, compacted_at_ms). Not for a kept row: this
    // finalization changed nothing.
    if (res != UpsertResult::kKeptFullerRow && res != UpsertResult::kKeptLaterAttempt) {
      redis.Register(scripts::PublishEvent());
      cmds.push_back(EventCommand(reqs[i], outs[i]));
    }
  }
  const size_t fixes_from = cmds.size();
  for (auto& f : owner_fixes) cmds.push_back(std::move(f));
  auto replies = redis.Pipeline(cmds);
  if (!replies.ok()) return replies.status();
  for (size_t c = 0; c < replies->size(); ++c) {
    const RedisValue& v = (*replies)[c];
    if (!v.is_error()) continue;
    // The owner records' TTL refreshes and corrections are best effort (a full Redis refuses their SET): the
    // rows are written and the buffers marked, which is what must not be retried for ever.
    if (c >= fixes_from) {
      SF_LOG_WARN("finalize: an owner record was not refreshed: {}", v.str);
      continue;
    }
    return TranslateRedisError(v.str);
  }
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (mark_slot[i] >= 0) outs[i].marked_compacted = (*replies)[static_cast<size_t>(mark_slot[i])].integer == 1;
  }
  return outs;
}

}  // namespace streamfleet
