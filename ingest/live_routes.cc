#include "ingest/live_routes.h"

#include <nlohmann/json.hpp>

#include "streamfleet/artifacts/artifact.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/live/sse_events.h"
#include "streamfleet/redis/stream_admin.h"

namespace streamfleet::ingest {

namespace {

// The row's facts a stream ends with (chunk count, json_valid, trigger), or its failure before any chunk
// (generation.run writes the status, and provider_chunks = 0 when nothing was streamed).
live::CompactedRow FactsOf(const GenerationRow& row, bool has_text) {
  live::CompactedRow out;
  out.chunk_count = row.chunk_count;
  auto md = nlohmann::json::parse(row.metadata, nullptr, false);
  if (!md.is_object()) return out;
  if (!has_text && md.value("status", nlohmann::json()) == "failed" &&
      md.value("provider_chunks", nlohmann::json(0)) == 0) {
    out.failed = true;
    auto error = md.find("error");
    out.error = error != md.end() && error->is_string() ? error->get<std::string>() : "";
    return out;
  }
  if (auto v = md.find("json_valid"); v != md.end() && v->is_boolean()) out.json_valid = v->get<bool>();
  if (auto t = md.find("finalize_trigger"); t != md.end() && t->is_string()) out.trigger = t->get<std::string>();
  return out;
}

// The hub reads a row for its facts (the buffer still holds the text) or, once the buffer is gone, for its
// text too; another organization's row is no row. The owner is read first, without the text: a generation may
// be 64 MiB, and another organization could otherwise have the hub's thread load one it may not see. A row
// whose text is in the object store (ARTIFACT_STORE) is read through it, digest checked.
live::RowReader RowsFrom(SqlStore* store, const Config& config) {
  if (store == nullptr) return nullptr;
  std::shared_ptr<ObjectStore> artifacts = OpenObjectStore(config);
  return [store, artifacts](int64_t org, int64_t gen, bool with_text) -> StatusOr<std::optional<live::CompactedRow>> {
    auto head = store->ReadGeneration(gen, SqlStore::LargeColumns::kNeither);
    if (!head.ok()) return head.status();
    if (!head->has_value() || (*head)->organization_id != org) return std::optional<live::CompactedRow>();
    if (!with_text) return std::optional<live::CompactedRow>(FactsOf(**head, true));
    auto row = store->ReadGeneration(gen, SqlStore::LargeColumns::kCompactedOnly);
    if (!row.ok()) return row.status();
    if (!row->has_value() || (*row)->organization_id != org) return std::optional<live::CompactedRow>();
    SF_RETURN_IF_ERROR(ResolveCompacted(artifacts.get(), **row));
    if (!(*row)->compacted) {
      live::CompactedRow facts = FactsOf(**row, false);
      if (facts.failed) return std::optional<live::CompactedRow>(std::move(facts));
      return std::optional<live::CompactedRow>();
    }
    auto text = Base64Decode(*(*row)->compacted);
    if (!text) return Status::Internal("generation " + std::to_string(gen) + ": compacted is not base64");
    live::CompactedRow out = FactsOf(**row, true);
    out.text = std::move(*text);
    return std::optional<live::CompactedRow>(std::move(out));
  };
}

// How long a browser may reuse a preflight's answer (Chromium caps it at 2 hours): a page's reconnects and
// resumes then cost no extra round trip, and a change of LIVE_CORS_ORIGINS reaches browsers within 10 minutes.
constexpr int kPreflightMaxAgeS = 600;

void RejectJson(HttpExchange& ex, int status, const std::string& error, const std::string& detail) {
  ex.RespondJson(status, JsonError(error, detail));
}

}  // namespace

LiveRoutes::LiveRoutes(const Config& config, RedisCommands& redis, SqlStore* store, prometheus::Registry& registry)
    : config_(config),
      redis_(redis),
      streams_(config.live_org_max_streams),
      hub_(config, live::LiveOptions::FromConfig(config), RowsFrom(store, config), &registry) {}

std::vector<std::pair<std::string, std::string>> LiveRoutes::CorsHeaders(const HttpExchange& ex) const {
  // A browser on an allowed origin may read the answers (an EventSource with a signed link, or fetch with a
  // token: no cookies either way, so no Allow-Credentials). Vary: a cache must not hand one origin's answer
  // to another.
  auto origin = ex.Header("Origin");
  if (!origin) return {};
  for (const auto& allowed : config_.live_cors_origins) {
    if (allowed == "*" || allowed == *origin) {
      return {{"Access-Control-Allow-Origin", allowed == "*" ? "*" : *origin}, {"Vary", "Origin"}};
    }
  }
  return {};
}

void LiveRoutes::HandlePreflight(HttpExchange& ex) {
  if (CorsHeaders(ex).empty()) {
    RejectJson(ex, 403, "origin_not_allowed",
               "a CORS preflight is answered for the origins in LIVE_CORS_ORIGINS only; Origin: " +
                   ex.Header("Origin").value_or("(none)"));
    return;
  }
  // The Access-Control-Allow-Origin and Vary headers are the exchange's (CorsHeaders). Last-Event-ID: a
  // fetch-based client resumes with it, and it is not a CORS-safelisted header.
  ex.Respond(204, "text/plain", "",
             {{"Access-Control-Allow-Methods", "GET"},
              {"Access-Control-Allow-Headers", "Authorization, Last-Event-ID"},
              {"Access-Control-Max-Age", std::to_string(kPreflightMaxAgeS)}});
}

std::shared_ptr<HttpStream> LiveRoutes::Open(HttpExchange& ex, int64_t org, std::shared_ptr<void>* hold) {
  OrgShare::Slot slot = streams_.Acquire(org);
  if (!slot) {
    // At once, not queued. A browser's EventSource does not retry a 429 (it fails, and the page's onerror
    // decides); a fetch-based client waits Retry-After.
    ex.RespondJson(429,
                   JsonError("too_many_streams", "organization " + std::to_string(org) + " has " +
                                                     std::to_string(streams_.max()) +
                                                     " live streams open on this server (LIVE_ORG_MAX_STREAMS)"),
                   {{"Retry-After", "5"}});
    return nullptr;
  }
  // no-store: a cache must not replay a live stream; X-Accel-Buffering: nginx would hold the events back.
  // The CORS headers are the exchange's (CorsHeaders), as on every other answer of these routes.
  auto stream = ex.StartStream(200, "text/event-stream; charset=utf-8",
                               {{"Cache-Control", "no-store"}, {"X-Accel-Buffering", "no"}});
  if (!stream) {
    RejectJson(ex, 501, "not_implemented", "this server cannot stream answers");
    return nullptr;
  }
  *hold = std::make_shared<OrgShare::Slot>(std::move(slot));
  return stream;
}

void LiveRoutes::HandleGenerationStream(HttpExchange& ex, int64_t org, int64_t gen) {
  auto resume = live::ParseResume(ex.Header("Last-Event-ID"), ex.QueryParam("from_seq"), ex.QueryParam("attempt"));
  if (!resume.ok()) {
    RejectJson(ex, 400, "invalid_resume_point", resume.status().message());
    return;
  }
  if (resume->ended) {
    // The client saw the compacted event: nothing more will come. 204 stops an EventSource reconnecting.
    ex.Respond(204, "text/plain", "");
    return;
  }
  // Another organization's generation id is not this organization's generation: 404, as for the row.
  KeySchema keys = KeySchema::FromConfig(config_);
  auto owner = redis_.Command({"GET", keys.OwnerKey(gen)});
  if (!owner.ok()) {
    ex.RespondJson(503, JsonError("redis_unavailable", owner.status().message()), {{"Retry-After", "1"}});
    return;
  }
  if (!owner->is_nil() && owner->str != std::to_string(org)) {
    RejectJson(ex, 404, "not_found", "no generation " + std::to_string(gen) + " in organization " + std::to_string(org));
    return;
  }
  std::shared_ptr<void> hold;
  if (auto stream = Open(ex, org, &hold)) hub_.WatchGeneration(std::move(stream), org, gen, *resume, std::move(hold));
}

void LiveRoutes::HandleEvents(HttpExchange& ex, int64_t org) {
  std::string after;
  if (auto last = ex.Header("Last-Event-ID"); last && !last->empty()) {
    after = *last;
  } else if (auto q = ex.QueryParam("after"); q && !q->empty()) {
    after = *q;
  }
  if (!after.empty() && after != "0" && !ValidStreamId(after)) {
    RejectJson(ex, 400, "invalid_resume_point",
               "Last-Event-ID (or ?after=) must be an event id such as 1733212800000-0, or 0 for the whole retention window");
    return;
  }
  if (after == "0") after = "0-0";
  std::shared_ptr<void> hold;
  if (auto stream = Open(ex, org, &hold)) hub_.WatchEvents(std::move(stream), org, after, std::move(hold));
}

}  // namespace streamfleet::ingest
