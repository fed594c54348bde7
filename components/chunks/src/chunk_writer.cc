#include "streamfleet/chunks/chunk_writer.h"

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "streamfleet/chunks/chunk_entry.h"
#include "streamfleet/chunks/chunk_scripts.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/base/compression.h"
#include "streamfleet/base/envelope_version.h"
#include "streamfleet/base/hash_fields.h"
#include "streamfleet/base/time.h"
#include "streamfleet/chunks/generation_owner.h"
#include "streamfleet/sql/sql_store.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/v1/chunk.pb.h"

namespace streamfleet {

namespace {

// 64 bits of the data's SHA-256, as the append script compares them: enough to tell a resent chunk from
// another one under the same seq or key, without keeping the data.
std::string DataDigest(const std::string& data) { return Sha256Hex(data).substr(0, 16); }

}  // namespace

void ChunkWriter::SetEnvelopeData(v1::ChunkEnvelope& e, const std::string& data) const {
  if (config_.chunk_compression && static_cast<int64_t>(data.size()) >= config_.chunk_compression_min_bytes) {
    if (auto z = ZstdCompressIfSmaller(data)) {
      e.set_data(std::move(*z));
      e.set_data_encoding(v1::ChunkEnvelope::DATA_ZSTD);
      e.set_data_size(static_cast<int64_t>(data.size()));
      e.set_version(kChunkEnvelopeCompressed);  // consumers that predate compression dead-letter, not misread
      return;
    }
  }
  e.set_data(data);
}

namespace {

// Whether the request's chunks go to the script as a ChunkBatch: several chunks, all with seqs the script
// assigns and without keys, so it has nothing to check or record per chunk.
bool AsBatch(const std::vector<PendingChunk>& chunks) {
  if (chunks.size() < 2) return false;
  for (const auto& c : chunks) {
    if (c.finish || c.seq || !c.idempotency_key.empty()) return false;
  }
  return true;
}

// A batch part (one stream entry) is closed at 64 KiB of envelopes or 1000 of them, like the script's
// entries of single envelopes: a consumer's read of COUNT entries stays bounded.
constexpr size_t kPartBytes = 65536;
constexpr int kPartEnvelopes = 1000;

}  // namespace

v1::ChunkEnvelope ChunkWriter::Envelope(const GenerationId& gen, const PendingChunk& c, int64_t now,
                                        const std::string& source) const {
  v1::ChunkEnvelope e;
  e.set_kind(c.finish ? v1::ChunkEnvelope::FINISH : v1::ChunkEnvelope::CHUNK);
  e.set_organization_id(gen.org);
  e.set_scenario_id(gen.scenario);
  e.set_generation_id(gen.gen);
  e.set_seq(c.seq.value_or(0));
  SetEnvelopeData(e, c.data);
  e.set_final(c.final);
  e.set_total_chunks(c.total_chunks);
  e.set_produced_at_ms(now);
  e.set_source(source);
  return e;
}

ChunkWriter::AppendCall ChunkWriter::PrepareAppend(const GenerationId& gen, const std::vector<PendingChunk>& chunks,
                                                   const std::string& source) const {
  const int64_t now = WallClockMs();
  // Chunks without a seq get theirs from the generation's counter inside the script (see IngestAppend):
  // one round trip per request, and concurrent requests never share a seq.
  std::vector<std::string> args = {std::to_string(gen.scenario), std::to_string(gen.org),
                                   std::to_string(config_.max_generation_bytes), std::to_string(config_.chunk_ttl_s),
                                   std::to_string(config_.owner_ttl_s), std::to_string(chunks.size())};
  std::vector<std::string> keys = {keys_.ControlKey(gen), keys_.ChunkStream(keys_.ShardOf(gen)), keys_.IngestKey(gen)};
  if (!keys_.cluster()) keys.push_back(keys_.OwnerKey(gen.gen));
  if (config_.chunk_batches && AsBatch(chunks)) {
    // ARGV 7 parts, 8 data bytes, then per part its ChunkBatch bytes (without first_seq) and envelope count.
    args.insert(args.end(), {"", ""});
    int64_t bytes = 0;
    int parts = 0, in_part = 0;
    std::string* part = nullptr;
    for (const auto& c : chunks) {
      if (part == nullptr || part->size() >= kPartBytes || in_part >= kPartEnvelopes) {
        if (part != nullptr) args.push_back(std::to_string(in_part));
        part = &args.emplace_back();
        ++parts;
        in_part = 0;
      }
      v1::ChunkEnvelope e = Envelope(gen, c, now, source);
      e.set_version(kChunkEnvelopeBatched);  // the seq is the batch's: never read alone
      AppendBatchEnvelope(part, e);
      ++in_part;
      bytes += static_cast<int64_t>(c.data.size());
    }
    args.push_back(std::to_string(in_part));
    args[6] = std::to_string(parts);
    args[7] = std::to_string(bytes);
    args.push_back(std::to_string(config_.max_chunks_per_generation));  // the last ARGV
    return {std::move(keys), std::move(args)};
  }
  args.push_back("0");  // ARGV 7: no batch; then 5 per chunk
  args.reserve(args.size() + 5 * chunks.size() + 1);
  for (const auto& c : chunks) {
    v1::ChunkEnvelope e = Envelope(gen, c, now, source);
    if (chunks.size() > 1) e.set_version(kChunkEnvelopeShared);  // the script writes them as one entry
    args.push_back(e.SerializeAsString());
    if (c.finish) {
      args.insert(args.end(), {"f", std::to_string(c.total_chunks), ""});
    } else if (c.seq) {
      // A digest of the data, so a resent seq is told apart from the same seq with other data.
      args.insert(args.end(), {"c", std::to_string(*c.seq), DataDigest(c.data)});
    } else if (!c.idempotency_key.empty()) {
      args.insert(args.end(), {"a", c.idempotency_key, DataDigest(c.data)});
    } else {
      args.insert(args.end(), {"a", "", ""});
    }
    args.push_back(std::to_string(c.data.size()));
  }
  args.push_back(std::to_string(config_.max_chunks_per_generation));  // the last ARGV
  return {std::move(keys), std::move(args)};
}

std::string AppendConflictReason(const Status& s) {
  if (s.code() != StatusCode::kFailedPrecondition) return "";
  for (const char* r : {"generation_owned_elsewhere", "seq_conflict", "idempotency_key_reused", "total_conflict",
                        "scenario_conflict"}) {
    if (s.message().find(r) != std::string::npos) return r;
  }
  return "scenario_conflict";
}

StatusOr<AppendResult> ChunkWriter::ParseAppendReply(const StatusOr<RedisValue>& r, std::vector<PendingChunk>& chunks) {
  if (!r.ok()) return r.status();
  if (!r->is_array() || r->elements.size() < 4 || r->elements.size() > 5 || !r->elements[1].is_array()) {
    return Status::Internal("IngestAppend: unexpected reply");
  }
  // A batch's seqs: its first, then one each in order (the script does not list them).
  const bool batch = r->elements.size() == 5;
  const int64_t first_seq = batch ? r->elements[4].AsInt() : 0;
  AppendResult out;
  out.last_id = r->elements[0].str;
  out.replayed = r->elements[2].AsInt();
  out.started = r->elements[3].AsInt() == 1;
  const auto& assigned = r->elements[1].elements;  // the seq of every chunk without one, in order
  size_t k = 0;
  for (auto& c : chunks) {
    if (c.finish) continue;
    if (!c.seq && batch) {
      c.seq = first_seq + static_cast<int64_t>(k++);
    } else if (!c.seq) {
      if (k >= assigned.size()) return Status::Internal("IngestAppend: fewer seqs than chunks");
      c.seq = assigned[k++].AsInt();
    }
    ++out.accepted;
    out.last_seq = std::max(out.last_seq, *c.seq);
  }
  return out;
}

StatusOr<AppendResult> ChunkWriter::Append(RedisCommands& redis, const GenerationId& gen,
                                           std::vector<PendingChunk>& chunks, const std::string& source) {
  if (chunks.empty()) return AppendResult{};
  if (keys_.cluster()) {
    // The owner key is in another slot than the script's keys: claim it first (SET NX). A request refused
    // later in the script (scenario, limit) still leaves the id claimed by this organization, which is
    // what "first user" means.
    SF_RETURN_IF_ERROR(ClaimGeneration(redis, keys_, gen.org, gen.gen, config_.owner_ttl_s));
  }
  AppendCall call = PrepareAppend(gen, chunks, source);
  if (config_.ingest_wait_replicas <= 0) {
    return ParseAppendReply(redis.Eval(scripts::IngestAppend(), call.keys, call.args), chunks);
  }
  // Zero loss on failover: the append and a WAIT in one pipeline, so both run on the same connection (WAIT
  // counts the replicas that have this client's writes). EVAL with the source, not EVALSHA: a pooled
  // connection may not know the script, and a NOSCRIPT repair would split the pair.
  std::vector<std::string> eval = {"EVAL", scripts::IngestAppend().source(), std::to_string(call.keys.size())};
  eval.insert(eval.end(), call.keys.begin(), call.keys.end());
  eval.insert(eval.end(), call.args.begin(), call.args.end());
  auto replies = redis.Pipeline({eval, {"WAIT", std::to_string(config_.ingest_wait_replicas),
                                        std::to_string(config_.ingest_wait_timeout_ms)}});
  if (!replies.ok()) return replies.status();
  RedisValue& appended = (*replies)[0];
  auto r = ParseAppendReply(appended.is_error() ? StatusOr<RedisValue>(TranslateRedisError(appended.str))
                                                : StatusOr<RedisValue>(std::move(appended)),
                            chunks);
  if (!r.ok()) return r;
  long long replicas = (*replies)[1].AsInt();
  if (replicas < config_.ingest_wait_replicas) {
    // Written on the master, not yet where a failover keeps it: the client retries (same seqs or
    // Idempotency-Key: nothing is appended twice).
    return Status::Unavailable("the chunks reached " + std::to_string(replicas) + " of " +
                               std::to_string(config_.ingest_wait_replicas) + " replicas within " +
                               std::to_string(config_.ingest_wait_timeout_ms) + " ms (INGEST_WAIT_REPLICAS)");
  }
  return r;
}

StatusOr<std::string> ChunkWriter::Progress(RedisCommands& redis, int64_t org, int64_t gen,
                                            std::optional<int64_t> scenario) {
  GenerationId g{org, 0, gen};
  auto ctl = redis.Command({"HGETALL", keys_.ControlKey(g)});
  if (!ctl.ok()) return ctl.status();
  std::map<std::string, std::string> c;
  for (auto& [k, v] : ParsePairs(*ctl)) c[k] = v.str;
  if (scenario) {
    g.scenario = *scenario;
  } else {
    g.scenario = IntField(c, "scenario");
  }
  auto meta = redis.Command({"HGETALL", keys_.MetaKey(g)});
  if (!meta.ok()) return meta.status();
  std::map<std::string, std::string> m;
  for (auto& [k, v] : ParsePairs(*meta)) m[k] = v.str;
  if (c.empty() && m.empty()) return Status::NotFound("no such generation in Redis (never started, or expired)");
  int64_t received = IntField(m, "received_chunks");
  int64_t total = IntField(m, "total_chunks");
  auto iso = [&](const char* k) -> nlohmann::json {
    int64_t ms = IntField(m, k);
    return ms > 0 ? nlohmann::json(IsoUtcFromMs(ms)) : nlohmann::json(nullptr);
  };
  std::string state = c.count("state") ? c["state"] : "receiving";
  nlohmann::json j = {{"organization_id", org},
                      {"generation_id", gen},
                      {"scenario_id", g.scenario > 0 ? nlohmann::json(g.scenario) : nlohmann::json(nullptr)},
                      {"received_chunks", received},
                      {"received_bytes", IntField(m, "received_bytes")},
                      {"total_chunks", total > 0 ? nlohmann::json(total) : nlohmann::json(nullptr)},
                      {"expected_total_bytes", nullptr},
                      {"percent", total > 0 ? nlohmann::json(std::min<int64_t>(100, 100 * received / total))
                                            : nlohmann::json(nullptr)},
                      {"first_chunk_at", iso("first_chunk_at")},
                      {"last_chunk_at", iso("last_chunk_at")},
                      {"ingested_bytes", IntField(c, "ingested_bytes")},
                      {"attempt", IntField(c, "attempt")},
                      {"state", state}};
  return j.dump();
}

Status ChunkWriter::Reset(RedisCommands& redis, const GenerationId& gen) {
  auto r = redis.Eval(scripts::ResetGeneration(),
                      {keys_.ControlKey(gen), keys_.BufferKey(gen), keys_.MetaKey(gen), keys_.SeenKey(gen),
                       keys_.DeadlinesKeyOf(gen), keys_.IngestKey(gen), keys_.FinalizeStreamOf(gen)},
                      {KeySchema::Member(gen), std::to_string(config_.chunk_ttl_s)});
  if (!r.ok()) return r.status();
  if (r->AsInt() != 1) return Status::Unavailable("chunks of the earlier attempt are not yet applied by the compactor");
  return Status::Ok();
}

Status ChunkWriter::MarkFailed(RedisCommands& redis, const GenerationId& gen) {
  auto r = redis.Eval(scripts::MarkFailed(), {keys_.ControlKey(gen)}, {std::to_string(config_.chunk_ttl_s)});
  return r.status();
}

StatusOr<int64_t> ChunkWriter::Backlog(RedisClient& redis) {
  int64_t total = 0;
  for (int i = 0; i < keys_.chunk_streams(); ++i) {
    auto st = GetStreamStats(redis, keys_.ChunkStream(i));
    if (!st.ok()) return st.status();
    bool found = false;
    for (const auto& g : st->groups) {
      if (g.name == keys_.CompactorGroup()) {
        total += g.lag >= 0 ? g.lag : st->length;
        found = true;
      }
    }
    if (!found) total += st->length;
  }
  return total;
}

}  // namespace streamfleet
