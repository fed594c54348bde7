#include "admin/admin_api.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <regex>

#include "admin/security_headers.h"
#include "streamfleet/artifacts/artifact.h"
#include "streamfleet/base/compression.h"
#include "streamfleet/base/text.h"
#include "streamfleet/chunks/chunk_buffer.h"
#include "streamfleet/base/time.h"
#include "streamfleet/base/hash_fields.h"
#include "streamfleet/base/json_input.h"
#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/operations/manual_compaction.h"
#include "streamfleet/operations/operator_json.h"
#include "streamfleet/operations/operator_task.h"
#include "streamfleet/operations/task_lists.h"
#include "streamfleet/observability/redis_info_metrics.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/taskqueue/task_control.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "streamfleet/v1/chunk.pb.h"

namespace streamfleet::admin {
namespace {

using json = nlohmann::json;

// A refused request: HTTP status, machine-readable error, human detail.
struct ApiError {
  int status;
  std::string error, detail;
};

// A refusal whose answer carries more than error and detail (a cancel that came too late names the state).
struct ApiRefusal {
  int status;
  json body;
};

// A failed operation as an answer: kNotFound is the operations' "no such id" (a dead letter, a buffer to
// compact), said as it is; anything else is Redis (or the database) refusing or failing.
void Must(const Status& s) {
  if (s.ok()) return;
  if (s.code() == StatusCode::kNotFound) throw ApiError{404, "not_found", s.message()};
  if (s.code() == StatusCode::kFailedPrecondition) throw ApiError{409, "conflict", s.message()};
  throw ApiError{s.code() == StatusCode::kInvalidArgument ? 400 : 502, "redis", s.ToString()};
}
template <typename T>
T Must(StatusOr<T> v) {
  Must(v.status());
  return std::move(v).value();
}


// A task id or type as the task API takes them: 1 to 200 visible ASCII characters (an id without '/').
bool ValidToken(const std::string& s, bool slash_ok) {
  if (s.empty() || s.size() > 200) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return c > 0x20 && c < 0x7f && (slash_ok || c != '/'); });
}

std::string Str(const json& body, const char* field) {
  if (!body.contains(field) || !body[field].is_string() || body[field].get<std::string>().empty()) {
    throw ApiError{400, "invalid_request", std::string("\"") + field + "\" (a non-empty string) is required"};
  }
  return body[field].get<std::string>();
}
int64_t Int(const json& body, const char* field, int64_t fallback = -1) {
  if (!body.contains(field) || body[field].is_null()) {
    if (fallback >= 0) return fallback;
    throw ApiError{400, "invalid_request", std::string("\"") + field + "\" (an integer) is required"};
  }
  if (body[field].is_number_integer()) return body[field].get<int64_t>();
  if (body[field].is_string()) {
    // The whole string, or it is not an integer ("12abc" is not 12).
    const std::string& text = body[field].get_ref<const std::string&>();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) return v;
  }
  throw ApiError{400, "invalid_request", std::string("\"") + field + "\" must be an integer"};
}

// An optional boolean field: absent or null is `fallback`; anything but true/false is a 400 (json's value()
// threw a type error, answered 500 without the security headers).
bool Bool(const json& body, const char* field, bool fallback = false) {
  if (!body.contains(field) || body[field].is_null()) return fallback;
  if (!body[field].is_boolean()) {
    throw ApiError{400, "invalid_request", std::string("\"") + field + "\" must be true or false"};
  }
  return body[field].get<bool>();
}

// The longest delay an operator may give a task it enqueues.
constexpr int64_t kMaxDelaySeconds = int64_t{10} * 365 * 24 * 3600;

// A row's metadata as JSON for the UI, or as its raw text when it does not parse (within the limits).
json MetadataJson(const std::string& text) {
  auto j = ParseJsonInput(text, kGeneratedJsonLimits);
  return j.ok() ? std::move(*j) : json(text);
}

json TaskJson(const v1::TaskEnvelope& t) {
  return {{"id", t.id()},         {"type", t.type()},
          {"queue", t.queue()},   {"attempt", t.attempt()},
          {"payload", t.payload()}, {"enqueued_at_ms", t.enqueued_at_ms()},
          {"run_at_ms", t.run_at_ms()}, {"errors", std::vector<std::string>(t.errors().begin(), t.errors().end())}};
}

// A dead letter with its envelope decoded (task or chunk, by the stream it came from).
// max_plain_bytes: a compressed chunk larger than this (INGEST_MAX_CHUNK_BYTES) is not decompressed for its
// preview: a listing decodes up to 500 dead letters, and each could claim 16 MiB.
json DecodedDeadLetterJson(const DeadLetterEntry& d, bool task_dlq, int64_t max_plain_bytes) {
  json j = DeadLetterJson(d);
  j["kind"] = task_dlq ? "task" : "chunk";
  const std::string* e = d.entry.Field("e");
  if (task_dlq) {
    v1::TaskEnvelope t;
    if (e != nullptr && t.ParseFromString(*e)) j["task"] = TaskJson(t);
    return j;
  }
  // The entry's first chunk: its first field "e", or the first envelope of its ChunkBatch (field "b"), whose
  // seq is the batch's first_seq.
  std::string_view first;
  int64_t batch_seq = -1;
  std::vector<std::string_view> batch;
  if (e != nullptr) {
    first = *e;
  } else if (const std::string* b = d.entry.Field("b"); b != nullptr && ScanChunkBatch(*b, &batch, &batch_seq) &&
                                                          !batch.empty()) {
    first = batch[0];
  }
  // An entry of ingest holds one request's chunks: the first is shown, and how many the entry holds.
  j["chunks_in_entry"] = ChunkEnvelopeCount(d.entry);
  if (e == nullptr && first.empty()) return j;
  v1::ChunkEnvelope c;
  if (c.ParseFromArray(first.data(), static_cast<int>(first.size()))) {
    if (batch_seq >= 0) c.set_seq(batch_seq);
    // A compressed chunk is shown as its text (a dead letter may be one whose frame is corrupt: then the
    // preview says so).
    std::string text = c.data();
    if (c.data_encoding() == v1::ChunkEnvelope::DATA_ZSTD) {
      // Bounded: a dead letter's data_size is whatever its producer claimed, and no chunk ingest accepts is
      // larger than INGEST_MAX_CHUNK_BYTES.
      auto plain = ZstdDecompress(c.data(), static_cast<size_t>(std::clamp<int64_t>(c.data_size(), 0, max_plain_bytes)));
      text = plain.ok() ? std::move(*plain) : "(compressed data that does not decompress: " + plain.status().message() + ")";
    }
    j["chunk"] = {{"organization_id", c.organization_id()}, {"scenario_id", c.scenario_id()},
                  {"generation_id", c.generation_id()},     {"seq", c.seq()},
                  {"final", c.final()},                     {"total_chunks", c.total_chunks()},
                  {"bytes", text.size()},                   {"compressed", c.data_encoding() == v1::ChunkEnvelope::DATA_ZSTD},
                  {"data_preview", ToValidUtf8(text.substr(0, 200))}};
  }
  return j;
}

// org/scenario/generation ids from a buffer key (either key form, either schema mode).
json IdsFromKey(const std::string& key) {
  static const std::regex re(":org:([0-9]+)(:scenario:([0-9]+))?:generation:([0-9]+)");
  std::smatch m;
  if (!std::regex_search(key, m, re)) return json::object();
  return {{"organization_id", std::stoll(m[1])},
          {"scenario_id", m[3].matched ? std::stoll(m[3]) : 0},
          {"generation_id", std::stoll(m[4])}};
}

}  // namespace

void AdminApi::Handle(HttpExchange& ex, const std::string& route) {
  try {
    auto lease = redis_.Acquire();
    if (!lease.ok()) throw ApiError{503, "redis_unavailable", lease.status().ToString()};
    RedisClient& r = **lease;
    json out;
    if (ex.method() == "POST") {
      auto body = ex.ReadBody(1 << 20);
      if (!body.ok()) throw ApiError{413, "body_too_large", body.status().message()};
      auto parsed = body->empty() ? StatusOr<json>(json::object()) : ParseJsonInput(*body);
      if (!parsed.ok()) throw ApiError{400, "invalid_json", "the body must be a JSON object: " + parsed.status().message()};
      json j = std::move(*parsed);
      if (!j.is_object()) throw ApiError{400, "invalid_json", "the body must be a JSON object"};
      out = Action(r, route, j);
    } else if (ex.method() != "GET") {
      throw ApiError{405, "method_not_allowed", ex.method()};
    } else if (route == "overview") {
      out = Overview(r);
    } else if (route == "streams") {
      out = Streams(r);
    } else if (route == "streams/pending") {
      out = Pending(r, ex.QueryParam("stream").value_or(""), ex.QueryParam("group").value_or(""));
    } else if (route == "queues") {
      out = Queues(r);
    } else if (route == "tasks") {
      out = TaskList(r, ex.QueryParam("state").value_or(""), ex.QueryParam("queue").value_or(""),
                     ex.QueryParam("type").value_or(""), ex.QueryParam("limit").value_or(""),
                     ex.QueryParam("cursor").value_or(""));
    } else if (route.rfind("tasks/", 0) == 0) {
      out = Task(r, route.substr(6));
    } else if (route == "dead-letters") {
      out = DeadLetters(r);
    } else if (route == "generations") {
      json q = {{"org", ex.QueryParam("org").value_or("")}, {"gen", ex.QueryParam("gen").value_or("")},
                {"scenario", ex.QueryParam("scenario").value_or("0")}};
      if (q["scenario"] == "") q["scenario"] = "0";
      out = Generation(r, Int(q, "org"), Int(q, "gen"), Int(q, "scenario", 0));
    } else {
      throw ApiError{404, "not_found", "no API route " + route};
    }
    ex.RespondJson(200, out.dump(-1, ' ', false, json::error_handler_t::replace), WithSecurity({}));
  } catch (const ApiError& e) {
    ex.RespondJson(e.status, JsonError(e.error, e.detail), WithSecurity({}));
  } catch (const ApiRefusal& e) {
    ex.RespondJson(e.status, e.body.dump(-1, ' ', false, json::error_handler_t::replace), WithSecurity({}));
  }
}

json AdminApi::Overview(RedisClient& r) {
  json samples = json::array();
  for (const auto& s : sampler_.Samples()) {
    samples.push_back({{"at_ms", s.at_ms},
                       {"chunks_in_per_s", s.chunks_in_per_s},
                       {"chunks_out_per_s", s.chunks_out_per_s},
                       {"tasks_in_per_s", s.tasks_in_per_s},
                       {"tasks_out_per_s", s.tasks_out_per_s},
                       {"chunk_lag", s.chunk_lag},
                       {"task_lag", s.task_lag},
                       {"oldest_pending_s", s.oldest_pending_s},
                       {"redis_rtt_ms", s.redis_rtt_ms}});
  }
  auto info = ParseInfo(Must(r.Command({"INFO"})).str);
  auto num = [&](const char* k) -> int64_t {
    auto it = info.find(k);
    return it == info.end() ? 0 : std::atoll(it->second.c_str());
  };
  int64_t hits = num("keyspace_hits"), misses = num("keyspace_misses");
  json redis = {{"used_memory", num("used_memory")},
                {"used_memory_human", info["used_memory_human"]},
                {"maxmemory", num("maxmemory")},
                {"keyspace_hits", hits},
                {"keyspace_misses", misses},
                {"hit_rate", hits + misses > 0 ? json(static_cast<double>(hits) / static_cast<double>(hits + misses)) : json(nullptr)},
                {"evicted_keys", num("evicted_keys")},
                {"connected_clients", num("connected_clients")},
                {"redis_version", info["redis_version"]}};
  KeySchema keys = KeySchema::FromConfig(config_);
  auto b = Must(SummarizeBuffers(r, keys, config_.llen_alert_threshold, /*with_meta=*/true));
  // Live means still receiving (SummarizeBuffers lists no buffer queued for finalization or compacted, which
  // stays in Redis until its TTL); the state shown is the control hash's, as /progress reports it.
  std::vector<std::vector<std::string>> states;
  std::vector<json> ids;
  for (const auto& buf : b.buffers) {
    ids.push_back(IdsFromKey(buf.key));
    const json& id = ids.back();
    GenerationId gid{id.value("organization_id", int64_t{0}), 0, id.value("generation_id", int64_t{0})};
    states.push_back({"HGET", keys.ControlKey(gid), "state"});
  }
  auto state = Must(r.Pipeline(states));
  json live = json::array(), over = json::array();
  for (size_t i = 0; i < b.buffers.size(); ++i) {
    const LiveBuffer& buf = b.buffers[i];
    json g = std::move(ids[i]);
    g["key"] = buf.key;
    g["llen"] = buf.llen;
    int64_t received = IntField(buf.meta, "received_chunks"), total = IntField(buf.meta, "total_chunks");
    g["received_chunks"] = received;
    g["total_chunks"] = total > 0 ? json(total) : json(nullptr);
    g["percent"] = total > 0 ? json(std::min<int64_t>(100, received * 100 / total)) : json(nullptr);
    g["received_bytes"] = IntField(buf.meta, "received_bytes");
    g["last_chunk_at"] = buf.meta.count("last_chunk_at") ? json(buf.meta.at("last_chunk_at")) : json(nullptr);
    g["state"] = state[i].str.empty() ? "receiving" : state[i].str;
    live.push_back(g);
  }
  for (const auto& o : b.over_threshold) over.push_back({{"key", o.key}, {"llen", o.llen}});
  return {{"samples", samples},
          {"sample_interval_ms", config_.admin_sample_interval_ms},
          {"redis", redis},
          {"buffers",
           {{"count", b.count}, {"total_chunks", b.total_chunks}, {"max_llen", b.max_llen},
            {"threshold", config_.llen_alert_threshold}, {"over_threshold", over}, {"live", live}}}};
}

json AdminApi::Streams(RedisClient& r) {
  json out = json::array();
  for (const auto& s : FleetStreams(config_)) {
    auto st = Must(GetStreamStats(r, s, /*with_consumers=*/true));
    json j = StreamStatsJson(st);
    // The streams page also shows how far each group has read (claim and release act on what is behind it).
    for (size_t i = 0; i < st.groups.size(); ++i) {
      j["groups"][i]["last_delivered_id"] = st.groups[i].last_delivered_id;
    }
    out.push_back(std::move(j));
  }
  return out;
}

json AdminApi::Pending(RedisClient& r, const std::string& stream, const std::string& group) {
  auto streams = FleetStreams(config_);
  if (std::find(streams.begin(), streams.end(), stream) == streams.end() || group.empty()) {
    throw ApiError{400, "invalid_request", "stream must be one of the fleet's streams, group non-empty"};
  }
  auto p = Must(r.Command({"XPENDING", stream, group, "-", "+", "100"}));
  json out = json::array();
  for (const auto& e : p.elements) {
    if (e.elements.size() < 4) continue;
    out.push_back({{"id", e.elements[0].str}, {"consumer", e.elements[1].str},
                   {"idle_seconds", e.elements[2].integer / 1000.0}, {"times_delivered", e.elements[3].integer}});
  }
  return out;
}

json AdminApi::Queues(RedisClient& r) {
  TaskKeys tkeys = TaskKeys::FromConfig(config_);
  auto paused = Must(PausedQueues(r, tkeys));
  auto scheduled = Must(ListScheduled(r, tkeys, 1000, QueueNames(config_)));
  auto dead = Must(ListDeadLetters(r, config_, 1000));
  json queues = json::array();
  for (const auto& [q, weight] : config_.queues) {
    // One stream per queue in standard mode, its shards summed in cluster mode.
    int64_t length = 0, pending = 0, lag = 0, consumers = 0;
    for (const auto& stream : tkeys.QueueShards(q)) {
      auto st = Must(GetStreamStats(r, stream));
      length += st.length;
      for (const auto& g : st.groups) {
        if (g.name != TaskKeys::Group()) continue;
        pending += g.pending;
        lag += std::max<int64_t>(0, g.lag);
        consumers = std::max<int64_t>(consumers, g.consumers);
      }
    }
    int64_t n_scheduled = 0, n_dead = 0;
    for (const auto& s : scheduled) n_scheduled += s.task.queue() == q;
    for (const auto& d : dead) {
      const std::string* src = d.entry.Field("source_stream");
      n_dead += src != nullptr && tkeys.QueueOf(*src) == q;
    }
    queues.push_back({{"queue", q}, {"weight", weight},
                      {"paused", std::find(paused.begin(), paused.end(), q) != paused.end()},
                      {"stream_length", length}, {"waiting", lag}, {"active", pending},
                      {"consumers", consumers}, {"scheduled", n_scheduled}, {"dead", n_dead}});
  }
  json sched = json::array();
  for (const auto& s : scheduled) {
    json t = TaskJson(s.task);
    t["scheduled_for_ms"] = s.run_at_ms;
    sched.push_back(t);
    if (sched.size() >= 100) break;
  }
  return {{"queues", queues}, {"scheduled", sched}, {"scheduled_total", scheduled.size()}};
}

json AdminApi::Task(RedisClient& r, const std::string& id) {
  if (id.empty() || id.size() > 128) throw ApiError{400, "invalid_request", "task id"};
  TaskKeys tkeys = TaskKeys::FromConfig(config_);
  auto status = Must(TaskStatus(r, tkeys, id));
  // The envelope (payload, attempt, error history) is wherever the task sits now: a dead letter, the
  // scheduled set (delayed or waiting for a retry), or the recent tail of its queue.
  json envelope = nullptr;
  std::string where;
  const std::string chunk_dlq = KeySchema::FromConfig(config_).ChunkDeadLetterStream();
  for (const auto& d : Must(ListDeadLetters(r, config_, 1000))) {
    v1::TaskEnvelope t;
    const std::string* e = d.entry.Field("e");
    if (d.dlq != chunk_dlq && e != nullptr && t.ParseFromString(*e) && t.id() == id) {
      envelope = TaskJson(t);
      envelope["dead_letter_id"] = d.entry.id;
      where = "dead letters";
    }
  }
  if (envelope.is_null()) {
    for (const auto& s : Must(ListScheduled(r, tkeys, 1000, QueueNames(config_)))) {
      if (s.task.id() != id) continue;
      envelope = TaskJson(s.task);
      where = "scheduled";
    }
  }
  if (envelope.is_null()) {
    for (const auto& stream : tkeys.QueueStreams(QueueNames(config_))) {
      const std::string q = tkeys.QueueOf(stream);
      auto tail = Must(r.Command({"XREVRANGE", stream, "+", "-", "COUNT", "500"}));
      for (const auto& e : ParseEntries(stream, tail)) {
        v1::TaskEnvelope t;
        const std::string* raw = e.Field("e");
        if (raw == nullptr || !t.ParseFromString(*raw) || t.id() != id) continue;
        envelope = TaskJson(t);
        envelope["entry_id"] = e.id;
        where = "queue " + q;
        break;
      }
      if (!envelope.is_null()) break;
    }
  }
  if (status.empty() && envelope.is_null()) throw ApiError{404, "not_found", "no task " + id + " (unknown or expired)"};
  return {{"id", id}, {"status", status}, {"envelope", envelope}, {"found_in", where}};
}

json AdminApi::TaskList(RedisClient& r, const std::string& state, const std::string& queue, const std::string& type,
                        const std::string& limit, const std::string& cursor) {
  TaskListQuery q;
  if (!ParseTaskListKind(state, q.kind)) {
    throw ApiError{400, "invalid_request", "state must be scheduled, retrying, running, dead or succeeded"};
  }
  if (!queue.empty() && !ValidQueueName(queue)) throw ApiError{400, "invalid_request", "invalid queue name"};
  if (!type.empty() && !ValidToken(type, true)) {
    throw ApiError{400, "invalid_request", "type must be 1 to 200 visible ASCII characters"};
  }
  if (!limit.empty()) {
    int n = 0;
    auto [end, ec] = std::from_chars(limit.data(), limit.data() + limit.size(), n);
    if (ec != std::errc() || end != limit.data() + limit.size() || n < 1 || n > 1000) {
      throw ApiError{400, "invalid_request", "limit must be an integer from 1 to 1000"};
    }
    q.limit = n;
  }
  q.queue = queue;
  q.type = type;
  q.cursor = cursor;
  auto page = ListTasks(r, config_, q, WallClockMs());
  // Its kInvalidArgument is about the query (a cursor from elsewhere), not Redis.
  if (page.status().code() == StatusCode::kInvalidArgument) {
    throw ApiError{400, "invalid_request", page.status().message()};
  }
  TaskPage p = Must(std::move(page));
  json tasks = json::array();
  for (const ListedTask& t : p.tasks) {
    tasks.push_back({{"id", t.id}, {"type", t.type}, {"queue", t.queue}, {"attempt", t.attempt}, {"at_ms", t.at_ms},
                     {"detail", t.detail}, {"entry_id", t.entry_id}});
  }
  // A cancelled task stays in the scheduled set until it is due (the worker skips it then): each waiting
  // task's record state, so the page says "cancelled" rather than offering the cancel again.
  if ((q.kind == TaskListKind::kScheduled || q.kind == TaskListKind::kRetrying) && !p.tasks.empty()) {
    TaskKeys tkeys = TaskKeys::FromConfig(config_);
    std::vector<std::vector<std::string>> cmds;
    for (const ListedTask& t : p.tasks) cmds.push_back({"HGET", tkeys.Status(t.id), "state"});
    auto states = Must(r.Pipeline(cmds));
    for (size_t i = 0; i < states.size() && i < tasks.size(); ++i) {
      tasks[i]["record_state"] = states[i].is_error() ? "" : states[i].str;
    }
  }
  return {{"state", state}, {"tasks", tasks}, {"next_cursor", p.next_cursor}};
}

json AdminApi::DeadLetters(RedisClient& r) {
  const std::string chunk_dlq = KeySchema::FromConfig(config_).ChunkDeadLetterStream();
  json out = json::array();
  for (const auto& d : Must(ListDeadLetters(r, config_, 500))) {
    out.push_back(DecodedDeadLetterJson(d, d.dlq != chunk_dlq, config_.max_chunk_bytes));
  }
  return out;
}

json AdminApi::Generation(RedisClient& r, int64_t org, int64_t gen, int64_t scenario) {
  if (org <= 0 || gen <= 0 || scenario < 0) throw ApiError{400, "invalid_request", "org and gen must be positive"};
  KeySchema keys = KeySchema::FromConfig(config_);
  json buffer = json::array();
  // Lengths only: the page shows them and refreshes every 3 s (the elements of a large buffer are a big LRANGE).
  for (const auto& k : Must(InspectGenerationBuffer(r, keys, org, gen, scenario, /*with_elements=*/false))) {
    buffer.push_back(BufferKeyJson(k));
  }
  json row = nullptr;
  std::string row_error;
  if (store_ == nullptr) {
    row_error = "no database";
  } else {
    std::lock_guard<std::mutex> lock(store_mu_);
    auto g = store_->GetGeneration(gen);
    if (!g.ok()) {
      row_error = g.status().ToString();
    } else if (*g && (*g)->organization_id == org) {  // never show another org's row
      const GenerationRow& x = **g;
      const std::optional<ArtifactRef> artifact = x.compacted ? std::nullopt : ArtifactOfMetadata(x.metadata);
      row = {{"id", x.id}, {"organization_id", x.organization_id},
             {"scenario_id", x.scenario_id ? json(*x.scenario_id) : json(nullptr)},
             {"chunk_count", x.chunk_count},
             {"compacted_at", x.compacted_at ? json(*x.compacted_at) : json(nullptr)},
             {"compacted_by", x.compacted_by ? json(*x.compacted_by) : json(nullptr)},
             {"compacted_bytes", x.compacted ? json(x.compacted->size()) : json(nullptr)},
             // Where the text is: in the row, or in ARTIFACT_STORE (docs/storage.md), with its object's URL.
             {"text_in", x.compacted ? "row" : (artifact ? "store" : "none")},
             {"artifact_url", artifact ? json(artifact->url) : json(nullptr)},
             {"metadata", MetadataJson(x.metadata)},
             {"llm_response_preview", x.llm_response ? json(x.llm_response->substr(0, 2000)) : json(nullptr)}};
    }
  }
  return {{"organization_id", org}, {"generation_id", gen}, {"scenario_id", scenario},
          {"buffer", buffer}, {"row", row}, {"row_error", row_error}};
}

json AdminApi::Action(RedisClient& r, const std::string& route, const json& body) {
  TaskKeys tkeys = TaskKeys::FromConfig(config_);
  if (route == "queues/pause" || route == "queues/resume") {
    std::string q = Str(body, "queue");
    Must(SetQueuePaused(r, tkeys, q, route == "queues/pause"));
    return {{"queue", q}, {"paused", route == "queues/pause"}};
  }
  if (route == "tasks/enqueue") {
    OperatorTask task;
    task.type = Str(body, "type");
    if (body.contains("payload") && body["payload"].is_string()) task.payload = body["payload"].get<std::string>();
    if (body.contains("queue") && body["queue"].is_string()) task.queue = body["queue"].get<std::string>();
    int64_t now = WallClockMs();
    int64_t delay_s = Int(body, "delay_seconds", 0);
    // Bounded before it is multiplied: from about 9.2e15 s on the product overflowed (undefined behaviour).
    if (delay_s < 0 || delay_s > kMaxDelaySeconds) {
      throw ApiError{400, "invalid_request",
                     "\"delay_seconds\" must be 0 to " + std::to_string(kMaxDelaySeconds) + " (10 years)"};
    }
    if (delay_s > 0) task.run_at_ms = now + delay_s * 1000;
    auto res = EnqueueOperatorTask(r, config_, task, now);
    // Its kInvalidArgument is about the request (payload, queue name), not Redis.
    if (res.status().code() == StatusCode::kInvalidArgument) {
      throw ApiError{400, "invalid_request", res.status().message()};
    }
    EnqueueResult done = Must(std::move(res));
    return {{"id", done.id}, {"duplicate", done.duplicate}, {"scheduled", done.scheduled}};
  }
  if (route == "tasks/cancel") {
    // As `streamfleetctl tasks cancel` and ingest's DELETE /v1/tasks/{id}: only a task that has not started.
    std::string id = Str(body, "id");
    if (!ValidToken(id, false)) {
      throw ApiError{400, "invalid_request", "id must be a task id: 1 to 200 visible ASCII characters without '/'"};
    }
    CancelResult res = Must(CancelTask(r, tkeys, id, config_.task_result_ttl_s, WallClockMs()));
    switch (res.outcome) {
      case CancelOutcome::kCancelled:
      case CancelOutcome::kAlreadyCancelled:
        return {{"id", id}, {"state", "cancelled"}, {"previous_state", res.state}};
      case CancelOutcome::kNotFound:
        throw ApiError{404, "not_found",
                       "no task " + id +
                           (config_.task_result_ttl_s > 0 ? std::string(" (unknown, or its record expired)")
                                                          : std::string(" (TASK_RESULT_TTL=0: tasks cannot be cancelled)"))};
      case CancelOutcome::kTooLate:
        throw ApiRefusal{409, {{"error", "too_late"},
                               {"detail", "task " + id + " is " + res.state +
                                              ": only a task that has not started can be cancelled"},
                               {"state", res.state}}};
    }
  }
  if (route == "dead-letters/requeue") {
    bool all = Bool(body, "all");
    std::string id = all ? "" : Str(body, "id");
    if (!all && !ValidStreamId(id)) throw ApiError{400, "invalid_request", "id must be a stream id"};
    return {{"requeued", Must(RequeueDeadLetters(r, config_, id))}};
  }
  if (route == "dead-letters/delete") {
    if (Bool(body, "all")) return {{"deleted", Must(PurgeDeadLetters(r, config_))}};
    std::string id = Str(body, "id");
    if (!ValidStreamId(id)) throw ApiError{400, "invalid_request", "id must be a stream id"};
    return {{"deleted", Must(DeleteDeadLetter(r, config_, id))}};
  }
  if (route == "streams/claim" || route == "streams/release") {
    std::string stream = Str(body, "stream"), group = Str(body, "group"), id = Str(body, "id");
    auto streams = FleetStreams(config_);
    if (std::find(streams.begin(), streams.end(), stream) == streams.end() || !ValidStreamId(id)) {
      throw ApiError{400, "invalid_request", "stream must be one of the fleet's streams and id a stream id"};
    }
    std::vector<std::string> cmd;
    if (route == "streams/claim") {
      // Moves the entry to another consumer now (e.g. off a stuck one); counts as a delivery.
      cmd = {"XCLAIM", stream, group, Str(body, "consumer"), "0", id};
    } else {
      // Hands the entry back to the fleet: same owner, idle time set past the visibility timeout, so the
      // next XAUTOCLAIM of any consumer takes it instead of waiting out the timeout. JUSTID: no delivery.
      auto p = Must(r.Command({"XPENDING", stream, group, id, id, "1"}));
      if (p.elements.empty() || p.elements[0].elements.size() < 2) throw ApiError{404, "not_found", "not pending: " + id};
      cmd = {"XCLAIM", stream, group, p.elements[0].elements[1].str, "0", id,
             "IDLE", std::to_string(config_.visibility_timeout_ms + 1000), "JUSTID"};
    }
    auto res = Must(r.Command(cmd));
    if (res.elements.empty()) throw ApiError{404, "not_found", "not pending: " + id};
    return {{"stream", stream}, {"group", group}, {"id", id}, {"done", route.substr(8)}};
  }
  if (route == "generations/compact") {
    if (store_ == nullptr) throw ApiError{503, "no_database", "DATABASE_URL was not reachable at startup"};
    GenerationId g{Int(body, "org"), Int(body, "scenario", 0), Int(body, "gen")};
    if (g.org <= 0 || g.gen <= 0 || g.scenario < 0) {
      throw ApiError{400, "invalid_request", "org and gen must be positive, scenario not negative"};
    }
    const bool delete_buffer = Bool(body, "delete_buffer");
    std::lock_guard<std::mutex> lock(store_mu_);
    auto done = Must(CompactGenerationNow(config_, r, *store_, g, delete_buffer,
                                                     "streamfleet-admin"));
    return ManualCompactionJson(g.gen, done);
  }
  throw ApiError{404, "not_found", "no action " + route};
}

}  // namespace streamfleet::admin
