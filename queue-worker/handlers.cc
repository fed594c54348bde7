#include "queue-worker/handlers.h"

#include <fnmatch.h>

#include <nlohmann/json.hpp>

#include "streamfleet/chunks/chunk_buffer.h"
#include "streamfleet/cache/generation_cache.h"
#include "streamfleet/base/json_input.h"

namespace streamfleet::worker {

StatusOr<nlohmann::json> TaskContext::PayloadJson() const {
  if (task.payload().empty()) return nlohmann::json::object();
  JsonLimits limits;
  limits.max_bytes = kMaxTaskPayloadBytes;
  auto j = ParseJsonInput(task.payload(), limits);
  if (!j.ok()) return Status::InvalidArgument("payload: " + j.status().message());
  return j;
}

const Handler* HandlerRegistry::Find(const std::string& type) const {
  auto it = handlers_.find(type);
  if (it != handlers_.end()) return &it->second;
  for (const auto& [glob, h] : patterns_) {
    if (fnmatch(glob.c_str(), type.c_str(), 0) == 0) return &h;
  }
  return nullptr;
}

RetryPolicy HandlerRegistry::Policy(const std::string& type, const Config& config) const {
  if (auto it = config.task_policies.find(type); it != config.task_policies.end()) return it->second;
  if (auto it = policies_.find(type); it != policies_.end()) return it->second;
  return RetryPolicy{config.task_max_attempts, config.task_backoff_base_ms, config.task_backoff_cap_ms};
}

void RegisterBuiltins(HandlerRegistry& registry, Clock& clock) {
  registry.Register("noop", [](TaskContext&) { return Status::Ok(); });

  // The apps' compact:generation command: finalize a generation now from its Redis buffer (the compactors do it).
  registry.Register("generation.compact", [&clock](TaskContext& ctx) {
    auto parsed = ctx.PayloadJson();
    if (!parsed.ok()) return parsed.status();
    nlohmann::json& j = *parsed;
    // scenario_id of another type threw out of j.value (a type error: retried as an internal error, not
    // dead-lettered at once with this message).
    if (!j.is_object() || !j.value("organization_id", nlohmann::json()).is_number_integer() ||
        !j.value("generation_id", nlohmann::json()).is_number_integer() ||
        !j.value("scenario_id", nlohmann::json(0)).is_number_integer()) {
      return Status::InvalidArgument("payload must be {\"organization_id\": N, \"generation_id\": N, \"scenario_id\": N?}");
    }
    GenerationId g{j["organization_id"].get<int64_t>(), j.value("scenario_id", int64_t{0}),
                   j["generation_id"].get<int64_t>()};
    ChunkBuffer buffer(ctx.config, clock);
    Status s = buffer.QueueFinalize(ctx.redis, g, "manual");
    if (s.ok()) ctx.result = "finalization queued for " + KeySchema::Member(g);
    return s;
  });
}

void RegisterCacheHandlers(HandlerRegistry& registry, Cache& cache, SqlStore* store) {
  registry.Register("cache.flush", [&cache](TaskContext& ctx) {
    auto parsed = ctx.PayloadJson();
    if (!parsed.ok()) return parsed.status();
    nlohmann::json& j = *parsed;
    auto is_str = [&](const char* f) { return j.is_object() && j.contains(f) && j[f].is_string(); };
    int given = is_str("key") + is_str("name") + is_str("pattern");
    if (given != 1) {
      return Status::InvalidArgument("payload must be one of {\"key\": K}, {\"name\": N}, {\"pattern\": P}");
    }
    StatusOr<int64_t> n = is_str("key")    ? cache.InvalidateKey(j["key"].get<std::string>())
                          : is_str("name") ? cache.InvalidateName(j["name"].get<std::string>())
                                           : cache.InvalidatePattern(j["pattern"].get<std::string>());
    if (!n.ok()) return n.status();
    ctx.result = std::to_string(*n) + " keys deleted";
    return Status::Ok();
  });

  registry.Register("cache.warm", [&cache, store](TaskContext& ctx) {
    auto parsed = ctx.PayloadJson();
    if (!parsed.ok()) return parsed.status();
    nlohmann::json& j = *parsed;
    if (!j.is_object() || !j.contains("generations") || !j["generations"].is_array() ||
        !j.value("force", nlohmann::json(false)).is_boolean()) {
      return Status::InvalidArgument(
          "payload must be {\"generations\": [{\"organization_id\": N, \"generation_id\": N}, ...], \"force\": false}");
    }
    if (store == nullptr) return Status::FailedPrecondition("cache.warm needs a database (DATABASE_URL)");
    GetOptions opts;
    opts.force_refresh = j.value("force", false);
    int64_t loaded = 0, cached = 0, missing = 0;
    for (const auto& g : j["generations"]) {
      if (!g.is_object() || !g.value("organization_id", nlohmann::json()).is_number_integer() ||
          !g.value("generation_id", nlohmann::json()).is_number_integer()) {
        return Status::InvalidArgument("each generation needs integer organization_id and generation_id");
      }
      auto r = GetCachedGeneration(cache, *store, g["organization_id"].get<int64_t>(),
                                   g["generation_id"].get<int64_t>(), opts);
      if (!r.ok() && r.status().code() == StatusCode::kNotFound) {
        ++missing;  // nothing to warm; not an error worth a retry
        continue;
      }
      if (!r.ok()) return r.status();  // retried with backoff; rows already warm are hits next time
      ++(r->tier == CacheTier::kOrigin ? loaded : cached);
    }
    ctx.result = std::to_string(loaded) + " loaded, " + std::to_string(cached) + " already cached, " +
                 std::to_string(missing) + " not found";
    return Status::Ok();
  });
}

}  // namespace streamfleet::worker
