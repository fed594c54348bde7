#pragma once
// The ingest HTTP API (see docs/API.md): chunks in as JSON, NDJSON (streamed) or SSE, made durable in the
// chunk streams before the 2xx answer. HTTP is served by LoopHttpServer (one libuv loop + worker threads).
// A single JSON chunk (the hot path) is handled on the HTTP loop thread without blocking: HandleFast
// validates it and sends the append script through the shared AsyncRedis, whose callback answers 202.
// Every other request runs Handle on a worker thread; those share the same AsyncRedis connection, so
// concurrent requests' commands are pipelined to Redis together (on a Redis Cluster, which AsyncRedis does
// not speak, or over TLS, a pool of blocking clients instead, and every request takes the worker path). A
// background thread samples the backlog for backpressure on its own synchronous client.
// GET /v1/orgs/{org}/generations/{gen} answers the compacted row from the SQL store, cache-aside through the
// fleet's multi-tier cache (streamfleet/cache/cache.h); it is the only route that needs the database.
// POST /v1/orgs/{org}/generations starts a provider generation: an id and a generation.run task, in Redis.
// /v1/tasks is the task API (task_api.h), on the same worker threads and Redis connection.
// GET .../generations/{gen}/stream and GET /v1/orgs/{org}/events are live streams (live_routes.h).
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

#include "streamfleet/chunks/chunk_writer.h"
#include "ingest/answer_budget.h"
#include "ingest/live_routes.h"
#include "ingest/metrics.h"
#include "ingest/org_share.h"
#include "ingest/task_api.h"
#include "streamfleet/chunks/request_parsing.h"
#include "streamfleet/redis/async_redis.h"
#include "streamfleet/cache/cache.h"
#include "streamfleet/base/config.h"
#include "streamfleet/observability/dependency_health.h"
#include "streamfleet/http/loop_http_server.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/sql/sql_store.h"

namespace streamfleet::ingest {

class IngestService {
 public:
  // store: where GET .../generations/{gen} reads rows (nullptr: that route answers 503).
  IngestService(const Config& config, prometheus::Registry& registry, SqlStore* store = nullptr);
  ~IngestService();

  // Starts listening on INGEST_LISTEN (port 0 = any) and the backlog sampler.
  Status Start();
  // Stops accepting, finishes in-flight requests, stops the sampler. Idempotent.
  void Stop();
  int port() const { return http_ ? http_->port() : 0; }
  int64_t open_connections() const { return http_ ? http_->open_connections() : 0; }
  Status Ready();
  const DependencyHealth& redis_health() const { return redis_health_; }

  // One HTTP exchange on a worker thread (public for the server callback).
  void Handle(HttpExchange& ex);
  // On the HTTP loop thread, a request whose body is complete: takes single JSON chunks and tasks (sent on
  // fast_redis_ and answered from its callback on the same thread; over TLS or Sentinel on async_redis_), declines everything else (false: the
  // server runs Handle on a worker thread).
  bool HandleFast(const std::shared_ptr<HttpExchange>& ex);

 private:
  struct Ctx;
  using Clk = std::chrono::steady_clock;
  // /healthz and /readyz (any method): true when `ex` is one of them, answered.
  bool AnswerProbe(HttpExchange& ex);
  // Health routes, route/method checks, authorization, ?scenario_id=. Returns true when the route's handler
  // should run (ctx filled); false when it already answered.
  bool Admit(HttpExchange& ex, const Route& route, Ctx& ctx);
  // Backpressure and the declared body size for the chunk routes; false when it answered.
  bool AdmitChunks(HttpExchange& ex);
  // Reads, checks and parses a single JSON chunk body; nullopt when it answered (4xx).
  std::optional<PendingChunk> ReadJsonChunk(HttpExchange& ex, const Ctx& ctx);
  void RespondAccepted(HttpExchange& ex, const AppendResult& total);
  void RecordRequest(const char* route, const HttpExchange& ex, Clk::time_point started);
  void HandleChunks(HttpExchange& ex, Ctx& ctx);
  void HandleJsonChunk(HttpExchange& ex, Ctx& ctx);
  void HandleStreamed(HttpExchange& ex, Ctx& ctx, bool sse);
  struct Upload;
  bool ReadLines(HttpExchange& ex, Ctx& ctx, Upload& up);
  // Reads and drops the rest of a body whose SSE stream ended ([DONE]); body_bytes: read so far.
  void DrainBody(HttpExchange& ex, int64_t body_bytes, std::vector<char>& buffer);
  bool HandleLine(HttpExchange& ex, Ctx& ctx, Upload& up, std::string_view line, int64_t line_offset);
  bool AddSseLine(HttpExchange& ex, Ctx& ctx, Upload& up, std::string_view line);
  bool AddNdjsonLine(HttpExchange& ex, Ctx& ctx, Upload& up, std::string_view line);
  void FailLine(HttpExchange& ex, Ctx& ctx, Upload& up, int status, const std::string& reason,
                const std::string& detail, std::optional<int64_t> offset = std::nullopt);
  bool AppendStreamTotal(HttpExchange& ex, Ctx& ctx, Upload& up);
  void HandleFinish(HttpExchange& ex, Ctx& ctx);
  void HandleProgress(HttpExchange& ex, Ctx& ctx);
  void HandleGeneration(HttpExchange& ex, Ctx& ctx);
  // Charges an answer of `bytes` to the organization's share of INGEST_MAX_QUEUED_ANSWER_BYTES, to be held until
  // it is written (HttpExchange::HoldUntilWritten); null when it answered 429/503 instead.
  std::shared_ptr<void> ChargeAnswer(HttpExchange& ex, int64_t org, size_t bytes);
  // POST /v1/orgs/{org}/generations: validate, allocate the id, enqueue generation.run (Redis only).
  void HandleStart(HttpExchange& ex, Ctx& ctx);
  // Authorization for org; responds 401/403 and returns false when denied.
  bool Authorize(HttpExchange& ex, int64_t org);
  // Authorize, or on the live routes a signed link (?exp=&sig=, for browsers) instead of a bearer token.
  bool AuthorizeRoute(HttpExchange& ex, const Route& route);
  void Reject(HttpExchange& ex, int status, const std::string& reason, const std::string& detail,
              std::vector<std::pair<std::string, std::string>> headers = {});
  // Responds 413 body_too_large (kResourceExhausted) or 400 bad_body for a failed ReadBody.
  void RejectBody(HttpExchange& ex, const Status& s);
  // Responds 400 invalid_utf8 (with the byte offset) and returns true when body is not valid UTF-8.
  bool RejectNonUtf8(HttpExchange& ex, const std::string& body);
  // Appends through redis_; maps errors to HTTP answers. Returns false when it already responded.
  bool Write(HttpExchange& ex, Ctx& ctx, std::vector<PendingChunk>& batch, const char* source, AppendResult* total);
  // A generation.started event on the events stream (the append said it was the generation's first).
  void AnnounceStart(const GenerationId& gen);
  static std::string ConflictDetail(const std::string& redis_message);
  // Counts an append's outcome, or answers its error (409/413/503/500) and returns false.
  bool Written(HttpExchange& ex, const GenerationId& gen, const StatusOr<AppendResult>& r,
               const std::vector<PendingChunk>& batch,
               AppendResult* total);
  // The sampler thread's round: the chunk-stream backlog (backpressure), the open connections and the queued answers.
  void SampleGauges();

  const Config& config_;
  IngestMetrics metrics_;
  RequestMetrics request_metrics_{metrics_.requests, metrics_.request_seconds};
  DependencyHealth redis_health_;  // logs and counts outages; Ready() reads it
  DependencyHealth db_health_;     // only GET .../generations/{gen} reaches the database
  ChunkWriter writer_;
  std::unique_ptr<RedisCommands> redis_;  // AsyncRedis, or a PooledRedisCommands on a cluster or over TLS
  AsyncRedis* async_redis_;               // redis_ when it is an AsyncRedis, else nullptr
  // HandleFast's connection, hosted on the HTTP loop (plain TCP only; else HandleFast uses async_redis_):
  // created and closed on that loop's thread (LoopGuest), freed once the server has stopped.
  std::unique_ptr<AsyncRedis> fast_redis_;
  std::unique_ptr<RedisClient> sampler_redis_;  // only the sampler thread uses it
  SqlStore* store_;
  Cache cache_;
  TaskApi tasks_;  // /v1/tasks: on redis_, declared after it
  LiveRoutes live_;  // .../stream and .../events: its own Redis connections, the owner check on redis_
  // Before http_: the loop releases the charges of answers still being written when it stops.
  AnswerBudget answers_;  // INGEST_MAX_QUEUED_ANSWER_BYTES
  std::unique_ptr<LoopHttpServer> http_;
  OrgShare org_workers_;  // INGEST_ORG_MAX_WORKERS
  std::atomic<int64_t> backlog_{0};
  std::atomic<bool> stopping_{false};
  std::thread sampler_;
};

}  // namespace streamfleet::ingest
