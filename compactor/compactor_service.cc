#include "compactor/compactor_service.h"

#include <algorithm>
#include <map>
#include <thread>

#include "streamfleet/base/time.h"
#include "streamfleet/base/backoff.h"
#include "streamfleet/chunks/generation_owner.h"
#include "streamfleet/base/log.h"
#include "streamfleet/chunks/live_buffers.h"
#include "streamfleet/redis/stream_admin.h"

namespace streamfleet::compactor {

namespace {

using Clk = std::chrono::steady_clock;

void SleepUnlessStopped(int64_t ms, const std::atomic<bool>& stop) {
  auto until = Clk::now() + std::chrono::milliseconds(ms);
  while (!stop.load() && Clk::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

}  // namespace

CompactorService::CompactorService(const Config& config, Clock& clock, SqlStore& store,
                                   prometheus::Registry& registry, LoopOptions options, CompactorHealth health)
    : config_(config),
      clock_(clock),
      store_(store),
      options_(options),
      metrics_(registry),
      read_sizer_(1, options.read_count, options.read_chunks, options.read_bytes),
      own_redis_health_(health.redis ? nullptr
                                     : std::make_unique<DependencyHealth>(registry, Dependency::kRedis,
                                                                          &DependencyHealth::RedisUpGauge(registry))),
      own_db_health_(health.db ? nullptr
                               : std::make_unique<DependencyHealth>(registry, Dependency::kDatabase, &metrics_.db_up)),
      redis_health_(health.redis ? *health.redis : *own_redis_health_),
      db_health_(health.db ? *health.db : *own_db_health_),
      buffer_(config, clock),
      cache_(config.redis, CacheOptionsFromConfig(config), &registry),
      finalizer_(config, buffer_, store, config.consumer_name, &cache_),
      read_(RedisClient::Lazy(config.redis)),
      write_(RedisClient::Lazy(config.redis)),
      sample_(RedisClient::Lazy(config.redis)),
      redis_info_(registry),
      stream_gauges_(registry) {
  metrics_.db_up.Set(1);
}

std::vector<std::string> CompactorService::Streams() const {
  std::vector<std::string> s;
  for (int i = 0; i < buffer_.keys().chunk_streams(); ++i) s.push_back(buffer_.keys().ChunkStream(i));
  for (int i = 0; i < buffer_.keys().control_shards(); ++i) s.push_back(buffer_.keys().FinalizeStream(i));
  return s;
}

Status CompactorService::EnsureGroups() {
  // Created at start so autoscalers (KEDA lag) never see a missing group.
  for (const auto& s : Streams()) SF_RETURN_IF_ERROR(EnsureGroup(*write_, s, buffer_.keys().CompactorGroup()));
  groups_ready_ = true;
  return Status::Ok();
}

Status CompactorService::Ready() const {
  if (!redis_health_.up()) return Status::Unavailable("redis unreachable");
  // main migrated the database before starting: unknown counts as writable until a write fails.
  if (db_health_.down()) return Status::Unavailable("database unavailable");
  return Status::Ok();
}

template <typename F>
Status CompactorService::Retry(const std::atomic<bool>& stop, F&& f, const std::vector<StreamEntry>* held) {
  // No logging here: f reports each attempt to redis_health_ / db_health_, which log once per outage.
  JitteredBackoff backoff;
  auto renewed = Clk::now();
  const auto renew_every = std::chrono::milliseconds(std::max<int64_t>(1, config_.visibility_timeout_ms / 3));
  while (true) {
    Status s = f();
    if (s.ok() || !s.retryable() || stop.load()) return s;
    // The wait (up to 5 s) is cut into the renewal period, so a lease never runs out during it.
    const auto until = Clk::now() + std::chrono::milliseconds(backoff.Next());
    while (!stop.load()) {
      if (held != nullptr && Clk::now() - renewed >= renew_every) {
        RenewLeases(*held);
        renewed = Clk::now();
      }
      const auto now = Clk::now();
      if (now >= until) break;
      std::this_thread::sleep_for(std::min<Clk::duration>({until - now, std::chrono::milliseconds(20)}));
    }
  }
}

void CompactorService::RenewLeases(const std::vector<StreamEntry>& held) {
  // Best effort: with Redis itself down the renewals fail, and so do the other consumers' claims. The first
  // failure ends the pass, so an unreachable Redis costs one timeout here, not one per entry.
  for (const auto& e : held) {
    if (!ExtendLease(*write_, e.stream, buffer_.keys().CompactorGroup(), config_.consumer_name, e.id).ok()) return;
  }
}

void CompactorService::Run(const std::atomic<bool>& stop) {
  JitteredBackoff backoff;
  while (!stop.load()) {
    auto r = RunOnce(stop);
    if (r.ok()) {
      backoff.Reset();
      continue;
    }
    SleepUnlessStopped(backoff.Next(), stop);
  }
  (void)FlushAcks();
  SF_LOG_INFO("compactor: stopped reading; unacknowledged entries stay pending for the group");
}

StatusOr<int> CompactorService::RunOnce(const std::atomic<bool>& stop) {
  if (!groups_ready_) {
    Status s = EnsureGroups();
    redis_health_.Report(s, "create consumer groups");
    if (!s.ok()) {
      metrics_.redis_errors.Increment();
      return s;
    }
  }
  // After a restart under the same consumer name, first take back what this consumer left pending.
  bool history = !own_pending_recovered_;
  std::vector<std::vector<std::string>> reads = ReadCommands(history);
  // The previous batch's acks, then the read(s), in one round trip. Acks are sent only for entries whose
  // effects are stored, and re-sending an ack is harmless, so a failed round trip just keeps them queued.
  std::vector<std::vector<std::string>> cmds = TakeAckCommands();
  const size_t ack_count = cmds.size();
  cmds.insert(cmds.end(), std::make_move_iterator(reads.begin()), std::make_move_iterator(reads.end()));
  bool blocking = !history && !buffer_.keys().cluster();
  auto sent = read_->Pipeline(cmds, blocking ? options_.block_ms : 0);
  Status read_status;
  std::vector<StreamEntry> entries;
  if (!sent.ok()) {
    read_status = sent.status();
    for (size_t i = 0; i < ack_count; ++i) RequeueAck(cmds[i]);
  } else {
    for (size_t i = ack_count; i < sent->size(); ++i) {
      const RedisValue& v = (*sent)[i];
      if (v.is_error()) {
        read_status = TranslateRedisError(v.str);
        continue;  // the other shards' entries are still processed
      }
      auto part = ParseStreamReply(v);
      entries.insert(entries.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
    }
    std::vector<RedisValue>().swap(*sent);  // parsed: not held twice while the batch is processed
  }
  redis_health_.Report(read_status, "read streams");
  if (!read_status.ok()) {
    metrics_.redis_errors.Increment();
    if (read_status.code() == StatusCode::kFailedPrecondition) groups_ready_ = false;  // NOGROUP: recreate
    if (entries.empty()) return read_status;
  }
  if (history && entries.empty() && read_status.ok()) own_pending_recovered_ = true;
  if (history) {
    for (const auto& e : entries) recovered_up_to_[e.stream] = e.id;  // each stream's in id order
    DeadLetterOverDelivered(entries);
  }
  int n = static_cast<int>(entries.size());
  // The batch's size in chunks, for the linger below: an entry of ingest holds a request's chunks, fields "e"
  // or ChunkBatches "b" (docs/ARCHITECTURE.md "Chunk entries"); other entries count one. What the chunk entries held
  // sizes the next reads (ReadSizer).
  size_t items = 0, chunk_entries = 0, envelopes = 0, bytes = 0;
  for (const auto& e : entries) {
    const size_t k = ChunkEnvelopeCount(e);
    items += std::max<size_t>(1, k);
    if (e.fields.empty() || buffer_.keys().IsFinalizeStream(e.stream)) continue;
    ++chunk_entries;
    envelopes += k;
    for (const auto& f : e.fields) bytes += f.first.size() + f.second.size();
  }
  read_sizer_.Observe(chunk_entries, envelopes, bytes);
  finalize_queued_ = false;
  if (n > 0) Process(std::move(entries), stop);
  if (n == 0 && !history && !blocking) IdlePoll(stop);
  // Streaming, with consumers faster than the producers, a blocking read returns as soon as one entry is
  // there, and a small batch costs Redis nearly what a full one does (a script call per generation in it):
  // with 8 loops on 4 streams batches fell to ~70 entries and throughput to a third. After a small batch,
  // wait a moment so the next read finds more (Kafka's fetch.min.bytes + fetch.max.wait, in effect).
  // Not when this batch completed a generation: its finalize entry is waiting, and finalize latency counts.
  if (blocking && n > 0 && items < static_cast<size_t>(options_.min_batch) && options_.linger_ms > 0 && !finalize_queued_ && !stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.linger_ms));
  }
  if (n > 0) idle_poll_ms_ = 0;

  auto now = Clk::now();
  if (now >= next_sweep_) {
    next_sweep_ = now + std::chrono::milliseconds(options_.sweep_interval_ms);
    (void)SweepNow();
  }
  if (now >= next_claim_) {
    next_claim_ = now + std::chrono::milliseconds(std::min<int64_t>(config_.visibility_timeout_ms / 2 + 1, 5000));
    (void)ClaimNow(stop);
  }
  if (now >= next_trim_) {
    next_trim_ = now + std::chrono::milliseconds(options_.trim_interval_ms);
    (void)TrimNow();
  }
  return n;
}

std::vector<std::vector<std::string>> CompactorService::ReadCommands(bool history) const {
  const KeySchema& keys = buffer_.keys();
  auto head = [&](int count) {
    return std::vector<std::string>{"XREADGROUP", "GROUP", keys.CompactorGroup(), config_.consumer_name,
                                    "COUNT", std::to_string(count)};
  };
  const int chunk_count = read_sizer_.Count();
  std::vector<std::string> streams = Streams();
  auto from = [&](const std::string& stream) -> std::string {
    if (!history) return ">";
    auto at = recovered_up_to_.find(stream);
    return at == recovered_up_to_.end() ? "0" : at->second;
  };
  std::vector<std::vector<std::string>> reads;
  if (keys.cluster()) {
    // Redis Cluster refuses a multi-key command across slots, and every shard's stream has its own slot:
    // one non-blocking read per stream (the client pipelines them per master); IdlePoll paces empty rounds.
    for (const auto& s : streams) {
      auto cmd = head(keys.IsFinalizeStream(s) ? options_.read_count : chunk_count);
      cmd.insert(cmd.end(), {"STREAMS", s, from(s)});
      reads.push_back(std::move(cmd));
    }
    return reads;
  }
  auto cmd = head(chunk_count);
  if (!history) cmd.insert(cmd.end(), {"BLOCK", std::to_string(options_.block_ms)});
  cmd.push_back("STREAMS");
  cmd.insert(cmd.end(), streams.begin(), streams.end());
  for (const auto& s : streams) cmd.push_back(from(s));
  reads.push_back(std::move(cmd));
  if (!history && chunk_count < options_.read_count) {
    // The blocking read's COUNT also applies to the finalize stream; this read, which Redis answers as soon
    // as that one returns (a connection's commands run in order), takes the rest of a full batch of them.
    auto more = head(options_.read_count - chunk_count);
    more.push_back("STREAMS");
    std::vector<std::string> finals;
    for (const auto& s : streams) {
      if (keys.IsFinalizeStream(s)) finals.push_back(s);
    }
    more.insert(more.end(), finals.begin(), finals.end());
    for (size_t i = 0; i < finals.size(); ++i) more.push_back(">");
    reads.push_back(std::move(more));
  }
  return reads;
}

void CompactorService::IdlePoll(const std::atomic<bool>& stop) {
  // Without a blocking read (cluster mode), an empty round waits before the next: 1 ms doubling up to
  // block_ms (at most 50 ms), so an idle compactor costs Redis little and a busy one never sleeps.
  idle_poll_ms_ = std::min<int64_t>({idle_poll_ms_ == 0 ? 1 : idle_poll_ms_ * 2, options_.block_ms, 50});
  auto until = Clk::now() + std::chrono::milliseconds(idle_poll_ms_);
  while (!stop.load() && Clk::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void CompactorService::Process(std::vector<StreamEntry> entries, const std::atomic<bool>& stop) {
  std::vector<StreamEntry> chunks, finals;
  for (auto& e : entries) (buffer_.keys().IsFinalizeStream(e.stream) ? finals : chunks).push_back(std::move(e));
  if (!chunks.empty()) ProcessChunks(chunks, stop);
  if (!finals.empty()) ProcessFinalizes(finals, stop);
}

void CompactorService::ProcessChunks(const std::vector<StreamEntry>& entries, const std::atomic<bool>& stop) {
  auto started = Clk::now();
  std::vector<ChunkItem> items;
  std::vector<StreamEntry> good;
  for (const auto& e : entries) {
    if (e.fields.empty()) {  // trimmed while pending: nothing to apply
      good.push_back(e);
      continue;
    }
    // An entry is applied or dead-lettered whole (with all its envelopes): its ack covers all of them.
    const size_t before = items.size();
    std::string why;
    if (!DecodeChunkEntry(e, &items, &why, static_cast<size_t>(config_.max_generation_bytes))) {
      DeadLetterEntry(e, why, 1);
      continue;
    }
    Status v = Status::Ok();
    for (size_t k = before; k < items.size() && v.ok(); ++k) v = buffer_.Validate(items[k]);
    if (!v.ok()) {
      items.resize(before);
      DeadLetterEntry(e, v.message(), 1);
      continue;
    }
    good.push_back(e);
  }
  if (!items.empty()) {
    if (config_.chunk_storage != ChunkStorage::kRedis) {
      std::vector<size_t> own;
      Status s = Retry(stop, [&] {
        auto r = OwnChunkItems(items);
        redis_health_.Report(r.status(), "owners of chunk rows");
        if (r.ok()) own = std::move(*r);
        return r.status();
      }, &good);
      if (!s.ok()) return;
      if (!StoreChunkRows(items, own, good, stop)) return;  // not acked: redelivered or claimed later
    }
    ApplyResult result;
    Status s = Retry(stop, [&] {
      auto r = buffer_.Apply(*write_, items);
      redis_health_.Report(r.status(), "apply chunks");
      if (!r.ok()) {
        metrics_.redis_errors.Increment();
        return r.status();
      }
      result = std::move(*r);
      return Status::Ok();
    }, &good);
    if (!s.ok()) {
      if (!stop.load()) {
        // Not retryable (e.g. a script rejected the batch): park every entry of it with the reason.
        for (size_t i = 0; i < good.size(); ++i) DeadLetterEntry(good[i], s.ToString(), 1);
      }
      return;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      if (result.superseded[i]) {
        metrics_.chunks_superseded.Increment();
        continue;
      }
      if (!result.applied[i]) {
        metrics_.chunks_duplicate.Increment();
        continue;
      }
      metrics_.chunks_applied.Increment();
      const ChunkItem& it = items[i];
      metrics_.chunk_text_bytes.Increment(static_cast<double>(it.compressed ? it.plain_bytes : it.data.size()));
      metrics_.chunk_stored_bytes.Increment(static_cast<double>(it.data.size()));
    }
    if (result.finalize_queued > 0) finalize_queued_ = true;
    for (const auto& [g, llen] : result.llens) NoteLlen(g, llen);
  }
  Ack(good);
  metrics_.apply_batch_latency.Observe(std::chrono::duration<double>(Clk::now() - started).count());
}

void CompactorService::ProcessFinalizes(const std::vector<StreamEntry>& entries, const std::atomic<bool>& stop) {
  std::vector<FinalizeRequest> reqs;
  std::vector<StreamEntry> owners;  // owners[k] is the finalize entry of reqs[k]
  for (const auto& e : entries) {
    if (e.fields.empty()) {  // trimmed while pending: nothing to finalize
      Ack({e});
      continue;
    }
    const std::string* m = e.Field("m");
    const std::string* r = e.Field("r");
    GenerationId gen;
    if (m == nullptr || !KeySchema::ParseMember(*m, &gen) || gen.org <= 0 || gen.gen <= 0) {
      DeadLetterEntry(e, "malformed finalize entry", 1);
      continue;
    }
    const std::string* q = e.Field("q");  // requeued from the dead letters: the id it was first queued under
    reqs.push_back(FinalizeRequest{gen, r ? *r : "complete", e.id, q != nullptr ? *q : ""});
    owners.push_back(e);
  }
  if (reqs.empty()) return;
  size_t begin = 0;
  for (size_t end : FinalizeGroupEnds(reqs)) {
    if (stop.load()) return;  // the rest stays pending
    FinalizeGroup({reqs.begin() + begin, reqs.begin() + end}, {owners.begin() + begin, owners.begin() + end}, stop);
    begin = end;
  }
}

std::vector<size_t> CompactorService::FinalizeGroupEnds(const std::vector<FinalizeRequest>& reqs) {
  if (reqs.size() < 2) return {reqs.size()};
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(reqs.size());
  for (const auto& r : reqs) cmds.push_back({"HGET", buffer_.keys().MetaKey(r.gen), "received_bytes"});
  // Sizes unknown (Redis unreachable: the finalization's own retry waits for it; an error reply): groups of
  // kFinalizeGroupUnsized, so an unknown size never means one group of everything.
  constexpr size_t kFinalizeGroupUnsized = 16;
  auto sizes = write_->Pipeline(cmds);
  std::vector<size_t> ends;
  int64_t held = 0;     // bytes of the open group
  size_t unsized = 0;   // finalizations of unknown size in it
  for (size_t i = 0; i < reqs.size(); ++i) {
    const bool known = sizes.ok() && !(*sizes)[i].is_error();
    const int64_t bytes = known ? std::max<long long>(0, (*sizes)[i].AsInt()) : 0;
    const bool too_large = held > 0 && held + bytes > options_.finalize_bytes;
    const bool too_many_unsized = !known && unsized == kFinalizeGroupUnsized;
    if (too_large || too_many_unsized) {
      ends.push_back(i);
      held = 0;
      unsized = 0;
    }
    held += bytes;
    if (!known) ++unsized;
  }
  ends.push_back(reqs.size());
  return ends;
}

void CompactorService::FinalizeGroup(const std::vector<FinalizeRequest>& reqs, const std::vector<StreamEntry>& owners,
                                     const std::atomic<bool>& stop) {
  // The whole group first: one snapshot round trip, one DB transaction, one mark+event round trip.
  std::vector<FinalizeOutcome> outcomes;
  auto started = Clk::now();
  Status s = RetryFinalize(reqs, owners, &outcomes, stop);
  metrics_.finalize_batch_latency.Observe(std::chrono::duration<double>(Clk::now() - started).count());
  if (s.ok()) {
    for (size_t k = 0; k < reqs.size(); ++k) {
      RecordFinalized(reqs[k], owners[k], outcomes[k]);
      if (outcomes[k].owned_elsewhere) {
        RefuseForeignGeneration(reqs[k], owners[k]);
      } else {
        Ack({owners[k]});
      }
    }
    return;
  }
  if (stop.load()) return;  // left pending: another compactor (or our restart) finishes it
  // A permanent failure: find the poisoned finalization(s) one by one; the others still complete.
  for (size_t k = 0; k < reqs.size() && !stop.load(); ++k) {
    LogScope scope(LogContext().Generation(reqs[k].gen.org, reqs[k].gen.gen).Entry(owners[k].id));
    std::vector<FinalizeOutcome> one;
    Status s1 = RetryFinalize({reqs[k]}, {owners[k]}, &one, stop);
    if (s1.ok()) {
      RecordFinalized(reqs[k], owners[k], one[0]);
      if (one[0].owned_elsewhere) {
        RefuseForeignGeneration(reqs[k], owners[k]);
      } else {
        Ack({owners[k]});
      }
      last_failure_.erase(owners[k].id);
    } else if (!stop.load()) {
      // Neither acked nor dead-lettered yet: the buffer stays, and the claim path retries the entry after
      // VISIBILITY_TIMEOUT (a database that refused the row may accept it once an operator fixed it). Only
      // after MAX_DELIVERIES does it go to the dead letters, with this error as its reason.
      SF_LOG_ERROR("finalize {} failed: {}; left pending, retried after VISIBILITY_TIMEOUT",
                   KeySchema::Member(reqs[k].gen), s1.ToString());
      metrics_.finalize_rejected.Increment();
      if (last_failure_.size() > 10000) last_failure_.clear();
      last_failure_[owners[k].id] = s1.ToString();
    }
  }
}

Status CompactorService::RetryFinalize(const std::vector<FinalizeRequest>& reqs,
                                       const std::vector<StreamEntry>& owners, std::vector<FinalizeOutcome>* out,
                                       const std::atomic<bool>& stop) {
  return Retry(stop, [&] {
    FinalizeDependency failed = FinalizeDependency::kRedis;
    auto o = finalizer_.FinalizeBatch(*write_, reqs, &failed);
    if (!o.ok()) {
      bool db = failed != FinalizeDependency::kRedis;  // the database or the object store
      (db ? metrics_.db_errors : metrics_.redis_errors).Increment();
      (db ? db_health_ : redis_health_)
          .Report(o.status(), failed == FinalizeDependency::kArtifactStore ? "store artifact" : "finalize");
      return o.status();
    }
    db_health_.Report(Status::Ok(), "finalize");
    *out = std::move(*o);
    return Status::Ok();
  }, &owners);
}

void CompactorService::RecordFinalized(const FinalizeRequest& req, const StreamEntry& e,
                                       const FinalizeOutcome& outcome) {
  LogScope scope(LogContext().Generation(req.gen.org, req.gen.gen).Entry(e.id));
  if (outcome.owned_elsewhere) return;  // RefuseForeignGeneration counts it
  if (outcome.superseded) {
    SF_LOG_INFO("finalize {}: queued ({}) before the generation was started over; the new attempt finalizes itself",
                KeySchema::Member(req.gen), req.reason);
    metrics_.finalize_superseded.Increment();
    return;
  }
  if (outcome.empty) {
    SF_LOG_WARN("finalize {}: no buffer (expired or already deleted); nothing to write", KeySchema::Member(req.gen));
    return;
  }
  if (outcome.replay) {
    metrics_.finalize_replays.Increment();
    return;
  }
  if (outcome.kept_row) {  // said in the finalizer's log line; neither a replay nor a finalization
    metrics_.finalize_kept_rows.Increment();
    return;
  }
  if (req.reason == "idle_timeout") {
    metrics_.finalized_idle.Increment();
  } else if (req.reason == "complete") {
    metrics_.finalized_complete.Increment();
  } else {
    metrics_.finalized_manual.Increment();
  }
  if (!outcome.json_valid) metrics_.json_fallbacks.Increment();
  if (outcome.malformed > 0) {
    SF_LOG_WARN("finalize {}: {} buffered chunks did not decode (corrupt compressed data) and are left out of the "
                "text (metadata.malformed_chunks)",
                KeySchema::Member(req.gen), outcome.malformed);
    metrics_.chunks_malformed.Increment(static_cast<double>(outcome.malformed));
  }
  int64_t queued = StreamIdMs(e.id);
  if (queued > 0) metrics_.finalize_latency.Observe(std::max<double>(0, (WallClockMs() - queued) / 1000.0));
}

void CompactorService::Ack(const std::vector<StreamEntry>& entries) {
  for (const auto& e : entries) acks_[e.stream].push_back(e.id);
}

std::vector<std::vector<std::string>> CompactorService::TakeAckCommands() {
  std::vector<std::vector<std::string>> cmds;
  for (auto& [stream, ids] : acks_) {
    std::vector<std::string> c = {"XACK", stream, buffer_.keys().CompactorGroup()};
    c.insert(c.end(), std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end()));
    cmds.push_back(std::move(c));
  }
  acks_.clear();
  return cmds;
}

void CompactorService::RequeueAck(const std::vector<std::string>& xack) {
  auto& ids = acks_[xack[1]];
  ids.insert(ids.end(), xack.begin() + 3, xack.end());
}

Status CompactorService::FlushAcks() {
  auto cmds = TakeAckCommands();
  if (cmds.empty()) return Status::Ok();
  // A failed ack is harmless: the entry is redelivered and re-applying it changes nothing.
  auto r = write_->Pipeline(cmds);
  redis_health_.Report(r.status(), "acknowledge");
  if (!r.ok()) {
    metrics_.redis_errors.Increment();
    for (const auto& c : cmds) RequeueAck(c);
    return r.status();
  }
  return Status::Ok();
}

StatusOr<std::vector<size_t>> CompactorService::OwnChunkItems(const std::vector<ChunkItem>& items) {
  // generation_chunks is keyed by (generation, seq): a foreign organization's chunk stored first would hide
  // the owner's. Rows are written only for ids that are this organization's or nobody's yet (the finalizer
  // decides those, and reads back only the finalizing organization's rows).
  const KeySchema& keys = buffer_.keys();
  std::vector<std::vector<std::string>> cmds;
  std::vector<int64_t> gens;
  for (const auto& it : items) {
    if (it.finish || std::find(gens.begin(), gens.end(), it.gen.gen) != gens.end()) continue;
    gens.push_back(it.gen.gen);
    cmds.push_back({"GET", keys.OwnerKey(it.gen.gen)});
  }
  std::map<int64_t, std::string> owner;
  if (!cmds.empty()) {
    auto r = write_->Pipeline(cmds);
    if (!r.ok()) return r.status();
    for (size_t i = 0; i < gens.size(); ++i) {
      if ((*r)[i].is_error()) return TranslateRedisError((*r)[i].str);
      owner[gens[i]] = (*r)[i].str;
    }
  }
  std::vector<size_t> own;
  for (size_t i = 0; i < items.size(); ++i) {
    const ChunkItem& it = items[i];
    if (it.finish) continue;
    const std::string& o = owner[it.gen.gen];
    if (!o.empty() && o != std::to_string(it.gen.org)) continue;
    own.push_back(i);
  }
  return own;
}

bool CompactorService::StoreChunkRows(const std::vector<ChunkItem>& items, const std::vector<size_t>& own,
                                      const std::vector<StreamEntry>& good, const std::atomic<bool>& stop) {
  for (size_t next = 0; next < own.size();) {
    std::vector<ChunkRow> rows;
    int64_t bytes = 0;
    for (; next < own.size() && (rows.empty() || bytes < options_.chunk_rows_bytes); ++next) {
      const ChunkItem& it = items[own[next]];
      // Rows hold the text (generation_chunks is read by SQL users and replays); a frame that does not
      // decompress gets no row, and its buffer copy is counted malformed at finalize (chunks_malformed,
      // metadata.malformed_chunks).
      auto text = ChunkItemText(it);
      if (!text.ok()) continue;
      bytes += static_cast<int64_t>(text->size());
      rows.push_back({it.gen.gen, it.gen.org, it.gen.scenario, it.seq, std::move(*text)});
    }
    if (rows.empty()) continue;
    Status s = Retry(
        stop,
        [&] {
          Status st = store_.UpsertChunks(rows);
          db_health_.Report(st, "store chunks");
          if (!st.ok()) metrics_.db_errors.Increment();
          return st;
        },
        &good);
    if (!s.ok()) return false;
  }
  return true;
}

void CompactorService::RefuseForeignGeneration(const FinalizeRequest& req, const StreamEntry& e) {
  // Not silent: counted, logged, and the finalize entry kept in the dead letters with the reason (the
  // buffer stays until its TTL, for an operator to look at).
  metrics_.owner_conflicts.Increment();
  DeadLetterEntry(e,
                  std::string(kOwnedElsewhere) + ": generation " + std::to_string(req.gen.gen) +
                      " belongs to another organization than " + std::to_string(req.gen.org) + "; no row written",
                  1);
}

void CompactorService::DeadLetterOverDelivered(std::vector<StreamEntry>& entries) {
  // This consumer's own pending entries, read again after a restart under the same name: the claim path's
  // MAX_DELIVERIES rule applies to them too. An entry that kills the process (memory) was otherwise taken up
  // again by each restart, a crash loop that only another compactor's claim, after VISIBILITY_TIMEOUT of an
  // idle entry, could end (and a restarted pod re-reads it sooner). One XPENDING per stream read.
  std::vector<std::string> streams;
  std::map<std::string, std::pair<std::string, std::string>> range;  // stream -> first and last id read
  for (const auto& e : entries) {
    auto [it, fresh] = range.try_emplace(e.stream, e.id, e.id);
    if (fresh) {
      streams.push_back(e.stream);
    } else {
      it->second.second = e.id;
    }
  }
  std::vector<std::vector<std::string>> cmds;
  std::map<std::string, size_t> count;
  for (const auto& e : entries) ++count[e.stream];
  for (const auto& stream : streams) {
    cmds.push_back({"XPENDING", stream, buffer_.keys().CompactorGroup(), range[stream].first, range[stream].second,
                    std::to_string(count[stream]), config_.consumer_name});
  }
  auto replies = write_->Pipeline(cmds);
  if (!replies.ok()) return;  // processed as read: the claim path still bounds them
  std::map<std::string, int64_t> delivered;  // entry id (within its stream) -> times delivered
  for (size_t i = 0; i < streams.size(); ++i) {
    const RedisValue& v = (*replies)[i];
    if (!v.is_array()) continue;
    for (const RedisValue& p : v.elements) {
      if (p.is_array() && p.elements.size() >= 4) delivered[streams[i] + " " + p.elements[0].str] = p.elements[3].integer;
    }
  }
  std::vector<StreamEntry> kept;
  kept.reserve(entries.size());
  for (auto& e : entries) {
    auto d = delivered.find(e.stream + " " + e.id);
    if (d != delivered.end() && d->second > config_.max_deliveries) {
      DeadLetterEntry(e,
                      "delivered " + std::to_string(d->second) + " times (MAX_DELIVERIES " +
                          std::to_string(config_.max_deliveries) + "), read again after a restart",
                      d->second);
    } else {
      kept.push_back(std::move(e));
    }
  }
  entries = std::move(kept);
}

void CompactorService::DeadLetterEntry(const StreamEntry& e, const std::string& reason, int64_t times_delivered) {
  LogScope scope(LogContext().Entry(e.id));
  SF_LOG_WARN("dead-lettering {} {}: {}", e.stream, e.id, reason);
  Status s = DeadLetter(*write_, buffer_.keys().ChunkDeadLetterStream(), e, buffer_.keys().CompactorGroup(), reason,
                        times_delivered);
  if (!s.ok()) {
    metrics_.redis_errors.Increment();
    return;  // not acked: it will come back and be dead-lettered then
  }
  metrics_.dead_lettered.Increment();
  Ack({e});
}

void CompactorService::NoteLlen(const GenerationId& g, int64_t llen) {
  if (llen <= config_.llen_alert_threshold) return;
  std::string m = KeySchema::Member(g);
  if (over_threshold_logged_.size() > 10000) over_threshold_logged_.clear();
  if (over_threshold_logged_.insert(m).second) {
    LogScope scope(LogContext().Generation(g.org, g.gen));
    SF_LOG_WARN("generation buffer {} has LLEN {} > GENERATION_LLEN_ALERT_THRESHOLD {}", buffer_.keys().BufferKey(g),
                llen, config_.llen_alert_threshold);
  }
}

Status CompactorService::SweepNow() {
  // The sweep waits for the group's acknowledged watermark (consumed_watermark.h): our own queued acks
  // first, or the batch just applied would hold its generations' deadlines back by one sweep.
  SF_RETURN_IF_ERROR(FlushAcks());
  auto r = buffer_.SweepDeadlines(*write_, 500);
  redis_health_.Report(r.status(), "sweep deadlines");
  if (!r.ok()) {
    metrics_.redis_errors.Increment();
    return r.status();
  }
  return Status::Ok();
}

Status CompactorService::ClaimNow(const std::atomic<bool>& stop) {
  for (const auto& stream : Streams()) {
    // Up to 100 entries per stream and round, as many at a time as a read takes (chunk entries may be large;
    // see ReadSizer), each batch processed before the next is claimed. The cursor carries the scan on: Redis
    // looks at only 10 x count pending entries per call, and a small count would otherwise never get past
    // the first ones, which may be live consumers'.
    const int count = buffer_.keys().IsFinalizeStream(stream) ? 100 : std::min(100, read_sizer_.Count());
    std::string cursor = "0-0";
    for (int taken = 0; taken < 100 && !stop.load();) {
      auto claimed = ClaimIdle(*write_, stream, buffer_.keys().CompactorGroup(), config_.consumer_name,
                               config_.visibility_timeout_ms, count, &cursor);
      if (!claimed.ok()) {
        metrics_.redis_errors.Increment();
        return claimed.status();
      }
      taken += std::max<int>(1, static_cast<int>(claimed->size()));
      std::vector<StreamEntry> redo;
      for (auto& c : *claimed) {
        metrics_.claimed.Increment();
        if (c.times_delivered > config_.max_deliveries) {
          std::string reason = "delivered " + std::to_string(c.times_delivered) + " times (MAX_DELIVERIES " +
                               std::to_string(config_.max_deliveries) + ")";
          if (auto f = last_failure_.find(c.entry.id); f != last_failure_.end()) {
            reason += "; last error: " + f->second;
            last_failure_.erase(f);
          }
          DeadLetterEntry(c.entry, reason, c.times_delivered);
        } else {
          redo.push_back(std::move(c.entry));
        }
      }
      if (!redo.empty()) {
        SF_LOG_INFO("claimed {} entries of {} from dead consumers", redo.size(), stream);
        Process(std::move(redo), stop);
      }
      if (cursor == "0-0") break;  // the whole pending list was scanned
    }
  }
  // Takeovers are rare: ack them now rather than with the next read.
  return FlushAcks();
}

Status CompactorService::TrimNow() {
  for (const auto& stream : Streams()) {
    auto t = TrimAcknowledged(*write_, stream, options_.trim_keep_ms);
    if (!t.ok()) return t.status();
    metrics_.trimmed.Increment(static_cast<double>(*t));
    auto d = RemoveDeadConsumers(*write_, stream, buffer_.keys().CompactorGroup(), config_.dead_consumer_idle_ms);
    if (!d.ok()) return d.status();
  }
  return Status::Ok();
}

void CompactorService::SampleGauges() {
  std::lock_guard<std::mutex> l(sample_mu_);
  if (config_.redis_info_metrics) (void)redis_info_.Sample(*sample_);
  // Buffers: the live ones (listed from the deadlines sets, live_buffers.h), their LLEN pipelined by page.
  int64_t live = 0, sum = 0, max = 0, over = 0;
  Status scanned = ForEachLiveBuffer(*sample_, buffer_.keys(), 500, [&](const std::vector<LiveBufferLength>& page) {
    for (const auto& b : page) {
      ++live;
      sum += b.llen;
      max = std::max<int64_t>(max, b.llen);
      if (b.llen > config_.llen_alert_threshold) ++over;
    }
    return true;
  });
  if (!scanned.ok()) return;
  metrics_.buffers_live.Set(static_cast<double>(live));
  metrics_.buffer_chunks.Set(static_cast<double>(sum));
  metrics_.buffer_llen_max.Set(static_cast<double>(max));
  metrics_.buffers_over_threshold.Set(static_cast<double>(over));
  std::vector<std::vector<std::string>> zcards;
  for (int i = 0; i < buffer_.keys().control_shards(); ++i) zcards.push_back({"ZCARD", buffer_.keys().DeadlinesKey(i)});
  if (auto z = sample_->Pipeline(zcards); z.ok()) {
    int64_t pending = 0;
    for (const auto& v : *z) pending += v.integer;
    metrics_.deadlines_pending.Set(static_cast<double>(pending));
  }
  std::vector<std::string> streams = Streams();
  streams.push_back(buffer_.keys().ChunkDeadLetterStream());
  stream_gauges_.Sample(*sample_, streams);
}

}  // namespace streamfleet::compactor
