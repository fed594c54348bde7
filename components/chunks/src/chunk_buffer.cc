#include "streamfleet/chunks/chunk_buffer.h"

#include "streamfleet/chunks/consumed_watermark.h"
#include "streamfleet/chunks/chunk_scripts.h"
#include "streamfleet/chunks/buffer_element.h"
#include "streamfleet/base/hash_fields.h"
#include "streamfleet/redis/stream_admin.h"

namespace streamfleet {

int64_t BufferSnapshot::MetaInt(const std::string& k) const { return IntField(meta, k); }

Status ChunkBuffer::Validate(const ChunkItem& item) const {
  if (item.gen.org <= 0 || item.gen.gen <= 0 || item.gen.scenario < 0) {
    return Status::InvalidArgument("organization_id and generation_id must be positive");
  }
  const int64_t max = config_.max_chunks_per_generation;
  if (!item.finish && (item.seq < 0 || item.seq >= max)) {
    return Status::InvalidArgument("seq " + std::to_string(item.seq) + " outside [0, " + std::to_string(max) + ")");
  }
  if (item.total < 0 || item.total > max) {
    return Status::InvalidArgument("total_chunks " + std::to_string(item.total) + " outside [0, " +
                                   std::to_string(max) + "]");
  }
  if (item.finish && item.total <= 0) return Status::InvalidArgument("finish without total_chunks");
  if (!item.finish && item.total > 0 && item.seq >= item.total) {
    return Status::InvalidArgument("seq " + std::to_string(item.seq) + " >= total_chunks " +
                                   std::to_string(item.total));
  }
  return Status::Ok();
}

StatusOr<ApplyResult> ChunkBuffer::Apply(RedisCommands& redis, const std::vector<ChunkItem>& items) {
  redis.Register(scripts::ApplyChunks());
  // Group by generation and attempt, keeping arrival order inside each group: the script drops the chunks of
  // an attempt older than the generation's (a redelivery of what a crashed compactor had applied before the
  // producer started over), so a batch's chunks of two attempts are two groups. Almost always one per generation.
  struct Group {
    GenerationId gen;
    uint32_t attempt;
  };
  std::vector<Group> order;
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < items.size(); ++i) {
    size_t g = 0;
    for (; g < order.size(); ++g) {
      if (order[g].gen == items[i].gen && order[g].attempt == items[i].attempt) break;
    }
    if (g == order.size()) {
      order.push_back({items[i].gen, items[i].attempt});
      groups.emplace_back();
    }
    groups[g].push_back(i);
  }
  const int64_t override_ms = clock_.NowMsOverride();
  // One script call for the whole batch; on Redis Cluster one per generation (a call's keys share a slot).
  const std::vector<std::string> head = {std::to_string(override_ms), std::to_string(config_.idle_timeout_ms),
                                         std::to_string(config_.chunk_ttl_s),
                                         std::to_string(config_.max_chunks_per_generation), "0"};
  std::vector<std::vector<std::string>> cmds;
  std::vector<std::vector<size_t>> gens_of_cmd;  // per command: the generations (indexes into order)
  // Per generation: the input index of each chunk it sends, and of each total (-1: a final chunk's implied
  // total, not an input item of its own).
  std::vector<std::vector<int>> chunks_of(order.size()), totals_of(order.size());
  std::vector<std::string> keys, args = head;
  std::vector<size_t> gens_here;
  auto flush = [&] {
    if (gens_here.empty()) return;
    args[4] = std::to_string(gens_here.size());
    cmds.push_back(RedisClient::EvalArgv(scripts::ApplyChunks(), keys, args));
    gens_of_cmd.push_back(std::move(gens_here));
    keys.clear();
    args = head;
    gens_here.clear();
  };
  for (size_t g = 0; g < order.size(); ++g) {
    const GenerationId& gen = order[g].gen;
    // The deadline counts from the newest ingest time in the batch. A test clock replaces every time
    // reading, this one too ("0" = the script's now).
    int64_t ingested = 0;
    if (override_ms == 0) {
      for (size_t i : groups[g]) ingested = std::max(ingested, items[i].ingested_ms);
    }
    keys.insert(keys.end(), {keys_.BufferKey(gen), keys_.MetaKey(gen), keys_.SeenKey(gen), keys_.ControlKey(gen),
                             keys_.DeadlinesKeyOf(gen), keys_.FinalizeStreamOf(gen)});
    args.push_back(KeySchema::Member(gen));
    const size_t counts_at = args.size();
    args.insert(args.end(), {"", "", std::to_string(ingested), std::to_string(order[g].attempt)});
    std::vector<std::string> totals;
    for (size_t i : groups[g]) {
      const ChunkItem& it = items[i];
      if (it.finish) {
        totals.push_back(std::to_string(it.total));
        totals_of[g].push_back(static_cast<int>(i));
        continue;
      }
      // A compressed chunk's seq argument carries its text size ("<seq>/<bytes>") for received_bytes; a
      // plain one's is derived from its element in the script (no extra argument per chunk: apply_chunks.lua).
      args.push_back(it.compressed ? std::to_string(it.seq) + "/" + std::to_string(it.plain_bytes)
                                   : std::to_string(it.seq));
      args.push_back(BufferElement(it.seq, it.data, it.compressed));
      chunks_of[g].push_back(static_cast<int>(i));
      int64_t total = it.total > 0 ? it.total : (it.final ? it.seq + 1 : 0);
      if (total > 0) {
        totals.push_back(std::to_string(total));
        totals_of[g].push_back(-1);
      }
    }
    args[counts_at] = std::to_string(chunks_of[g].size());
    args[counts_at + 1] = std::to_string(totals.size());
    args.insert(args.end(), std::make_move_iterator(totals.begin()), std::make_move_iterator(totals.end()));
    gens_here.push_back(g);
    if (keys_.cluster()) flush();
  }
  flush();
  auto replies = redis.Pipeline(cmds);
  if (!replies.ok()) return replies.status();
  ApplyResult out;
  out.applied.assign(items.size(), false);
  out.superseded.assign(items.size(), false);
  for (size_t c = 0; c < cmds.size(); ++c) {
    const RedisValue& r = (*replies)[c];
    if (r.is_error()) return TranslateRedisError(r.str);
    if (!r.is_array() || r.elements.size() != gens_of_cmd[c].size()) return Status::Internal("unexpected apply reply");
    for (size_t j = 0; j < gens_of_cmd[c].size(); ++j) {
      const size_t g = gens_of_cmd[c][j];
      const RedisValue& v = r.elements[j];
      if (!v.is_array() || v.elements.size() < 4) return Status::Internal("unexpected apply reply");
      // Every chunk is applied but the duplicates the script lists; a total only when it changed the known one.
      for (int idx : chunks_of[g]) out.applied[static_cast<size_t>(idx)] = true;
      for (const auto& d : v.elements[0].elements) {
        size_t k = static_cast<size_t>(d.integer - 1);
        if (k < chunks_of[g].size()) out.applied[static_cast<size_t>(chunks_of[g][k])] = false;
      }
      for (const auto& t : v.elements[1].elements) {
        size_t k = static_cast<size_t>(t.integer - 1);
        if (k < totals_of[g].size() && totals_of[g][k] >= 0) out.applied[static_cast<size_t>(totals_of[g][k])] = true;
      }
      out.finalize_queued += v.elements[3].integer;
      out.max_llen = std::max<int64_t>(out.max_llen, v.elements[2].integer);
      out.llens.emplace_back(order[g].gen, v.elements[2].integer);
      if (v.elements.size() > 4 && v.elements[4].integer == 1) {
        for (size_t i : groups[g]) out.superseded[i] = true;
      }
    }
  }
  // A finish item that only repeats a known total reports 0; that is the duplicate case too.
  return out;
}

StatusOr<BufferSnapshot> ChunkBuffer::Snapshot(RedisCommands& redis, const GenerationId& gen) {
  auto r = Snapshots(redis, {gen});
  if (!r.ok()) return r.status();
  return std::move(r->at(0));
}

StatusOr<std::vector<BufferSnapshot>> ChunkBuffer::Snapshots(RedisCommands& redis, const std::vector<GenerationId>& gens) {
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(gens.size() * 3);
  for (const auto& gen : gens) {
    cmds.push_back({"LRANGE", keys_.BufferKey(gen), "0", "-1"});
    cmds.push_back({"HGETALL", keys_.MetaKey(gen)});
    cmds.push_back({"HGETALL", keys_.ControlKey(gen)});
  }
  auto r = redis.Pipeline(cmds);
  if (!r.ok()) return r.status();
  for (const auto& v : *r) {
    if (v.is_error()) return TranslateRedisError(v.str);
  }
  std::vector<BufferSnapshot> out(gens.size());
  for (size_t i = 0; i < gens.size(); ++i) {
    BufferSnapshot& s = out[i];
    for (auto& e : (*r)[3 * i].elements) s.elements.push_back(std::move(e.str));
    for (auto& [k, v] : ParsePairs((*r)[3 * i + 1])) s.meta[k] = v.str;
    for (auto& [k, v] : ParsePairs((*r)[3 * i + 2])) s.control[k] = v.str;
    s.exists = !s.elements.empty() || !s.meta.empty();
  }
  return out;
}

std::vector<std::string> ChunkBuffer::MarkCompactedCommand(RedisCommands& redis, const GenerationId& gen,
                                                           int64_t received_chunks, const std::string& finalize_id,
                                                           uint32_t attempt, bool keep_buffer) {
  redis.Register(scripts::MarkCompacted());
  int64_t grace = config_.delete_after_compact && !keep_buffer ? config_.delete_grace_s : 0;
  return RedisClient::EvalArgv(scripts::MarkCompacted(),
                               {keys_.ControlKey(gen), keys_.BufferKey(gen), keys_.MetaKey(gen), keys_.SeenKey(gen)},
                               {std::to_string(received_chunks), std::to_string(grace), finalize_id,
                                std::to_string(attempt), std::to_string(config_.chunk_ttl_s)});
}

StatusOr<int64_t> ChunkBuffer::SweepDeadlines(RedisCommands& redis, int limit) {
  int64_t queued = 0;
  for (int shard = 0; shard < keys_.control_shards(); ++shard) {
    // A shard's deadlines belong to generations of its own chunk stream (cluster mode); the single deadline
    // set of standard mode to those of every chunk stream.
    std::vector<std::string> streams;
    for (int i = 0; i < keys_.chunk_streams(); ++i) {
      if (!keys_.cluster() || i == shard) streams.push_back(keys_.ChunkStream(i));
    }
    auto wm = ConsumedWatermarkMs(redis, streams, keys_.CompactorGroup());
    if (!wm.ok()) return wm.status();
    auto r = redis.Eval(scripts::SweepDeadlines(), {keys_.DeadlinesKey(shard), keys_.FinalizeStream(shard)},
                        {std::to_string(clock_.NowMsOverride()), std::to_string(limit), std::to_string(*wm)});
    if (!r.ok()) return r.status();
    queued += r->integer;
  }
  return queued;
}

Status ChunkBuffer::QueueFinalize(RedisCommands& redis, const GenerationId& gen, const std::string& reason) {
  auto r = redis.Pipeline({{"ZREM", keys_.DeadlinesKeyOf(gen), KeySchema::Member(gen)},
                           {"XADD", keys_.FinalizeStreamOf(gen), "*", "m", KeySchema::Member(gen), "r", reason}});
  if (!r.ok()) return r.status();
  for (const auto& v : *r) {
    if (v.is_error()) return TranslateRedisError(v.str);
  }
  return Status::Ok();
}

}  // namespace streamfleet
