#include "ingest/task_api.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "streamfleet/base/codec.h"
#include "streamfleet/base/json_input.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/time.h"
#include "streamfleet/chunks/generation_start.h"
#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/operations/operator_task.h"
#include "streamfleet/taskqueue/task_control.h"

namespace streamfleet::ingest {

namespace {

using nlohmann::json;

constexpr char kTasks[] = "/v1/tasks";
constexpr char kBatch[] = "/v1/tasks:batch";
constexpr int64_t kMaxDelayMs = 366LL * 24 * 3600 * 1000;  // a year: a later run_at is almost surely a unit error
constexpr int64_t kMaxUniqueForS = 30LL * 24 * 3600;

// Why a task in a request was refused: the answer's status, error code and detail.
struct Refusal {
  int status;
  std::string reason, detail;
};

// Task ids and unique keys become parts of key names: visible ASCII, bounded.
bool ValidToken(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::optional<std::string> OptString(const json& j, const char* name, std::optional<Refusal>& err) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    err = Refusal{400, "invalid_task", std::string(name) + " must be a string"};
    return std::nullopt;
  }
  return it->get<std::string>();
}

// A duration in seconds (a number) or text like "30s", "5m" (config.h ParseDurationMs).
std::optional<int64_t> DurationMs(const json& v, const char* name, std::optional<Refusal>& err) {
  if (v.is_number()) {
    double s = v.get<double>();
    if (s >= 0 && s * 1000 <= static_cast<double>(kMaxDelayMs)) return static_cast<int64_t>(s * 1000);
  } else if (v.is_string()) {
    if (auto ms = ParseDurationMs(v.get<std::string>(), 1000); ms.ok() && *ms >= 0 && *ms <= kMaxDelayMs) return *ms;
  }
  err = Refusal{400, "invalid_task",
                std::string(name) + " must be seconds (a number) or a duration like \"30s\", at most a year"};
  return std::nullopt;
}

// One task of a request body, checked the way the worker will need it.
std::optional<OperatorTask> ParseTask(const json& j, const Config& config, const std::vector<std::string>& queues,
                                      int64_t now_ms, std::optional<Refusal>& err) {
  if (!j.is_object()) {
    err = Refusal{400, "invalid_task", "a task is a JSON object"};
    return std::nullopt;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const char* known[] = {"type", "payload", "queue", "delay", "run_at", "unique_key", "unique_for"};
    if (std::none_of(std::begin(known), std::end(known), [&](const char* k) { return it.key() == k; })) {
      err = Refusal{400, "invalid_task", "unknown field \"" + it.key() + "\""};
      return std::nullopt;
    }
  }
  OperatorTask t;
  auto type = OptString(j, "type", err);
  if (err) return std::nullopt;
  if (!type || !ValidToken(*type, 200)) {
    err = Refusal{400, "invalid_task", "type is required: 1 to 200 visible ASCII characters"};
    return std::nullopt;
  }
  t.type = *type;
  if (auto p = j.find("payload"); p != j.end() && !p->is_null()) t.payload = p->dump();
  if (static_cast<int64_t>(t.payload.size()) > config.task_max_payload_bytes) {
    err = Refusal{413, "payload_too_large", "payload is " + std::to_string(t.payload.size()) + " bytes; " +
                                                "TASK_MAX_PAYLOAD_BYTES is " +
                                                std::to_string(config.task_max_payload_bytes)};
    return std::nullopt;
  }
  if (auto q = OptString(j, "queue", err)) t.queue = *q;
  if (err) return std::nullopt;
  if (!ValidQueueName(t.queue)) {
    err = Refusal{400, "invalid_queue", "queue names are [a-z0-9_.-]{1,64}"};
    return std::nullopt;
  }
  if (std::find(queues.begin(), queues.end(), t.queue) == queues.end()) {
    std::string read;
    for (const auto& q : queues) read += (read.empty() ? "" : ", ") + q;
    err = Refusal{400, "unknown_queue", "no worker reads queue \"" + t.queue + "\" (QUEUES: " + read +
                                            "): the task would wait forever"};
    return std::nullopt;
  }
  auto delay = j.find("delay");
  auto run_at = j.find("run_at");
  bool has_delay = delay != j.end() && !delay->is_null(), has_run_at = run_at != j.end() && !run_at->is_null();
  if (has_delay && has_run_at) {
    err = Refusal{400, "invalid_task", "give delay or run_at, not both"};
    return std::nullopt;
  }
  if (has_delay) {
    auto ms = DurationMs(*delay, "delay", err);
    if (!ms) return std::nullopt;
    if (*ms > 0) t.run_at_ms = now_ms + *ms;
  }
  if (has_run_at) {
    // ISO-8601 text (Z or an offset), or unix seconds (a number), as `streamfleetctl enqueue --at`.
    // A number is range-checked before the cast: a double past int64 (1e300) is undefined behaviour to convert.
    StatusOr<int64_t> at = Status::InvalidArgument("not a time");
    if (run_at->is_number()) {
      const double s = run_at->get<double>();
      if (s >= 0 && s < 1e13) at = static_cast<int64_t>(s * 1000);
    } else if (run_at->is_string()) {
      at = ParseTimeMs(run_at->get<std::string>());
    }
    if (!at.ok() || *at < 0 || *at - now_ms > kMaxDelayMs) {
      err = Refusal{400, "invalid_task",
                    "run_at must be ISO-8601 (\"2026-12-03T18:00:00Z\", \"2026-12-03T19:00:00+01:00\") or unix seconds, within a year"};
      return std::nullopt;
    }
    t.run_at_ms = *at > now_ms ? *at : 0;
  }
  if (auto u = OptString(j, "unique_key", err)) {
    if (!ValidToken(*u, 200)) {
      err = Refusal{400, "invalid_task", "unique_key must be 1 to 200 visible ASCII characters"};
      return std::nullopt;
    }
    if (u->rfind(kGenerationTaskPrefix, 0) == 0) {
      err = Refusal{400, "invalid_task",
                    std::string("unique_key must not start with \"") + kGenerationTaskPrefix +
                        "\": reserved for the generations' own tasks"};
      return std::nullopt;
    }
    t.unique_key = *u;
  }
  if (err) return std::nullopt;
  if (auto f = j.find("unique_for"); f != j.end() && !f->is_null()) {
    auto ms = DurationMs(*f, "unique_for", err);
    if (!ms) return std::nullopt;
    t.unique_for_s = std::max<int64_t>(1, *ms / 1000);
    if (t.unique_for_s > kMaxUniqueForS || t.unique_key.empty()) {
      err = Refusal{400, "invalid_task", "unique_for needs a unique_key and is at most 30 days"};
      return std::nullopt;
    }
  }
  return t;
}

json Answer(const EnqueueResult& r) {
  json j = {{"task_id", r.id}, {"state", r.duplicate ? "duplicate" : r.scheduled ? "scheduled" : "pending"}};
  if (r.duplicate) j["duplicate"] = true;
  return j;
}

// The record's strings as JSON: attempts and the *_ms timestamps as numbers.
json RecordJson(const TaskRecord& rec) {
  json j = {{"task_id", rec.id}};
  for (const auto& [k, v] : rec.fields) {
    bool number = k == "attempts" || (k.size() > 3 && k.compare(k.size() - 3, 3, "_ms") == 0);
    int64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (number && ec == std::errc() && end == v.data() + v.size()) {
      j[k] = n;
    } else {
      j[k] = v;
    }
  }
  return j;
}

}  // namespace

TaskApi::TaskApi(const Config& config, RedisCommands& redis, IngestMetrics& metrics)
    : config_(config),
      redis_(redis),
      metrics_(metrics),
      queues_(QueueNames(config)),
      open_(config.task_api_tokens.empty() && config.ingest_tokens.empty()) {}

bool TaskApi::Owns(const std::string& path) {
  return path == kTasks || path == kBatch || path.rfind(std::string(kTasks) + "/", 0) == 0;
}

void TaskApi::Reject(HttpExchange& ex, int status, const std::string& reason, const std::string& detail,
                     std::vector<std::pair<std::string, std::string>> headers) {
  metrics_.rejections.Add({{"reason", reason}}).Increment();
  ex.RespondJson(status, JsonError(reason, detail), headers);
}

void TaskApi::RejectRedis(HttpExchange& ex, const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) {
    Reject(ex, 400, "invalid_task", s.message());
  } else if (s.retryable()) {
    Reject(ex, 503, "redis_unavailable", s.message(), {{"Retry-After", "1"}});
  } else {
    SF_LOG_ERROR("task API: {}", s.ToString());
    Reject(ex, 500, "internal", s.message());
  }
}

bool TaskApi::Authorize(HttpExchange& ex, Scope scope) {
  if (open_) return true;
  if (config_.task_api_tokens.empty()) {
    Reject(ex, 403, "task_api_disabled", "the task API needs its own tokens: set TASK_API_TOKENS");
    return false;
  }
  auto bearer = BearerToken(ex.Header("Authorization"));
  if (!bearer) {
    Reject(ex, 401, "unauthorized", "missing bearer token", {{"WWW-Authenticate", "Bearer"}});
    return false;
  }
  const std::string& token = *bearer;
  for (const TaskApiToken& t : config_.task_api_tokens) {
    if (!SecretEquals(t.token, token)) continue;
    if (scope == Scope::kEnqueue ? t.enqueue : t.read) return true;
    Reject(ex, 403, "forbidden",
           std::string("this token has no ") + (scope == Scope::kEnqueue ? "enqueue" : "read") + " scope");
    return false;
  }
  Reject(ex, 401, "unauthorized", "unknown bearer token", {{"WWW-Authenticate", "Bearer"}});
  return false;
}

bool TaskApi::ReadJson(HttpExchange& ex, size_t limit, json& out) {
  auto type = ex.Header("Content-Type");
  if (!type || type->rfind("application/json", 0) != 0) {
    Reject(ex, 415, "unsupported_media_type", "Content-Type must be application/json");
    return false;
  }
  auto body = ex.ReadBody(limit);
  if (!body.ok()) {
    if (body.status().code() == StatusCode::kResourceExhausted) {
      Reject(ex, 413, "body_too_large", "the body is larger than " + std::to_string(limit) + " bytes");
    } else {
      Reject(ex, 400, "bad_body", body.status().message());
    }
    return false;
  }
  auto j = ParseJsonInput(*body);
  if (!j.ok()) {
    Reject(ex, 400, "invalid_json", j.status().message());
    return false;
  }
  out = std::move(*j);
  return true;
}

void TaskApi::Handle(HttpExchange& ex) {
  const std::string& path = ex.path();
  const std::string& m = ex.method();
  if (path == kTasks || path == kBatch) {
    if (m != "POST") {
      Reject(ex, 405, "method_not_allowed", m + " is not allowed on " + path, {{"Allow", "POST"}});
    } else if (Authorize(ex, Scope::kEnqueue)) {
      path == kTasks ? Enqueue(ex) : EnqueueBatch(ex);
    }
    return;
  }
  std::string id = path.substr(sizeof(kTasks));  // after "/v1/tasks/"
  if (!ValidToken(id, 200) || id.find('/') != std::string::npos) {
    Reject(ex, 400, "invalid_id", "a task id is 1 to 200 visible ASCII characters without '/'");
  } else if (m == "GET") {
    if (Authorize(ex, Scope::kRead)) Show(ex, id);
  } else if (m == "DELETE") {
    if (Authorize(ex, Scope::kEnqueue)) Cancel(ex, id);
  } else {
    Reject(ex, 405, "method_not_allowed", m + " is not allowed on " + path, {{"Allow", "GET, DELETE"}});
  }
}

std::optional<OperatorTask> TaskApi::ReadTask(HttpExchange& ex, int64_t now_ms) {
  json body;
  // The payload limit plus room for the other fields; a larger payload is refused by its own check (413).
  if (!ReadJson(ex, static_cast<size_t>(config_.task_max_payload_bytes) + 64 * 1024, body)) return std::nullopt;
  std::optional<Refusal> err;
  auto task = ParseTask(body, config_, queues_, now_ms, err);
  if (!task) Reject(ex, err->status, err->reason, err->detail);
  return task;
}

bool TaskApi::HandleFast(const std::shared_ptr<HttpExchange>& exchange, AsyncRedis& async,
                         std::function<void()> done) {
  HttpExchange& ex = *exchange;
  if (ex.method() != "POST" || ex.path() != kTasks) return false;
  int64_t now = WallClockMs();
  std::optional<OperatorTask> task;
  if (Authorize(ex, Scope::kEnqueue)) task = ReadTask(ex, now);
  if (!task) {
    done();
    return true;
  }
  if (task->unique_key.empty()) {
    AddAsync(exchange, async, *task, now, std::move(done));
    return true;
  }
  // One script, as EnqueueTask: the unique key, the add and the status record together (a held key means a
  // duplicate, answered with its holder's id).
  const TaskKeys keys = TaskKeys::FromConfig(config_);
  EnqueueOptions o = EnqueueOptions::FromConfig(config_);
  o.queue = task->queue;
  o.unique_key = task->unique_key;
  o.unique_ttl_s = task->unique_for_s;
  o.run_at_ms = task->run_at_ms;
  auto result = std::make_shared<EnqueueResult>();
  auto call = UniqueEnqueueCall(keys, task->type, task->payload, o, now, *result);
  if (!call.ok()) {
    RejectRedis(ex, call.status());
    done();
    return true;
  }
  async.SendEval(GuardedEnqueueScript(), call->keys, call->args,
                 [this, exchange, result, done](StatusOr<RedisValue> r) {
                   Status s = ReadUniqueEnqueueReply(r, *result);
                   if (!s.ok()) {
                     RejectRedis(*exchange, s);
                   } else {
                     if (!result->duplicate) metrics_.tasks_enqueued.Increment();
                     exchange->RespondJson(result->duplicate ? 200 : 202, Answer(*result).dump());
                   }
                   done();
                 });
  return true;
}

void TaskApi::AddAsync(const std::shared_ptr<HttpExchange>& exchange, AsyncRedis& async, const OperatorTask& task,
                       int64_t now_ms, std::function<void()> done) {
  const TaskKeys keys = TaskKeys::FromConfig(config_);
  EnqueueOptions o = EnqueueOptions::FromConfig(config_);
  o.queue = task.queue;
  o.run_at_ms = task.run_at_ms;
  auto result = std::make_shared<EnqueueResult>();
  auto cmds = EnqueueCommands(keys, task.type, task.payload, o, now_ms, *result);
  if (!cmds.ok()) {
    RejectRedis(*exchange, cmds.status());
    done();
    return;
  }
  // In order on one connection: the status writes (best effort, as EnqueueTask) and the add, answered.
  for (size_t i = 0; i + 1 < cmds->size(); ++i) async.Send(std::move((*cmds)[i]), [](StatusOr<RedisValue>) {});
  async.Send(std::move(cmds->back()), [this, exchange, result, done](StatusOr<RedisValue> r) {
    if (!r.ok()) {
      RejectRedis(*exchange, r.status());
    } else {
      metrics_.tasks_enqueued.Increment();
      exchange->RespondJson(202, Answer(*result).dump());
    }
    done();
  });
}

void TaskApi::Enqueue(HttpExchange& ex) {
  int64_t now = WallClockMs();
  auto task = ReadTask(ex, now);
  if (!task) return;
  auto r = EnqueueOperatorTask(redis_, config_, *task, now);
  if (!r.ok()) {
    RejectRedis(ex, r.status());
    return;
  }
  if (!r->duplicate) metrics_.tasks_enqueued.Increment();
  ex.RespondJson(r->duplicate ? 200 : 202, Answer(*r).dump());
}

void TaskApi::EnqueueBatch(HttpExchange& ex) {
  json body;
  size_t limit = std::min<size_t>(static_cast<size_t>(config_.max_body_bytes),
                                  kMaxBatch * (static_cast<size_t>(config_.task_max_payload_bytes) + 1024));
  if (!ReadJson(ex, limit, body)) return;
  auto list = body.is_object() ? body.find("tasks") : body.end();
  if (!body.is_object() || list == body.end() || !list->is_array() || list->empty() || list->size() > kMaxBatch) {
    Reject(ex, 400, "invalid_batch", "the body is {\"tasks\": [...]} with 1 to 1000 tasks");
    return;
  }
  int64_t now = WallClockMs();
  std::vector<OperatorTask> tasks;
  tasks.reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    std::optional<Refusal> err;
    auto t = ParseTask((*list)[i], config_, queues_, now, err);
    if (!t) {  // nothing is enqueued when one task is refused: the caller fixes it and sends the batch again
      Reject(ex, err->status, err->reason, "tasks[" + std::to_string(i) + "]: " + err->detail);
      return;
    }
    tasks.push_back(std::move(*t));
  }
  auto r = EnqueueOperatorTasks(redis_, config_, tasks, now);
  if (!r.ok()) {
    RejectRedis(ex, r.status());
    return;
  }
  json out = json::array();
  for (const EnqueueResult& e : *r) {
    if (!e.duplicate) metrics_.tasks_enqueued.Increment();
    out.push_back(Answer(e));
  }
  ex.RespondJson(202, json{{"tasks", std::move(out)}}.dump());
}

void TaskApi::Show(HttpExchange& ex, const std::string& id) {
  auto rec = ReadTaskRecord(redis_, TaskKeys::FromConfig(config_), id);
  if (!rec.ok()) {
    RejectRedis(ex, rec.status());
  } else if (!rec->has_value()) {
    Reject(ex, 404, "not_found",
           config_.task_result_ttl_s > 0 ? "no task " + id + " (unknown, or its record expired)"
                                         : std::string("TASK_RESULT_TTL=0: no task status is kept"));
  } else {
    // The record holds what handlers wrote, e.g. a push handler's response body, cut at 64 KiB maybe inside
    // a character: invalid UTF-8 is replaced with U+FFFD, or dump() would throw and the task would be a 500.
    ex.RespondJson(200, RecordJson(**rec).dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

void TaskApi::Cancel(HttpExchange& ex, const std::string& id) {
  auto r = CancelTask(redis_, TaskKeys::FromConfig(config_), id, config_.task_result_ttl_s, WallClockMs());
  if (!r.ok()) {
    RejectRedis(ex, r.status());
    return;
  }
  switch (r->outcome) {
    case CancelOutcome::kCancelled:
    case CancelOutcome::kAlreadyCancelled:
      ex.RespondJson(200, json{{"task_id", id}, {"state", "cancelled"}, {"previous_state", r->state}}.dump());
      break;
    case CancelOutcome::kNotFound:
      Reject(ex, 404, "not_found", "no task " + id + " (unknown, or its record expired)");
      break;
    case CancelOutcome::kTooLate:
      ex.RespondJson(409, json{{"error", "too_late"},
                               {"detail", "task " + id + " is " + r->state + ": only a task that has not started "
                                                                              "can be cancelled"},
                               {"state", r->state}}
                              .dump());
      break;
  }
}

}  // namespace streamfleet::ingest
