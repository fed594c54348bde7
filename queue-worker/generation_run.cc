#include "queue-worker/generation_run.h"

#include "streamfleet/chunks/fleet_events.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "queue-worker/provider_client.h"
#include "streamfleet/chunks/chunk_writer.h"
#include "streamfleet/chunks/generation_owner.h"
#include "streamfleet/chunks/generation_request.h"
#include "streamfleet/base/json_input.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_keys.h"

namespace streamfleet::worker {

namespace {

constexpr const char* kSource = "provider";  // ChunkEnvelope.source of everything this handler appends
// How long a recorded outcome waits for a delivery of its task to write it: longer than any retry backoff.
constexpr int64_t kOutcomeTtlS = 86400;

bool FinalStatus(const std::string& s) { return s == "completed" || s == "failed" || s == "silent"; }

nlohmann::json Usage(const StreamResult& r) {
  if (!r.usage) return nullptr;
  nlohmann::json u = nlohmann::json::object();
  for (const char* k : {"prompt_tokens", "completion_tokens", "total_tokens"}) {
    if (r.usage->contains(k)) u[k] = (*r.usage)[k];
  }
  return u;
}

// One attempt of one generation: the row, the stream, the outcome.
class Run {
 public:
  Run(TaskContext& ctx, SqlStore& store, const GenerationRequest& req, bool last_attempt)
      : ctx_(ctx),
        store_(store),
        req_(req),
        gen_{req.organization_id, req.scenario_id, req.generation_id},
        writer_(ctx.config),
        last_attempt_(last_attempt) {}

  Status Execute() {
    auto row = store_.ReadGeneration(gen_.gen, SqlStore::LargeColumns::kNeither);  // its owner and metadata
    if (!row.ok()) return row.status();
    if (!row->has_value()) {
      // No row yet: the id must still be this organization's to take (a task enqueued by hand or by the CLI
      // for an id another organization streams into would otherwise create the row first).
      SF_RETURN_IF_ERROR(
          ClaimGeneration(ctx_.redis, writer_.keys(), gen_.org, gen_.gen, ctx_.config.owner_ttl_s));
    } else {
      const GenerationRow& r = **row;
      if (r.organization_id != gen_.org) return OwnedElsewhereError(gen_.gen);
      auto md = ParseJsonInput(r.metadata, kGeneratedJsonLimits);
      std::string status = md.ok() && md->is_object() ? md->value("status", "") : "";
      if (FinalStatus(status)) {
        ctx_.result = "already " + status;  // a redelivery after the generation finished
        return Status::Ok();
      }
    }
    // An earlier delivery of this task streamed the whole answer and failed (or died) before its row said so:
    // write what it recorded rather than pay for the answer again. Its FINISH marker, if it did not get out,
    // is not needed: the idle timeout finalizes the chunks.
    auto recorded = ctx_.redis.Command({"GET", OutcomeKey()});
    if (!recorded.ok()) return recorded.status();
    if (!recorded->is_nil()) {
      auto md = ParseJsonInput(recorded->str, kGeneratedJsonLimits);
      if (md.ok() && md->is_object()) {
        SF_LOG_INFO("generation.run {}: writing the outcome an earlier attempt recorded", gen_.gen);
        return WriteOutcome(*md);
      }
    }
    std::string model = req_.model.empty() ? ctx_.config.provider_model : req_.model;
    nlohmann::json initial = {
        {"used_instruction", {{"content", req_.content}, {"source", req_.source}, {"language", req_.language}}},
        {"initiator", req_.initiator},
        {"provider", ctx_.config.provider_name},
        {"model", model},
        {"status", "running"},
        {"provider_attempt", ctx_.task.attempt() + 1}};
    SF_RETURN_IF_ERROR(store_.MergeGenerationMetadata(gen_.gen, gen_.org, gen_.scenario, initial.dump()));
    // What an earlier attempt (a retry, or a worker that died mid-stream) wrote must not mix with this one.
    SF_RETURN_IF_ERROR(writer_.Reset(ctx_.redis, gen_));
    if (ctx_.config.chunk_storage != ChunkStorage::kRedis) {
      // GENERATION_CHUNK_STORAGE=db|both: the earlier attempt's chunks are rows too (all applied: the reset
      // waited for that), and the finalizer prefers a stored chunk to the buffer's for the same seq.
      SF_RETURN_IF_ERROR(store_.DeleteChunksOf(gen_.gen, gen_.org).status());
    }
    if (row->has_value() && (*row)->chunk_count > 0) {
      // The idle timeout finalized what an earlier attempt wrote before it died. This attempt starts again
      // at seq 0 and may write fewer chunks, and the row only takes a text that holds all of its chunks:
      // say it holds none of this attempt's (seq_runs []), so this attempt's text replaces it.
      SF_RETURN_IF_ERROR(store_.MergeGenerationMetadata(gen_.gen, gen_.org, gen_.scenario, R"({"seq_runs":[]})"));
    }

    ProviderOptions provider = ProviderOptions::FromConfig(ctx_.config);
    provider.cancelled = ctx_.cancelled;
    auto streamed = StreamChat(provider, model, req_.content,
                               [this](std::vector<std::string>& deltas) { return Append(deltas); });
    // Cancelled (its timeout passed, its lease was lost): the attempt is over and a successor may already be
    // streaming into this generation, so no FINISH with this attempt's total and no outcome. Only the last
    // attempt says failed in the row, so the generation is not left "running".
    if (ctx_.Cancelled()) {
      Status s = streamed.ok() ? Status::DeadlineExceeded("the attempt was cancelled after its stream ended")
                               : streamed.status();
      return last_attempt_ ? Failed(s, /*finish=*/false) : s;
    }
    if (!streamed.ok()) return Failed(streamed.status());
    const StreamResult& r = *streamed;
    if (r.end != StreamEnd::kDone && written_ == 0) {
      // Nothing is in the buffer: as good as never started, so retry like a connect failure.
      return Failed(Status::Unavailable("provider stream ended before any content: " + r.detail));
    }
    nlohmann::json md = {{"usage", Usage(r)}, {"malformed_events", r.malformed_events}, {"provider_chunks", written_}};
    bool finish = true;  // a FINISH marker with the total written
    switch (r.end) {
      case StreamEnd::kDone:
        md["status"] = "completed";
        md["error"] = nullptr;
        break;
      case StreamEnd::kSilent:
        // No FINISH marker: the compactor's idle timeout finalizes what arrived (finalize_trigger
        // idle_timeout), as for any producer that stopped talking.
        finish = false;
        md["status"] = "silent";
        md["error"] = "provider went silent after " + std::to_string(written_) + " chunks: " + r.detail;
        break;
      case StreamEnd::kCut:
        std::string why = "provider stream cut after " + std::to_string(written_) + " chunks: " + r.detail;
        if (ctx_.config.provider_retry_from_scratch && !last_attempt_) {
          // Best effort now (usually the compactor has applied everything within a few ms); if not, the next
          // attempt's Reset waits for it. Either way the retry starts at seq 0 on an empty buffer.
          Status reset = Status::Unavailable("");
          for (int i = 0; i < 40 && !(reset = writer_.Reset(ctx_.redis, gen_)).ok(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
          (void)store_.MergeGenerationMetadata(gen_.gen, gen_.org, gen_.scenario,
                                               nlohmann::json{{"status", "retrying"}, {"error", why}}.dump());
          return Status::Unavailable(why + " (retrying from scratch)");
        }
        // Finalize what arrived, never leave it hanging: the total is what was written.
        md["status"] = "failed";
        md["error"] = why;
        break;
    }
    // The answer is paid for: from here on a redelivery must not ask the provider again. The outcome is
    // recorded before the FINISH marker, and given up only once the row says it (WriteOutcome).
    auto record = ctx_.redis.Command({"SET", OutcomeKey(), md.dump(), "EX", std::to_string(kOutcomeTtlS)});
    if (!record.ok()) return record.status();
    if (finish) SF_RETURN_IF_ERROR(Finish());
    return WriteOutcome(md);
  }

 private:
  Status Append(std::vector<std::string>& deltas) {
    // Nothing more once the attempt is cancelled: its retry starts the text over at seq 0, and this
    // attempt's chunks would land in the same buffer.
    if (ctx_.Cancelled()) return Status::DeadlineExceeded("the attempt was cancelled: provider stream stopped");
    std::vector<PendingChunk> batch;
    batch.reserve(deltas.size());
    for (auto& d : deltas) batch.push_back({std::nullopt, std::move(d), false, 0, false, ""});
    auto r = writer_.Append(ctx_.redis, gen_, batch, kSource);
    if (!r.ok()) return r.status();
    written_ += r->accepted;
    return Status::Ok();
  }

  // Where an attempt whose stream ended keeps its outcome (the row's final metadata) until the row says it.
  // Under the task's own key prefix, which the worker's ACL grants.
  std::string OutcomeKey() const { return TaskKeys::FromConfig(ctx_.config).Status(ctx_.task.id()) + ":generation"; }

  // The row's final metadata: tried a few times in this attempt (a database blip), then left recorded for
  // the next delivery of the task, which writes it without streaming again.
  Status WriteOutcome(const nlohmann::json& md) {
    Status s = store_.MergeGenerationMetadata(gen_.gen, gen_.org, gen_.scenario, md.dump());
    for (int wait_ms : {250, 500, 1000}) {
      if (s.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
      s = store_.MergeGenerationMetadata(gen_.gen, gen_.org, gen_.scenario, md.dump());
    }
    if (!s.ok()) return s;
    (void)ctx_.redis.Command({"DEL", OutcomeKey()});
    const std::string status = md.value("status", "");
    if (status == "failed") PublishFailed(md.value("error", ""));
    ctx_.result = "generation " + std::to_string(gen_.gen) + " " + status + ", " +
                  std::to_string(md.value("provider_chunks", int64_t{0})) + " chunks";
    return Status::Ok();
  }

  Status Finish() {
    if (written_ == 0) return Status::Ok();  // an empty answer: no buffer to finalize
    std::vector<PendingChunk> fin = {{std::nullopt, "", false, written_, true, ""}};
    auto r = writer_.Append(ctx_.redis, gen_, fin, kSource);
    return r.ok() ? Status::Ok() : r.status();
  }

  // An error the worker will retry (or dead-letter). On the last attempt, and for errors that retrying
  // will not fix, the row says failed first, so the generation is never left "running".
  // finish=false: no FINISH marker (a cancelled attempt: the idle timeout finalizes what it wrote).
  Status Failed(const Status& s, bool finish = true) {
    bool final = last_attempt_ || !s.retryable();
    // provider_chunks: whether a text will come (a live stream of a generation with none ends at once).
    nlohmann::json md = {{"status", final ? "failed" : "retrying"}, {"error", s.ToString()}, {"provider_chunks", written_}};
    (void)store_.MergeGenerationMetadata(gen_.gen, gen_.org, gen_.scenario, md.dump());
    if (final && written_ > 0 && finish) (void)Finish();
    if (final && written_ == 0) (void)writer_.MarkFailed(ctx_.redis, gen_);  // else the FINISH ends it
    if (final) PublishFailed(s.ToString());
    return s;
  }

  // generation.failed, for the organization's live events (GET /v1/orgs/{org}/events) and the generation's
  // live streams; best effort, like the row's status written before it.
  void PublishFailed(const std::string& reason) {
    (void)ctx_.redis.Command(GenerationFailedCommand(KeySchema::FromConfig(ctx_.config), gen_, reason, WallClockMs()));
  }

  TaskContext& ctx_;
  SqlStore& store_;
  const GenerationRequest& req_;
  GenerationId gen_;
  ChunkWriter writer_;
  bool last_attempt_;
  int64_t written_ = 0;
};

}  // namespace

void RegisterGenerationRun(HandlerRegistry& registry, SqlStore* store) {
  InitProviderClient();
  registry.SetPolicy(kGenerationRunTask, RetryPolicy{6, 2000, 60000});
  registry.Register(kGenerationRunTask, [&registry, store](TaskContext& ctx) {
    auto req = ParseGenerationRunPayload(ctx.task.payload());
    if (!req.ok()) return req.status();
    if (store == nullptr) return Status::FailedPrecondition("generation.run needs a database (DATABASE_URL)");
    bool last = ctx.task.attempt() + 1 >= registry.Policy(kGenerationRunTask, ctx.config).max_attempts;
    Run run(ctx, *store, *req, last);
    Status s = run.Execute();
    if (!s.ok()) SF_LOG_WARN("generation.run {}: {}", req->generation_id, s.ToString());
    return s;
  });
}

}  // namespace streamfleet::worker
