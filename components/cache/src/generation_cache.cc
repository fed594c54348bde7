#include "streamfleet/cache/generation_cache.h"

#include <nlohmann/json.hpp>

#include "streamfleet/base/json_input.h"

namespace streamfleet {

namespace {

nlohmann::json JsonOrNull(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  auto j = ParseJsonInput(*text, kGeneratedJsonLimits);
  return j.ok() ? std::move(*j) : nlohmann::json(nullptr);
}

}  // namespace

std::string GenerationCacheContent(int64_t org, int64_t gen) {
  return std::to_string(org) + ":" + std::to_string(gen);
}

std::string GenerationCacheValue(const GenerationRow& row) {
  nlohmann::json j = {{"generation_id", row.id},
                      {"organization_id", row.organization_id},
                      {"scenario_id", row.scenario_id ? nlohmann::json(*row.scenario_id) : nlohmann::json(nullptr)},
                      {"llm_response", JsonOrNull(row.llm_response)},
                      {"metadata", JsonOrNull(row.metadata)},
                      {"chunk_count", row.chunk_count},
                      {"compacted_at", row.compacted_at ? nlohmann::json(*row.compacted_at) : nlohmann::json(nullptr)}};
  return j.dump();
}

StatusOr<CacheResult> GetCachedGeneration(Cache& cache, SqlStore& store, int64_t org, int64_t gen,
                                          GetOptions options) {
  return cache.GetOrCompute(
      kGenerationCacheName, GenerationCacheContent(org, gen),
      [&]() -> StatusOr<std::string> {
        auto row = store.GetGeneration(gen);
        if (!row.ok()) return row.status();
        // Another organization's row is "not found" to this one: ids are not secrets, rows are.
        if (!*row || (*row)->organization_id != org) {
          return Status::NotFound("no generation " + std::to_string(gen) + " in organization " + std::to_string(org));
        }
        return GenerationCacheValue(**row);
      },
      options);
}

}  // namespace streamfleet
