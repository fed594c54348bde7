#include "streamfleet/operations/fleet_admin.h"

#include <algorithm>
#include <functional>

#include "streamfleet/chunks/assembly.h"
#include "streamfleet/chunks/buffer_element.h"
#include "streamfleet/chunks/chunk_wire_format.h"
#include "streamfleet/chunks/live_buffers.h"
#include "streamfleet/base/time.h"
#include "streamfleet/redis/redis_scan.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/v1/task.pb.h"

namespace streamfleet {

StatusOr<std::vector<std::string>> ScanKeys(RedisClient& redis, const std::string& pattern) {
  std::vector<std::string> keys;
  Status s = ScanAll(redis, pattern, 100, [&keys](const std::vector<std::string>& batch) {
    keys.insert(keys.end(), batch.begin(), batch.end());
    return true;
  });
  if (!s.ok()) return s;
  // SCAN may return a key twice (a rehash during the scan): callers list each once.
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

std::vector<std::string> QueueNames(const Config& config) {
  std::vector<std::string> names;
  for (const auto& [q, w] : config.queues) names.push_back(q);
  return names;
}

std::vector<std::string> FleetStreams(const Config& config) {
  KeySchema keys = KeySchema::FromConfig(config);
  TaskKeys tkeys = TaskKeys::FromConfig(config);
  std::vector<std::string> names;
  for (int i = 0; i < keys.chunk_streams(); ++i) names.push_back(keys.ChunkStream(i));
  for (int i = 0; i < keys.control_shards(); ++i) names.push_back(keys.FinalizeStream(i));
  names.push_back(keys.EventsStream());
  for (const auto& s : DeadLetterStreams(config)) names.push_back(s);
  for (const auto& s : tkeys.QueueStreams(QueueNames(config))) names.push_back(s);
  return names;
}

std::vector<ConsumedStream> ConsumedStreams(const Config& config) {
  KeySchema keys = KeySchema::FromConfig(config);
  std::vector<ConsumedStream> out;
  for (int i = 0; i < keys.chunk_streams(); ++i) {
    out.push_back({keys.ChunkStream(i), keys.CompactorGroup(), "streamfleet-compactor"});
  }
  for (int i = 0; i < keys.control_shards(); ++i) {
    out.push_back({keys.FinalizeStream(i), keys.CompactorGroup(), "streamfleet-compactor"});
  }
  // The queue-worker reads the events stream only when EVENTS_WEBHOOK_URL is set.
  if (!config.events_webhook_url.empty()) {
    out.push_back({keys.EventsStream(), KeySchema::EventsGroup(), "streamfleet-queue-worker"});
  }
  for (const auto& s : TaskKeys::FromConfig(config).QueueStreams(QueueNames(config))) {
    out.push_back({s, TaskKeys::Group(), "streamfleet-queue-worker"});
  }
  return out;
}

std::vector<std::string> DeadLetterStreams(const Config& config) {
  std::vector<std::string> out = {KeySchema::FromConfig(config).ChunkDeadLetterStream()};
  for (const auto& s : TaskKeys::FromConfig(config).AllDeadLetters(QueueNames(config))) out.push_back(s);
  return out;
}

StatusOr<std::vector<DeadLetterEntry>> ListDeadLetters(RedisClient& redis, const Config& config, int limit) {
  std::vector<DeadLetterEntry> out;
  for (const auto& s : DeadLetterStreams(config)) {
    auto r = redis.Command({"XRANGE", s, "-", "+", "COUNT", std::to_string(limit)});
    if (!r.ok()) return r.status();
    for (auto& e : ParseEntries(s, *r)) out.push_back({s, std::move(e)});
  }
  return out;
}

StatusOr<std::optional<DeadLetterEntry>> GetDeadLetter(RedisClient& redis, const Config& config, const std::string& id) {
  for (const auto& s : DeadLetterStreams(config)) {
    auto r = redis.Command({"XRANGE", s, id, id});
    if (!r.ok()) return r.status();
    auto entries = ParseEntries(s, *r);
    if (!entries.empty()) return std::optional<DeadLetterEntry>(DeadLetterEntry{s, std::move(entries[0])});
  }
  return std::optional<DeadLetterEntry>();
}

namespace {

// Dead letters are read this many at a time: a stream may hold up to its MAXLEN (about a million after a bad
// rollout), and one XRANGE of all of it stalls Redis for every process and loads it all into this one.
constexpr int kDeadLetterPage = 500;

// Calls `each` with the entries of `stream` from `from` to `to` (XRANGE bounds), a page at a time, in order;
// stops at the first error. A page's entries may be deleted by `each`: the next page starts after its last.
Status ForEachDeadLetterPage(RedisClient& redis, const std::string& stream, std::string from, const std::string& to,
                             const std::function<Status(const std::vector<StreamEntry>&)>& each) {
  while (true) {
    auto page = redis.Command({"XRANGE", stream, from, to, "COUNT", std::to_string(kDeadLetterPage)});
    if (!page.ok()) return page.status();
    auto entries = ParseEntries(stream, *page);
    if (entries.empty()) return Status::Ok();
    SF_RETURN_IF_ERROR(each(entries));
    if (static_cast<int>(entries.size()) < kDeadLetterPage || entries.back().id == to) return Status::Ok();
    from = "(" + entries.back().id;
  }
}

bool Selected(const StreamEntry& e, const DeadLetterFilter& f) {
  if (f.older_than_ms > 0 && StreamIdMs(e.id) > f.now_ms - f.older_than_ms) return false;
  if (!f.source_stream.empty()) {
    const std::string* src = e.Field("source_stream");
    if (src == nullptr || *src != f.source_stream) return false;
  }
  if (!f.task_type.empty()) {
    const std::string* env = e.Field("e");
    v1::TaskEnvelope t;
    if (env == nullptr || !t.ParseFromString(*env) || t.type() != f.task_type) return false;
  }
  return true;
}

}  // namespace

namespace {

// The fields of a dead letter that go back to its source stream: every chunk envelope or envelope batch of a
// chunk entry (fields "e", "b"; a request's chunks), the envelope of a task ("e"), or a finalize request
// ("m" member, "r" trigger, "at"), in order. Empty: nothing this build knows how to put back.
std::vector<std::string> RequeuedFields(const StreamEntry& e, bool finalize_source) {
  std::vector<std::string> out;
  for (const auto& [k, v] : e.fields) {
    const bool keep = finalize_source ? (k == "m" || k == "r" || k == "at" || k == "q") : IsChunkEnvelopeField(k);
    if (!keep) continue;
    out.push_back(k);
    out.push_back(v);
  }
  if (finalize_source && e.Field("m") == nullptr) out.clear();
  // A finalization goes back under a new id; "q" keeps the id it was first queued under, which tells the
  // finalizer whether the generation was started over since (Finalizer: an earlier attempt's is superseded).
  const std::string* source_id = e.Field("source_id");
  if (!out.empty() && finalize_source && e.Field("q") == nullptr && source_id != nullptr) {
    out.push_back("q");
    out.push_back(*source_id);
  }
  return out;
}

// KEYS: 1 dead-letter stream, 2 source stream. ARGV: 1 dead letter id, then the fields to add. The move is one
// step: the entry goes back only while the dead letter is still there, so two requeues running at once (two
// operators, an admin UI click during a CLI run) put it back once. The add comes before the delete: under
// maxmemory Redis refuses the XADD, and a script is not rolled back, so a delete first would lose the entry.
const LuaScript& MoveDeadLetterScript() {
  static const LuaScript s(R"(
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
)");
  return s;
}

// Puts one dead letter back: true when this call moved it. On a Redis Cluster the two streams are in
// different slots, so no script can hold both: added back first, then deleted, so an error loses nothing (two
// requeues of one dead letter running at that very moment can both add it there).
StatusOr<bool> MoveDeadLetter(RedisClient& redis, const Config& config, const std::string& dlq, const StreamEntry& e,
                              const std::string& source, const std::vector<std::string>& fields) {
  if (!config.redis.cluster) {
    std::vector<std::string> args = {e.id};
    args.insert(args.end(), fields.begin(), fields.end());
    auto r = redis.Eval(MoveDeadLetterScript(), {dlq, source}, args);
    if (!r.ok()) return r.status();
    return r->integer == 1;
  }
  std::vector<std::string> add = {"XADD", source, "*"};
  add.insert(add.end(), fields.begin(), fields.end());
  auto added = redis.Command(add);
  if (!added.ok()) return added.status();
  auto del = redis.Command({"XDEL", dlq, e.id});
  if (!del.ok()) return del.status();
  return true;
}

// KEYS: 1 a task's status record. ARGV: 1 now ms, 2 record TTL s. A requeued dead task waits again: its record
// said "dead" until the task ran, so `tasks show` reported it dead and a cancel was refused ("task is dead").
const LuaScript& RequeuedRecordScript() {
  static const LuaScript s(R"(
if redis.call('HGET', KEYS[1], 'state') ~= 'dead' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'pending', 'requeued_at_ms', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
)");
  return s;
}

// The record of the task a requeued dead letter holds, if it is one (its envelope, "e", from a task queue).
void MarkRequeuedTask(RedisClient& redis, const Config& config, const TaskKeys& tkeys, const StreamEntry& e) {
  const std::string* env = e.Field("e");
  v1::TaskEnvelope t;
  if (config.task_result_ttl_s <= 0 || env == nullptr || !t.ParseFromString(*env) || t.id().empty()) return;
  // Best effort: the task is back in its queue whatever this says, and a worker's records follow it.
  (void)redis.Eval(RequeuedRecordScript(), {tkeys.Status(t.id())},
                   {std::to_string(WallClockMs()), std::to_string(config.task_result_ttl_s)});
}

// The one dead-letter stream holding entry `id`. An entry id is unique within one stream only: the chunk and
// task dead-letter streams (or two queue shards') can each hold `<ms>-0` of the same millisecond, and acting on
// every one of them requeued or deleted unrelated entries: InvalidArgument then, nothing `what`.
StatusOr<std::string> StreamHoldingDeadLetter(RedisClient& redis, const Config& config, const std::string& id,
                                              const std::string& what) {
  std::vector<std::string> holding;
  for (const auto& s : DeadLetterStreams(config)) {
    auto r = redis.Command({"XRANGE", s, id, id, "COUNT", "1"});
    if (!r.ok()) return r.status();
    if (!r->elements.empty()) holding.push_back(s);
  }
  if (holding.empty()) return Status::NotFound("no dead letter " + id);
  if (holding.size() > 1) {
    std::string where;
    for (const auto& s : holding) where += (where.empty() ? "" : ", ") + s;
    return Status::InvalidArgument("dead letter id " + id + " is in several dead-letter streams (" + where +
                                   "): nothing " + what);
  }
  return holding[0];
}

}  // namespace

StatusOr<int64_t> RequeueDeadLetters(RedisClient& redis, const Config& config, const std::string& id,
                                     const RequeueProgress& progress, const DeadLetterFilter& filter) {
  const KeySchema keys = KeySchema::FromConfig(config);
  const TaskKeys tkeys = TaskKeys::FromConfig(config);
  std::vector<std::string> streams = DeadLetterStreams(config);
  if (!id.empty()) {
    auto holding = StreamHoldingDeadLetter(redis, config, id, "requeued; requeue with --all and a filter (--stream SOURCE, --type) instead");
    if (!holding.ok()) return holding.status();
    streams = {*holding};
  }
  int64_t n = 0;
  for (const auto& s : streams) {
    // One entry: XRANGE id id. All: the stream as it is now, a page at a time, up to its last entry now (a
    // requeued task that fails again comes back after it, and is not requeued a second time by this run).
    std::string last = id;
    int64_t total = 1;
    if (id.empty()) {
      auto tail = redis.Command({"XREVRANGE", s, "+", "-", "COUNT", "1"});
      if (!tail.ok()) return tail.status();
      auto newest = ParseEntries(s, *tail);
      if (newest.empty()) continue;
      last = newest[0].id;
      auto len = redis.Command({"XLEN", s});
      if (!len.ok()) return len.status();
      total = len->integer;
    }
    int64_t done = 0;
    auto requeue = [&](const std::vector<StreamEntry>& entries) -> Status {
      for (const auto& e : entries) {
        if (progress) progress(s, ++done, std::max(total, done));
        const std::string* src = e.Field("source_stream");
        if (src == nullptr) continue;
        // A finalize request dead-lettered after MAX_DELIVERIES (a database that refused the row) goes back to
        // its finalize stream: its generation's idle deadline is gone, so nothing else would finalize it.
        std::vector<std::string> fields = RequeuedFields(e, keys.IsFinalizeStream(*src));
        if (fields.empty()) continue;
        if (id.empty() && !filter.empty() && !Selected(e, filter)) continue;
        auto moved = MoveDeadLetter(redis, config, s, e, *src, fields);
        if (!moved.ok()) return moved.status();
        if (!*moved) continue;
        ++n;
        if (!tkeys.QueueOf(*src).empty()) MarkRequeuedTask(redis, config, tkeys, e);
      }
      return Status::Ok();
    };
    SF_RETURN_IF_ERROR(ForEachDeadLetterPage(redis, s, id.empty() ? "-" : id, last, requeue));
  }
  if (!id.empty() && n == 0) return Status::NotFound("no dead letter " + id + " (or it has no source)");
  return n;
}

StatusOr<int64_t> DeleteDeadLetter(RedisClient& redis, const Config& config, const std::string& id) {
  auto holding = StreamHoldingDeadLetter(redis, config, id, "deleted; purge them with a filter (--stream, --type)");
  if (!holding.ok()) return holding.status();
  auto r = redis.Command({"XDEL", *holding, id});
  if (!r.ok()) return r.status();
  return r->integer;
}


StatusOr<int64_t> PurgeDeadLetters(RedisClient& redis, const Config& config, const DeadLetterFilter& filter,
                                   bool dry_run) {
  int64_t n = 0;
  for (const auto& s : DeadLetterStreams(config)) {
    if (filter.empty()) {
      auto len = redis.Command({"XLEN", s});
      if (!len.ok()) return len.status();
      n += len->integer;
      // UNLINK: a stream of a million dead letters is freed in the background, not while Redis waits.
      if (!dry_run) SF_RETURN_IF_ERROR(redis.Command({"UNLINK", s}).status());
      continue;
    }
    // Filtered: walk the stream in pages and XDEL what matches.
    auto purge = [&](const std::vector<StreamEntry>& entries) -> Status {
      std::vector<std::string> del = {"XDEL", s};
      for (const auto& e : entries) {
        if (Selected(e, filter)) del.push_back(e.id);
      }
      n += static_cast<int64_t>(del.size() - 2);
      if (!dry_run && del.size() > 2) return redis.Command(del).status();
      return Status::Ok();
    };
    SF_RETURN_IF_ERROR(ForEachDeadLetterPage(redis, s, "-", "+", purge));
  }
  return n;
}

Status SetQueuePaused(RedisClient& redis, const TaskKeys& keys, const std::string& queue, bool paused) {
  if (!ValidQueueName(queue)) return Status::InvalidArgument("invalid queue name");
  if (!keys.cluster()) return redis.Command({paused ? "SADD" : "SREM", keys.Paused(), queue}).status();
  // Cluster mode: the flag of every shard is what the workers' scripts read (a script may only touch its
  // shard's slot); the set stays the list operators see. Flags first, then the set: the
  // two disagree only between these two round trips.
  std::vector<std::vector<std::string>> cmds;
  for (const auto& stream : keys.QueueShards(queue)) {
    cmds.push_back(paused ? std::vector<std::string>{"SET", keys.PausedFlagOf(stream), "1"}
                          : std::vector<std::string>{"DEL", keys.PausedFlagOf(stream)});
  }
  auto flags = redis.Pipeline(cmds);
  if (!flags.ok()) return flags.status();
  for (const RedisValue& v : *flags) {
    if (v.is_error()) return TranslateRedisError(v.str);
  }
  return redis.Command({paused ? "SADD" : "SREM", keys.Paused(), queue}).status();
}

StatusOr<std::vector<std::string>> PausedQueues(RedisClient& redis, const TaskKeys& keys) {
  auto r = redis.Command({"SMEMBERS", keys.Paused()});
  if (!r.ok()) return r.status();
  std::vector<std::string> out;
  for (const auto& e : r->elements) out.push_back(e.str);
  std::sort(out.begin(), out.end());
  return out;
}

StatusOr<std::vector<ScheduledTask>> ListScheduled(RedisClient& redis, const TaskKeys& keys, int limit,
                                                   const std::vector<std::string>& queues) {
  // The first `limit` of each zset (one in standard mode, one per shard in cluster mode), merged.
  std::vector<std::vector<std::string>> cmds;
  for (const auto& zset : keys.AllScheduled(queues)) {
    cmds.push_back({"ZRANGE", zset, "0", std::to_string(limit - 1), "WITHSCORES"});
  }
  auto replies = redis.Pipeline(cmds);
  if (!replies.ok()) return replies.status();
  std::vector<ScheduledTask> out;
  for (const RedisValue& z : *replies) {
    if (z.is_error()) return TranslateRedisError(z.str);
    for (size_t i = 0; i + 1 < z.elements.size(); i += 2) {
      const std::string& m = z.elements[i].str;  // "queue|envelope"
      ScheduledTask t;
      size_t bar = m.find('|');
      if (bar == std::string::npos || !t.task.ParseFromString(m.substr(bar + 1))) continue;
      t.run_at_ms = z.elements[i + 1].AsInt();
      out.push_back(std::move(t));
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const ScheduledTask& a, const ScheduledTask& b) { return a.run_at_ms < b.run_at_ms; });
  if (out.size() > static_cast<size_t>(std::max(0, limit))) out.resize(static_cast<size_t>(std::max(0, limit)));
  return out;
}

StatusOr<std::map<std::string, std::string>> TaskStatus(RedisClient& redis, const TaskKeys& keys,
                                                        const std::string& id) {
  auto r = redis.Command({"HGETALL", keys.Status(id)});
  if (!r.ok()) return r.status();
  std::map<std::string, std::string> out;
  for (auto& [f, v] : ParsePairs(*r)) out[f] = v.str;
  return out;
}

StatusOr<std::vector<BufferKeyInfo>> InspectGenerationBuffer(RedisClient& redis, const KeySchema& keys, int64_t org,
                                                             int64_t gen, int64_t scenario, bool with_elements) {
  auto found = ScanKeys(redis, keys.BufferScanPattern(org, gen));
  if (!found.ok()) return found.status();
  std::sort(found->begin(), found->end());
  std::vector<BufferKeyInfo> out;
  for (const auto& k : *found) {
    if (scenario > 0 && k.find(":scenario:" + std::to_string(scenario) + ":") == std::string::npos) continue;
    auto r = redis.Pipeline({{"TYPE", k}, {"TTL", k}});
    if (!r.ok()) return r.status();
    BufferKeyInfo info;
    info.key = k;
    info.type = (*r)[0].str;
    info.ttl = (*r)[1].integer;
    if (info.type == "list" && !with_elements) {
      auto n = redis.Command({"LLEN", k});
      if (!n.ok()) return n.status();
      info.llen = n->integer;
    } else if (info.type == "list") {
      info.elements_read = true;
      auto n = redis.Command({"LRANGE", k, "0", "-1"});
      if (!n.ok()) return n.status();
      std::vector<std::string> elements;
      for (auto& e : n->elements) {
        BufferElementView v;
        if (ParseBufferElement(e.str, &v)) {
          info.compressed_elements += v.compressed ? 1 : 0;
          info.stored_bytes += static_cast<int64_t>(v.stored.size());
        }
        elements.push_back(std::move(e.str));
      }
      info.llen = static_cast<int64_t>(elements.size());
      info.text = Assemble(elements, {}, 0).text;
    } else if (info.type == "hash") {
      auto h = redis.Command({"HGETALL", k});
      if (!h.ok()) return h.status();
      for (auto& [f, v] : ParsePairs(*h)) info.hash[f] = v.str;
    }
    out.push_back(std::move(info));
  }
  return out;
}

StatusOr<BufferSummary> SummarizeBuffers(RedisClient& redis, const KeySchema& keys, int64_t threshold, bool with_meta,
                                         size_t max_buffers) {
  BufferSummary s;
  Status walked = ForEachLiveBuffer(redis, keys, 500, [&](const std::vector<LiveBufferLength>& page) {
    for (const auto& b : page) {
      ++s.count;
      s.total_chunks += b.llen;
      s.max_llen = std::max(s.max_llen, b.llen);
      if (b.llen > threshold) s.over_threshold.push_back({b.key, b.llen, {}});
      if (with_meta) s.buffers.push_back({b.key, b.llen, {}});
    }
    return true;
  });
  if (!walked.ok()) return walked;
  // ZSCAN order is the set's hash order: the first by key are listed (the same ones from view to view).
  auto by_key = [](const LiveBuffer& x, const LiveBuffer& y) { return x.key < y.key; };
  std::sort(s.over_threshold.begin(), s.over_threshold.end(), by_key);
  std::sort(s.buffers.begin(), s.buffers.end(), by_key);
  if (s.buffers.size() > max_buffers) s.buffers.resize(max_buffers);
  if (s.buffers.empty()) return s;
  std::vector<std::vector<std::string>> metas;
  metas.reserve(s.buffers.size());
  for (const auto& b : s.buffers) metas.push_back({"HGETALL", b.key + ":meta"});
  auto m = redis.Pipeline(metas);
  if (!m.ok()) return m.status();
  for (size_t i = 0; i < s.buffers.size() && i < m->size(); ++i) {
    if (!(*m)[i].is_array()) continue;
    for (auto& [f, v] : ParsePairs((*m)[i])) s.buffers[i].meta[f] = v.str;
  }
  return s;
}

}  // namespace streamfleet
