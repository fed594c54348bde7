#include "ingest/ingest_service.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "streamfleet/base/time.h"
#include "streamfleet/chunks/request_parsing.h"
#include "streamfleet/chunks/chunk_scripts.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/cache/generation_cache.h"
#include "streamfleet/chunks/generation_request.h"
#include "streamfleet/chunks/generation_start.h"
#include "streamfleet/chunks/fleet_events.h"
#include "streamfleet/live/signed_link.h"
#include "streamfleet/base/json_input.h"
#include "streamfleet/base/log.h"
#include "streamfleet/redis/pooled_redis_commands.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "streamfleet/base/text.h"

namespace streamfleet::ingest {

namespace {

constexpr size_t kBatchChunks = 100;
constexpr size_t kBatchBytes = 256 * 1024;

std::string MediaType(const std::optional<std::string>& header) {
  if (!header) return "";
  std::string t = header->substr(0, header->find(';'));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return t;
}

// '#' separates a streamed body's line number from the key ("<key>#<line>"): a key containing it could
// name another request's line.
bool ValidIdempotencyKey(const std::string& k) {
  if (k.empty() || k.size() > 200) return false;
  for (char c : k) {
    if (c < 0x21 || c > 0x7e || c == '#') return false;
  }
  return true;
}

const char* RouteName(Route::Kind k) {
  switch (k) {
    case Route::Kind::kChunks: return "chunks";
    case Route::Kind::kFinish: return "finish";
    case Route::Kind::kProgress: return "progress";
    case Route::Kind::kGeneration: return "generation";
    case Route::Kind::kStart: return "start";
    case Route::Kind::kStream: return "stream";
    case Route::Kind::kEvents: return "events";
    default: return "other";
  }
}

}  // namespace

struct IngestService::Ctx {
  GenerationId gen;
  int64_t line = 0;
  // The request's Idempotency-Key ("" = none). Each chunk of a streamed body is keyed "<key>#<line>", so a
  // retried upload is answered for the lines that landed (a batch cut short by an error included) and
  // appends the rest.
  std::string idempotency_key;
  std::string LineKey() const { return idempotency_key.empty() ? "" : idempotency_key + "#" + std::to_string(line); }
};

namespace {

// Every connection is a file descriptor. Container runtimes often start processes with a soft limit of 1024,
// far below what INGEST_MAX_CONNECTIONS allows (10 000 idle live streams are a target): the soft limit is
// raised to the hard one, as Go's runtime and nginx's worker_rlimit_nofile do, and an operator is told when
// even that is too low for the cap (past it a connection is dropped by the kernel's accept, not answered).
void RaiseDescriptorLimit(int64_t max_connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  // Besides the connections: Redis connections, the metrics server's, the database, logs.
  constexpr int64_t kOtherDescriptors = 256;
  if (max_connections > 0 && lim.rlim_cur != RLIM_INFINITY &&
      static_cast<int64_t>(lim.rlim_cur) < max_connections + kOtherDescriptors) {
    SF_LOG_WARN("the file descriptor limit ({}) is below INGEST_MAX_CONNECTIONS ({}) plus {} for the process's "
                "own: connections past it are refused by the kernel rather than answered 503 (raise the "
                "container's nofile limit, or lower INGEST_MAX_CONNECTIONS)",
                static_cast<int64_t>(lim.rlim_cur), max_connections, kOtherDescriptors);
  }
}

// One shared pipelined connection for the request threads (AsyncRedis, also over TLS and behind Sentinel);
// on a Redis Cluster, which that client does not follow, a pool of blocking clients instead.
std::unique_ptr<RedisCommands> RequestPathRedis(const Config& full) {
  const RedisConfig& config = full.redis;
  // With INGEST_WAIT_REPLICAS every append waits (WAIT) on its connection: one shared connection would
  // serialize them, so those get pooled blocking clients too.
  if (config.cluster || full.ingest_wait_replicas > 0) {
    return std::make_unique<PooledRedisCommands>(config);
  }
  return std::make_unique<AsyncRedis>(config);
}

}  // namespace

IngestService::IngestService(const Config& config, prometheus::Registry& registry, SqlStore* store)
    : config_(config),
      metrics_(registry),
      redis_health_(registry, Dependency::kRedis, &metrics_.redis_up),
      db_health_(registry, Dependency::kDatabase),
      writer_(config),
      redis_(RequestPathRedis(config)),
      async_redis_(dynamic_cast<AsyncRedis*>(redis_.get())),
      sampler_redis_(RedisClient::Lazy(config.redis)),
      store_(store),
      cache_(config.redis, CacheOptionsFromConfig(config), &registry),
      tasks_(config, *redis_, metrics_),
      live_(config, *redis_, store, registry),
      answers_(config.ingest_max_queued_answer_bytes),
      org_workers_(config.ingest_org_max_workers) {}

IngestService::~IngestService() { Stop(); }

Status IngestService::Start() {
  if (config_.ingest_tokens.empty()) {
    SF_LOG_WARN("INGEST_TOKENS is empty: the ingest API is OPEN to anyone who can reach {} (embedded default only; "
                "set per-organization tokens in production)",
                config_.ingest_listen);
  }
  // The fast path's Redis connection lives on the HTTP loop: a request, its script call and its answer stay on
  // one thread, where a connection on a loop of its own cost two thread hand-offs per request. Plain TCP only:
  // over TLS or behind Sentinel a connect blocks its loop (the handshake, asking the sentinels), which must
  // not stall every HTTP connection during a Redis outage; those keep the fast path on async_redis_.
  LoopGuest guest;
  if (async_redis_ != nullptr && !config_.redis.tls.enabled && config_.redis.sentinel.nodes.empty()) {
    guest.on_start = [this](uv_loop_s* loop) { fast_redis_ = AsyncRedis::OnLoop(config_.redis, loop); };
    guest.on_finish = [this] { fast_redis_->Close(); };
  }
  RaiseDescriptorLimit(config_.ingest_max_connections);
  LoopHttpLimits limits;
  limits.max_connections = config_.ingest_max_connections;
  prometheus::Counter* refused = &metrics_.rejections.Add({{"reason", "too_many_connections"}});
  limits.on_refused = [refused] { refused->Increment(); };
  auto http = LoopHttpServer::Start(
      config_.ingest_listen, config_.ingest_threads, [this](HttpExchange& ex) { Handle(ex); },
      config_.ingest_request_timeout_ms, [this](const std::shared_ptr<HttpExchange>& ex) { return HandleFast(ex); },
      std::move(guest), std::move(limits));
  if (!http.ok()) return http.status();
  http_ = std::move(*http);
  sampler_ = std::thread([this] {
    while (!stopping_.load()) {
      SampleGauges();
      for (int i = 0; i < 10 && !stopping_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  return Status::Ok();
}

void IngestService::Stop() {
  stopping_.store(true);
  live_.Stop();  // live streams end first (their clients reconnect elsewhere): they never finish by themselves
  if (http_) http_->Stop();  // in-flight requests finish first
  fast_redis_.reset();       // closed on the loop, which has ended
  if (sampler_.joinable()) sampler_.join();
}

Status IngestService::Ready() {
  if (!redis_health_.up()) return Status::Unavailable("redis unreachable");
  return Status::Ok();
}

void IngestService::SampleGauges() {
  metrics_.open_connections.Set(static_cast<double>(http_->open_connections()));
  metrics_.queued_answer_bytes.Set(static_cast<double>(answers_.queued_bytes()));
  auto b = writer_.Backlog(*sampler_redis_);
  redis_health_.Report(b.status(), "sample backlog");
  if (b.ok()) {
    backlog_.store(*b);
    metrics_.backlog.Set(static_cast<double>(*b));
  }
}

void IngestService::Reject(HttpExchange& ex, int status, const std::string& reason, const std::string& detail,
                           std::vector<std::pair<std::string, std::string>> headers) {
  metrics_.rejections.Add({{"reason", reason}}).Increment();
  ex.RespondJson(status, JsonError(reason, detail), headers);
}

bool IngestService::AnswerProbe(HttpExchange& ex) {
  if (ex.path() == "/healthz") {
    ex.Respond(200, "text/plain", "ok\n");
  } else if (ex.path() == "/readyz") {
    Status s = Ready();  // an atomic's read: fine on the loop thread
    ex.Respond(s.ok() ? 200 : 503, "text/plain", s.ok() ? "ready\n" : "not ready: " + s.ToString() + "\n");
  } else {
    return false;
  }
  return true;
}

bool IngestService::Admit(HttpExchange& ex, const Route& route, Ctx& ctx) {
  if (AnswerProbe(ex)) return false;  // a HEAD or POST of a probe route (the GETs are answered on the loop)
  if (route.kind == Route::Kind::kUnknown) {
    // Its own code: a client must not read a wrong base URL as "no such task" or "no such generation".
    Reject(ex, 404, "no_route", "no route for " + ex.method() + " " + ex.path());
  } else if ((route.kind == Route::Kind::kStream || route.kind == Route::Kind::kEvents) && ex.method() == "OPTIONS") {
    // Before the id check: a refused preflight hides the answer from the page, a 400 to the GET does not.
    live_.HandlePreflight(ex);
  } else if (!route.bad_id.empty()) {
    Reject(ex, 400, "invalid_id", route.bad_id);
  } else if (bool get_route = route.kind == Route::Kind::kProgress || route.kind == Route::Kind::kGeneration ||
                             route.kind == Route::Kind::kStream || route.kind == Route::Kind::kEvents;
             get_route != (ex.method() == "GET") || (!get_route && ex.method() != "POST")) {
    Reject(ex, 405, "method_not_allowed", ex.method() + " is not allowed on " + ex.path());
  } else if (AuthorizeRoute(ex, route)) {
    ctx.gen = GenerationId{route.org, 0, route.gen};
    if (auto sc = ex.QueryParam("scenario_id"); sc && !sc->empty()) {
      auto id = ParseId(*sc);
      if (!id) {
        Reject(ex, 400, "invalid_id", "scenario_id \"" + *sc + "\" is not a positive integer");
        return false;
      }
      ctx.gen.scenario = *id;
    }
    if (auto key = ex.Header("Idempotency-Key")) {
      if (!ValidIdempotencyKey(*key)) {
        Reject(ex, 400, "invalid_idempotency_key",
               "Idempotency-Key must be 1 to 200 visible ASCII characters (no spaces, no '#')");
        return false;
      }
      ctx.idempotency_key = *key;
    }
    return true;
  }
  return false;
}

void IngestService::RecordRequest(const char* name, const HttpExchange& ex, Clk::time_point started) {
  request_metrics_.Record(name, ex.status(), std::chrono::duration<double>(Clk::now() - started).count());
}

void IngestService::Handle(HttpExchange& ex) {
  auto started = Clk::now();
  if (TaskApi::Owns(ex.path())) {
    tasks_.Handle(ex);
    RecordRequest("tasks", ex, started);
    return;
  }
  Route route = MatchRoute(ex.path());
  // On every answer of the live routes, the errors of Admit and the 204 after the end included.
  if (route.kind == Route::Kind::kStream || route.kind == Route::Kind::kEvents) {
    ex.AddAnswerHeaders(live_.CorsHeaders(ex));
  }
  Ctx ctx;
  if (Admit(ex, route, ctx)) {
    LogScope scope(LogContext().Generation(ctx.gen.org, ctx.gen.gen));
    // The live routes hand their connection over at once (no worker is held while they stream).
    const bool live = route.kind == Route::Kind::kStream || route.kind == Route::Kind::kEvents;
    OrgShare::Slot slot = live ? OrgShare::Slot() : org_workers_.Acquire(ctx.gen.org);
    if (!live && !slot) {
      Reject(ex, 429, "too_many_requests",
             "organization " + std::to_string(ctx.gen.org) + " already holds " +
                 std::to_string(org_workers_.max()) + " of ingest's worker threads (INGEST_ORG_MAX_WORKERS)",
             {{"Retry-After", "1"}});
      RecordRequest(RouteName(route.kind), ex, started);
      return;
    }
    switch (route.kind) {
      case Route::Kind::kChunks: HandleChunks(ex, ctx); break;
      case Route::Kind::kFinish: HandleFinish(ex, ctx); break;
      case Route::Kind::kProgress: HandleProgress(ex, ctx); break;
      case Route::Kind::kGeneration: HandleGeneration(ex, ctx); break;
      case Route::Kind::kStart: HandleStart(ex, ctx); break;
      case Route::Kind::kStream: live_.HandleGenerationStream(ex, ctx.gen.org, ctx.gen.gen); break;
      case Route::Kind::kEvents: live_.HandleEvents(ex, ctx.gen.org); break;
      default: break;
    }
  }
  RecordRequest(RouteName(route.kind), ex, started);
}

bool IngestService::HandleFast(const std::shared_ptr<HttpExchange>& exchange) {
  // Only a single JSON chunk and tasks, on an AsyncRedis; everything else (streamed bodies, other
  // routes, the cluster's blocking pooled clients) goes to Handle on a worker thread.
  // The kubelet's probes, on the loop: on a worker thread they would queue behind streamed uploads that hold
  // every thread, time out, and have the busiest pod restarted; on the loop they still see a loop that stopped.
  if (exchange->method() == "GET" && AnswerProbe(*exchange)) return true;
  AsyncRedis* fast = fast_redis_ != nullptr ? fast_redis_.get() : async_redis_;
  if (fast == nullptr || exchange->method() != "POST") return false;
  if (TaskApi::Owns(exchange->path())) {
    auto started = Clk::now();
    return tasks_.HandleFast(exchange, *fast,
                             [this, exchange, started] { RecordRequest("tasks", *exchange, started); });
  }
  Route route = MatchRoute(exchange->path());
  if (route.kind != Route::Kind::kChunks || MediaType(exchange->Header("Content-Type")) != "application/json") {
    return false;
  }
  HttpExchange& ex = *exchange;
  auto started = Clk::now();
  Ctx ctx;
  std::optional<PendingChunk> chunk;
  if (Admit(ex, route, ctx) && AdmitChunks(ex)) chunk = ReadJsonChunk(ex, ctx);  // the body is complete: no wait
  if (!chunk) {
    RecordRequest(RouteName(route.kind), ex, started);
    return true;
  }
  auto batch = std::make_shared<std::vector<PendingChunk>>();
  batch->push_back(std::move(*chunk));
  ChunkWriter::AppendCall call = writer_.PrepareAppend(ctx.gen, *batch, "ingest-json");
  // The callback runs on this (the HTTP loop's) thread, or on async_redis_'s; the answer goes through the
  // server's outbox either way.
  fast->SendEval(scripts::IngestAppend(), call.keys, call.args,
                         [this, exchange, batch, started, gen = ctx.gen](StatusOr<RedisValue> reply) {
                           metrics_.redis_write_seconds.Observe(
                               std::chrono::duration<double>(Clk::now() - started).count());
                           AppendResult total;
                           if (Written(*exchange, gen, ChunkWriter::ParseAppendReply(reply, *batch), *batch, &total)) {
                             RespondAccepted(*exchange, total);
                           }
                           RecordRequest(RouteName(Route::Kind::kChunks), *exchange, started);
                         });
  return true;
}

bool IngestService::AuthorizeRoute(HttpExchange& ex, const Route& route) {
  bool live = route.kind == Route::Kind::kStream || route.kind == Route::Kind::kEvents;
  auto sig = ex.QueryParam("sig");
  if (!live || !sig || config_.ingest_tokens.empty() || ex.Header("Authorization")) return Authorize(ex, route.org);
  // A signed link (streamfleet/live/signed_link.h): signed with this organization's token, for this path.
  auto token = config_.ingest_tokens.find(route.org);
  auto check = token == config_.ingest_tokens.end()
                   ? live::LinkCheck::kBadSignature
                   : live::CheckLink(token->second, ex.path(), ex.QueryParam("exp").value_or(""), *sig,
                                     WallClockMs() / 1000);
  if (check == live::LinkCheck::kOk) return true;
  Reject(ex, check == live::LinkCheck::kMalformed ? 400 : 403,
         check == live::LinkCheck::kMalformed ? "invalid_signed_link" : "forbidden", live::LinkCheckText(check));
  return false;
}

bool IngestService::Authorize(HttpExchange& ex, int64_t org) {
  if (config_.ingest_tokens.empty()) return true;
  auto bearer = BearerToken(ex.Header("Authorization"));
  if (!bearer) {
    Reject(ex, 401, "unauthorized", "missing bearer token", {{"WWW-Authenticate", "Bearer"}});
    return false;
  }
  const std::string& token = *bearer;
  bool known_elsewhere = false;
  for (const auto& [o, t] : config_.ingest_tokens) {
    if (SecretEquals(t, token)) {
      if (o == org) return true;
      known_elsewhere = true;
    }
  }
  if (known_elsewhere) {
    Reject(ex, 403, "forbidden", "this token does not grant access to organization " + std::to_string(org));
  } else {
    Reject(ex, 401, "unauthorized", "unknown bearer token", {{"WWW-Authenticate", "Bearer"}});
  }
  return false;
}

bool IngestService::Write(HttpExchange& ex, Ctx& ctx, std::vector<PendingChunk>& batch, const char* source,
                          AppendResult* total) {
  if (batch.empty()) return true;
  auto t0 = Clk::now();
  auto r = writer_.Append(*redis_, ctx.gen, batch, source);
  metrics_.redis_write_seconds.Observe(std::chrono::duration<double>(Clk::now() - t0).count());
  if (!Written(ex, ctx.gen, r, batch, total)) return false;
  batch.clear();
  return true;
}

bool IngestService::Written(HttpExchange& ex, const GenerationId& gen, const StatusOr<AppendResult>& r,
                            const std::vector<PendingChunk>& batch,
                            AppendResult* total) {
  if (!r.ok()) {
    const Status& s = r.status();
    if (s.code() == StatusCode::kFailedPrecondition) {
      // Counted by reason in streamfleet_ingest_rejections_total (generation_owned_elsewhere among them).
      Reject(ex, 409, AppendConflictReason(s), ConflictDetail(s.message()));
    } else if (s.code() == StatusCode::kResourceExhausted) {
      Reject(ex, 413, "generation_too_large", s.message());
    } else if (s.retryable()) {
      redis_health_.Report(s, "append chunks");
      Reject(ex, 503, "redis_unavailable", s.message(), {{"Retry-After", "1"}});
    } else {
      Reject(ex, 500, "internal", s.message());
    }
    return false;
  }
  redis_health_.Report(Status::Ok(), "append chunks");
  if (r->replayed > 0) metrics_.idempotent_replays.Increment(static_cast<double>(r->replayed));
  int64_t bytes = 0;
  for (const auto& c : batch) bytes += static_cast<int64_t>(c.data.size());
  metrics_.chunks.Increment(static_cast<double>(r->accepted));
  metrics_.bytes.Increment(static_cast<double>(bytes));
  total->accepted += r->accepted;
  total->last_seq = std::max(total->last_seq, r->last_seq);
  if (r->started) AnnounceStart(gen);
  return true;
}

void IngestService::AnnounceStart(const GenerationId& gen) {
  // Fire and forget: the chunks are durable already; a lost event (a crash right here) only means a live
  // events client sees the generation's compaction without its start.
  auto cmd = GenerationStartedCommand(KeySchema::FromConfig(config_), gen, WallClockMs());
  if (async_redis_ != nullptr) {
    async_redis_->Send(std::move(cmd), [](StatusOr<RedisValue>) {});
  } else {
    (void)redis_->Command(cmd);
  }
}

std::string IngestService::ConflictDetail(const std::string& message) {
  // "ERR Error running script ... SFCONFLICT seq_conflict: seq 3 was ..." -> "seq 3 was ...": the client
  // gets the sentence, not Redis's wrapping.
  size_t colon = message.find(": ", message.find("SFCONFLICT"));
  if (colon == std::string::npos) return message;
  std::string detail = message.substr(colon + 2);
  if (size_t script = detail.find(" script:"); script != std::string::npos) detail.resize(script);
  return detail;
}

bool IngestService::AdmitChunks(HttpExchange& ex) {
  if (backlog_.load() > config_.backpressure_lag) {
    Reject(ex, 503, "backpressure",
           "chunk backlog " + std::to_string(backlog_.load()) + " exceeds " + std::to_string(config_.backpressure_lag),
           {{"Retry-After", "1"}});
    return false;
  }
  if (auto cl = ex.Header("Content-Length")) {
    if (std::strtoll(cl->c_str(), nullptr, 10) > config_.max_body_bytes) {
      Reject(ex, 413, "body_too_large", "request body exceeds " + std::to_string(config_.max_body_bytes) + " bytes");
      return false;
    }
  }
  return true;
}

void IngestService::HandleChunks(HttpExchange& ex, Ctx& ctx) {
  if (!AdmitChunks(ex)) return;
  std::string type = MediaType(ex.Header("Content-Type"));
  if (type == "application/json") {
    HandleJsonChunk(ex, ctx);
  } else if (type == "application/x-ndjson") {
    HandleStreamed(ex, ctx, /*sse=*/false);
  } else if (type == "text/event-stream") {
    HandleStreamed(ex, ctx, /*sse=*/true);
  } else {
    Reject(ex, 415, "unsupported_media_type",
           "Content-Type must be application/json, application/x-ndjson or text/event-stream");
  }
}

namespace {
// Limits every chunk must meet; kResourceExhausted -> 413, kInvalidArgument -> 400.
Status CheckChunk(const Config& c, const ChunkInput& in) {
  if (static_cast<int64_t>(in.data.size()) > c.max_chunk_bytes) {
    return Status::ResourceExhausted("chunk of " + std::to_string(in.data.size()) + " bytes exceeds " +
                                     std::to_string(c.max_chunk_bytes));
  }
  if (in.seq && *in.seq >= c.max_chunks_per_generation) {
    return Status::InvalidArgument("seq " + std::to_string(*in.seq) + " exceeds the maximum of " +
                                   std::to_string(c.max_chunks_per_generation - 1));
  }
  if (in.total_chunks > c.max_chunks_per_generation) {
    return Status::InvalidArgument("total_chunks exceeds " + std::to_string(c.max_chunks_per_generation));
  }
  if (in.seq && in.total_chunks > 0 && *in.seq >= in.total_chunks) {
    return Status::InvalidArgument("seq must be below total_chunks");
  }
  return Status::Ok();
}
}  // namespace

void IngestService::RejectBody(HttpExchange& ex, const Status& s) {
  if (s.code() == StatusCode::kResourceExhausted) {
    Reject(ex, 413, "body_too_large", s.message());
  } else {
    // Bad chunked encoding, a body shorter than its Content-Length, a client that went quiet: nothing read
    // from it was applied.
    Reject(ex, 400, "bad_body", s.message());
  }
}

bool IngestService::RejectNonUtf8(HttpExchange& ex, const std::string& body) {
  auto bad = FirstInvalidUtf8(body);
  if (!bad) return false;
  // JSON text is UTF-8 (RFC 8259): reject with the offset instead of storing bytes no JSON reader accepts.
  metrics_.rejections.Add({{"reason", "invalid_utf8"}}).Increment();
  ex.RespondJson(400, nlohmann::json{{"error", "invalid_utf8"},
                                     {"detail", "byte " + std::to_string(*bad) + " of the body is not valid UTF-8"},
                                     {"offset", *bad}}
                          .dump());
  return true;
}

std::optional<PendingChunk> IngestService::ReadJsonChunk(HttpExchange& ex, const Ctx& ctx) {
  auto body = ex.ReadBody(static_cast<size_t>(config_.max_body_bytes));
  if (!body.ok()) {
    RejectBody(ex, body.status());
    return std::nullopt;
  }
  if (RejectNonUtf8(ex, *body)) return std::nullopt;
  auto in = ParseChunkJson(*body);
  if (!in.ok()) {
    Reject(ex, 400, "invalid_chunk", in.status().message());
    return std::nullopt;
  }
  Status lim = CheckChunk(config_, *in);
  if (!lim.ok()) {
    bool big = lim.code() == StatusCode::kResourceExhausted;
    Reject(ex, big ? 413 : 400, big ? "chunk_too_large" : "invalid_chunk", lim.message());
    return std::nullopt;
  }
  return PendingChunk{in->seq, std::move(in->data), in->final, in->total_chunks, false, ctx.idempotency_key};
}

void IngestService::RespondAccepted(HttpExchange& ex, const AppendResult& total) {
  ex.RespondJson(202, nlohmann::json{{"accepted", total.accepted}, {"last_seq", total.last_seq}}.dump());
}

void IngestService::HandleJsonChunk(HttpExchange& ex, Ctx& ctx) {
  auto chunk = ReadJsonChunk(ex, ctx);
  if (!chunk) return;
  std::vector<PendingChunk> batch = {std::move(*chunk)};
  AppendResult total;
  if (!Write(ex, ctx, batch, "ingest-json", &total)) return;
  RespondAccepted(ex, total);
}

// One streamed (NDJSON or SSE) request body being appended: the batch not yet written and what the request
// has been answered so far.
struct IngestService::Upload {
  bool sse = false;
  const char* source = "";
  std::vector<PendingChunk> batch;
  size_t batch_bytes = 0;
  AppendResult total;
  bool done = false;  // SSE [DONE] seen
};

void IngestService::HandleStreamed(HttpExchange& ex, Ctx& ctx, bool sse) {
  Upload up;
  up.sse = sse;
  up.source = sse ? "ingest-sse" : "ingest-ndjson";
  if (!ReadLines(ex, ctx, up)) return;
  if (!Write(ex, ctx, up.batch, up.source, &up.total)) return;
  nlohmann::json j = {{"accepted", up.total.accepted}, {"last_seq", up.total.last_seq}};
  if (sse) j["done"] = up.done;
  ex.RespondJson(202, j.dump());
}

// Reads the body and hands each complete line to HandleLine. False when the request already got its answer.
// After an SSE [DONE] the rest of the body is not read as lines (DrainBody).
bool IngestService::ReadLines(HttpExchange& ex, Ctx& ctx, Upload& up) {
  const size_t max_line = static_cast<size_t>(config_.max_chunk_bytes) * 6 + 4096;  // JSON escaping headroom
  std::string pending;         // bytes of an incomplete line
  int64_t pending_offset = 0;  // body offset of pending[0]
  int64_t body_bytes = 0;
  // Small reads: each line is appended as soon as the read that completes it returns (LoopHttpServer's Read
  // returns what has arrived; a server that fills the buffer before returning would make the read size
  // bound how long a complete line waits).
  std::vector<char> buffer(2048);
  while (true) {
    int n = ex.Read(buffer.data(), buffer.size());
    if (n < 0) {
      FailLine(ex, ctx, up, 400, "bad_body", "the request body ended abruptly or its chunked encoding is malformed");
      return false;
    }
    if (n == 0) break;
    // The lines within INGEST_MAX_BODY_BYTES are handled before a read that crosses it is refused: a [DONE]
    // among them ends the stream whatever follows it.
    const auto within = static_cast<size_t>(std::min<int64_t>(n, config_.max_body_bytes - body_bytes));
    body_bytes += n;
    pending.append(buffer.data(), within);
    size_t consumed = ForEachCompleteLine(pending, [&](std::string_view line) {
      return HandleLine(ex, ctx, up, line, pending_offset + static_cast<int64_t>(line.data() - pending.data()));
    });
    if (consumed == std::string_view::npos) return false;
    if (up.done) {
      DrainBody(ex, body_bytes, buffer);
      return true;
    }
    if (within < static_cast<size_t>(n)) {
      FailLine(ex, ctx, up, 413, "body_too_large",
               "request body exceeds " + std::to_string(config_.max_body_bytes) + " bytes");
      return false;
    }
    pending.erase(0, consumed);
    pending_offset += static_cast<int64_t>(consumed);
    if (pending.size() > max_line) {
      ++ctx.line;
      FailLine(ex, ctx, up, 413, "chunk_too_large", "line longer than " + std::to_string(max_line) + " bytes");
      return false;
    }
  }
  return pending.empty() || HandleLine(ex, ctx, up, pending, pending_offset);
}

// The producer's stream ended with [DONE], whose FINISH is written: docs/API.md says anything after it is
// ignored, so nothing after it may turn the finished stream's answer into an error (it was a 400 or 413
// without the FINISH, and the generation waited for its idle timeout). The rest is read and dropped, up to
// INGEST_MAX_BODY_BYTES, so a body that ends normally (the blank line after [DONE], the last chunk) leaves the
// connection kept alive; a read error or a body past the limit only ends the draining, and the server closes
// the connection after the answer (the body was not read to its end).
void IngestService::DrainBody(HttpExchange& ex, int64_t body_bytes, std::vector<char>& buffer) {
  while (body_bytes <= config_.max_body_bytes) {
    int n = ex.Read(buffer.data(), buffer.size());
    if (n <= 0) return;
    body_bytes += n;
  }
}

// Answers a bad line. Lines before it are durable already or flushed now; nothing from it on is applied.
void IngestService::FailLine(HttpExchange& ex, Ctx& ctx, Upload& up, int status, const std::string& reason,
                             const std::string& detail, std::optional<int64_t> offset) {
  if (!Write(ex, ctx, up.batch, up.source, &up.total)) return;
  metrics_.rejections.Add({{"reason", reason}}).Increment();
  nlohmann::json j = {{"error", reason},
                      {"detail", "line " + std::to_string(ctx.line) + ": " + detail},
                      {"line", ctx.line},
                      {"accepted", up.total.accepted},
                      {"last_seq", up.total.last_seq}};
  if (offset) j["offset"] = *offset;
  // replace: a detail quoting the client's bytes must never turn the answer (with accepted/last_seq, what a
  // client without an Idempotency-Key needs to resume) into a 500.
  ex.RespondJson(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// One line of the body. False when the request already got its answer. line_offset: its offset in the body.
bool IngestService::HandleLine(HttpExchange& ex, Ctx& ctx, Upload& up, std::string_view line, int64_t line_offset) {
  ++ctx.line;
  if (up.done) return true;  // after [DONE], ignore trailing lines
  if (auto bad = FirstInvalidUtf8(line)) {
    int64_t at = line_offset + static_cast<int64_t>(*bad);
    FailLine(ex, ctx, up, 400, "invalid_utf8", "byte " + std::to_string(at) + " of the body is not valid UTF-8", at);
    return false;
  }
  if (!(up.sse ? AddSseLine(ex, ctx, up, line) : AddNdjsonLine(ex, ctx, up, line))) return false;
  if (up.batch.size() >= kBatchChunks || up.batch_bytes >= kBatchBytes) {
    // Appended as the body streams in: a long stream is durable line by line, not at the end.
    if (!Write(ex, ctx, up.batch, up.source, &up.total)) return false;
    up.batch_bytes = 0;
  }
  return true;
}

bool IngestService::AddSseLine(HttpExchange& ex, Ctx& ctx, Upload& up, std::string_view line) {
  auto l = ParseSseLine(line);
  if (!l.ok()) {
    FailLine(ex, ctx, up, 400, "malformed_line", l.status().message());
    return false;
  }
  if (l->kind == SseLine::Kind::kDone) {
    // The FINISH at once, not at the body's end: nothing that follows [DONE] can keep it from being written.
    if (!Write(ex, ctx, up.batch, up.source, &up.total)) return false;
    up.done = true;
    return AppendStreamTotal(ex, ctx, up);
  }
  if (l->kind == SseLine::Kind::kSkip) return true;
  if (static_cast<int64_t>(l->text.size()) > config_.max_chunk_bytes) {
    FailLine(ex, ctx, up, 413, "chunk_too_large", "delta exceeds " + std::to_string(config_.max_chunk_bytes) + " bytes");
    return false;
  }
  up.batch_bytes += l->text.size();
  up.batch.push_back({std::nullopt, std::move(l->text), false, 0, false, ctx.LineKey()});
  return true;
}

bool IngestService::AddNdjsonLine(HttpExchange& ex, Ctx& ctx, Upload& up, std::string_view line) {
  if (line.empty() || line == "\r") return true;
  auto in = ParseChunkJson(line);
  if (!in.ok()) {
    FailLine(ex, ctx, up, 400, "malformed_line", in.status().message());
    return false;
  }
  Status lim = CheckChunk(config_, *in);
  if (!lim.ok()) {
    bool big = lim.code() == StatusCode::kResourceExhausted;
    FailLine(ex, ctx, up, big ? 413 : 400, big ? "chunk_too_large" : "invalid_chunk", lim.message());
    return false;
  }
  up.batch_bytes += in->data.size();
  up.batch.push_back({in->seq, std::move(in->data), in->final, in->total_chunks, false, ctx.LineKey()});
  return true;
}

// The provider's stream ended ([DONE]): the total is every seq this generation was given.
bool IngestService::AppendStreamTotal(HttpExchange& ex, Ctx& ctx, Upload& up) {
  auto next = redis_->Command({"HGET", writer_.keys().ControlKey(ctx.gen), "next_seq"});
  if (!next.ok()) {
    Reject(ex, 503, "redis_unavailable", next.status().message(), {{"Retry-After", "1"}});
    return false;
  }
  int64_t n = next->AsInt();
  if (n <= 0) return true;
  std::vector<PendingChunk> fin = {{std::nullopt, "", false, n, true, ""}};
  AppendResult ignore;
  return Write(ex, ctx, fin, up.source, &ignore);
}

void IngestService::HandleFinish(HttpExchange& ex, Ctx& ctx) {
  auto body = ex.ReadBody(64 * 1024);
  if (!body.ok()) {
    RejectBody(ex, body.status());
    return;
  }
  if (RejectNonUtf8(ex, *body)) return;
  auto parsed = ParseJsonInput(*body);
  nlohmann::json j = parsed.ok() ? std::move(*parsed) : nlohmann::json();
  if (!parsed.ok() || !j.is_object() || !j.contains("total_chunks") || !j["total_chunks"].is_number_integer() ||
      j["total_chunks"].get<int64_t>() <= 0 || j["total_chunks"].get<int64_t>() > config_.max_chunks_per_generation) {
    Reject(ex, 400, "invalid_finish",
           "expected {\"total_chunks\": N} with 0 < N <= " + std::to_string(config_.max_chunks_per_generation));
    return;
  }
  int64_t n = j["total_chunks"].get<int64_t>();
  std::vector<PendingChunk> fin = {{std::nullopt, "", false, n, true, ""}};
  AppendResult ignore;
  // No key needed: a finish with the total of an earlier one is a retry, and is not appended again.
  if (!Write(ex, ctx, fin, "ingest-finish", &ignore)) return;
  ex.RespondJson(202, nlohmann::json{{"total_chunks", n}}.dump());
}

void IngestService::HandleProgress(HttpExchange& ex, Ctx& ctx) {
  std::optional<int64_t> scenario;
  if (ctx.gen.scenario > 0) scenario = ctx.gen.scenario;
  auto p = writer_.Progress(*redis_, ctx.gen.org, ctx.gen.gen, scenario);
  if (!p.ok()) {
    if (p.status().code() == StatusCode::kNotFound) {
      Reject(ex, 404, "not_found", p.status().message());
    } else {
      Reject(ex, 503, "redis_unavailable", p.status().message(), {{"Retry-After", "1"}});
    }
    return;
  }
  ex.RespondJson(200, *p);
}

void IngestService::HandleStart(HttpExchange& ex, Ctx& ctx) {
  if (MediaType(ex.Header("Content-Type")) != "application/json") {
    Reject(ex, 415, "unsupported_media_type", "Content-Type must be application/json");
    return;
  }
  auto body = ex.ReadBody(static_cast<size_t>(config_.max_body_bytes));
  if (!body.ok()) {
    RejectBody(ex, body.status());
    return;
  }
  if (RejectNonUtf8(ex, *body)) return;
  auto req = ParseGenerationRequest(ctx.gen.org, *body);
  if (!req.ok()) {
    Reject(ex, 400, "invalid_generation", req.status().message());
    return;
  }
  if (req->scenario_id == 0) req->scenario_id = ctx.gen.scenario;  // ?scenario_id= like the other routes
  if (req->source.empty()) req->source = "api";
  // Redis only (id from INCR, task XADD): the worker that runs generation.run creates the SQL row.
  auto started = StartGeneration(*redis_, config_, *req, WallClockMs(), ctx.idempotency_key);
  if (!started.ok()) {
    const Status& s = started.status();
    if (s.code() == StatusCode::kAlreadyExists) {
      Reject(ex, 409, "idempotency_key_reused", s.message());
    } else if (s.retryable()) {
      Reject(ex, 503, "redis_unavailable", s.message(), {{"Retry-After", "1"}});
    } else {
      Reject(ex, 500, "internal", s.message());
    }
    return;
  }
  std::string gen = std::to_string(started->generation_id);
  std::string org = std::to_string(ctx.gen.org);
  ex.RespondJson(202, nlohmann::json{{"generation_id", started->generation_id},
                                     {"organization_id", ctx.gen.org},
                                     {"scenario_id", req->scenario_id > 0 ? nlohmann::json(req->scenario_id)
                                                                          : nlohmann::json(nullptr)},
                                     {"task_id", started->task_id},
                                     {"progress", "/v1/orgs/" + org + "/generations/" + gen + "/progress"}}
                          .dump(),
                 started->replayed ? std::vector<std::pair<std::string, std::string>>{{"Idempotent-Replayed", "true"}}
                                   : std::vector<std::pair<std::string, std::string>>{});
}

void IngestService::HandleGeneration(HttpExchange& ex, Ctx& ctx) {
  if (store_ == nullptr) {
    Reject(ex, 503, "database_unavailable", "this ingest has no database configured", {{"Retry-After", "5"}});
    return;
  }
  auto r = GetCachedGeneration(cache_, *store_, ctx.gen.org, ctx.gen.gen);
  if (!r.ok()) {
    const Status& s = r.status();
    if (s.code() == StatusCode::kNotFound) {
      Reject(ex, 404, "not_found", s.message());
    } else if (s.retryable()) {
      db_health_.Report(s, "read generation");
      Reject(ex, 503, "database_unavailable", s.message(), {{"Retry-After", "1"}});
    } else {
      Reject(ex, 500, "internal", s.message());
    }
    return;
  }
  if (r->tier == CacheTier::kOrigin) db_health_.Report(Status::Ok(), "read generation");
  auto charge = ChargeAnswer(ex, ctx.gen.org, r->value.size());
  if (!charge) return;
  ex.HoldUntilWritten(std::move(charge));
  // X-Cache says which tier answered (redis, filesystem, origin or stale): useful when debugging freshness.
  ex.RespondJson(200, r->value, {{"X-Cache", CacheTierName(r->tier)}});
}

std::shared_ptr<void> IngestService::ChargeAnswer(HttpExchange& ex, int64_t org, size_t bytes) {
  AnswerBudget::Admission a = answers_.Admit(org, static_cast<int64_t>(bytes));
  if (a.charge) return std::make_shared<AnswerBudget::Charge>(std::move(a.charge));
  // Retry-After 5: the answers in the way leave at their clients' pace (a keep-alive timeout for one that
  // reads nothing), not within a second.
  if (a.refused == AnswerBudget::Refusal::kOrganization) {
    Reject(ex, 429, "too_many_requests",
           "organization " + std::to_string(org) + " already has answers of up to " +
               std::to_string(answers_.org_max_bytes()) +
               " bytes waiting for its clients to read them on this server (half of INGEST_MAX_QUEUED_ANSWER_BYTES)",
           {{"Retry-After", "5"}});
  } else {
    Reject(ex, 503, "answer_budget_exhausted",
           "this server holds answers of up to " + std::to_string(answers_.max_bytes()) +
               " bytes that their clients have not read yet (INGEST_MAX_QUEUED_ANSWER_BYTES); retry shortly or on "
               "another replica",
           {{"Retry-After", "5"}});
  }
  return nullptr;
}

}  // namespace streamfleet::ingest
