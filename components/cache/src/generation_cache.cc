#include "streamfleet/cache/generation_cache.h"

#include <nlohmann/json.hpp>

#include "streamfleet/base/json_input.h"
#include "streamfleet/base/log.h"

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
  // A large answer is checked without being built and put in as stored: its DOM and its dump cost several
  // times its size (7x in all, measured on a GET of a 62 MB generation), for a value only passed on. As the
  // compactor does (kNormalizeMaxBytes): below it, re-serialized as before.
  const bool as_stored = row.llm_response && row.llm_response->size() > kSpliceResponseMinBytes &&
                         UsableAsSent(*row.llm_response) && CheckJsonInput(*row.llm_response, kGeneratedJsonLimits).ok();
  nlohmann::json j = {{"generation_id", row.id},
                      {"organization_id", row.organization_id},
                      {"scenario_id", row.scenario_id ? nlohmann::json(*row.scenario_id) : nlohmann::json(nullptr)},
                      {"llm_response", as_stored ? nlohmann::json(nullptr) : JsonOrNull(row.llm_response)},
                      {"metadata", JsonOrNull(row.metadata)},
                      {"chunk_count", row.chunk_count},
                      {"compacted_at", row.compacted_at ? nlohmann::json(*row.compacted_at) : nlohmann::json(nullptr)}};
  std::string value = j.dump();
  if (!as_stored) return value;
  // The keys are dumped sorted: chunk_count, compacted_at (a timestamp), generation_id come first, so the first
  // "llm_response":null is this key's, whatever metadata holds.
  const std::string placeholder = "\"llm_response\":null";
  const size_t at = value.find(placeholder) + placeholder.size() - 4;
  std::string out;
  out.reserve(value.size() - 4 + row.llm_response->size());
  out.append(value, 0, at).append(*row.llm_response).append(value, at + 4, std::string::npos);
  return out;
}

bool GenerationCacheValueIs(const std::string& value, int64_t org, int64_t gen) {
  // The value's keys are in nlohmann's order (sorted): chunk_count, compacted_at, generation_id,
  // llm_response, metadata, organization_id, scenario_id. So the first "generation_id" is the row's (what
  // comes before it is a number and a timestamp), and the last "organization_id" is (only scenario_id, a
  // number, follows it); a key inside llm_response or metadata comes between them. Not parsed: a cached
  // answer may be megabytes, and this runs on every hit.
  const std::string g = "\"generation_id\":" + std::to_string(gen) + ",";
  const std::string o = "\"organization_id\":" + std::to_string(org) + ",";
  auto at_g = value.find("\"generation_id\":");
  auto at_o = value.rfind("\"organization_id\":");
  return at_g != std::string::npos && at_o != std::string::npos && value.compare(at_g, g.size(), g) == 0 &&
         value.compare(at_o, o.size(), o) == 0;
}

StatusOr<CacheResult> GetCachedGeneration(Cache& cache, SqlStore& store, int64_t org, int64_t gen,
                                          GetOptions options) {
  auto compute = [&]() -> StatusOr<std::string> {
    auto row = store.ReadGeneration(gen, SqlStore::LargeColumns::kResponseOnly);  // `compacted` is not served
    if (!row.ok()) return row.status();
    // Another organization's row is "not found" to this one: ids are not secrets, rows are.
    if (!*row || (*row)->organization_id != org) {
      return Status::NotFound("no generation " + std::to_string(gen) + " in organization " + std::to_string(org));
    }
    return GenerationCacheValue(**row);
  };
  auto r = cache.GetOrCompute(kGenerationCacheName, GenerationCacheContent(org, gen), compute, options);
  if (r.ok() && r->tier != CacheTier::kOrigin && !GenerationCacheValueIs(r->value, org, gen)) {
    // The key holds 32 bits of a hash (ir_cache:generation_{hash8}, the key users know), so two generations
    // can share one, by chance or searched for by another organization: the entry is not this one's. Served
    // from the database, and left in place (it is the other generation's).
    SF_LOG_WARN("cache: the entry for generation {} of organization {} holds another generation's row "
                "(a key collision); read from the database",
                gen, org);
    auto v = compute();
    if (!v.ok()) return v.status();
    return CacheResult{std::move(*v), CacheTier::kOrigin};
  }
  return r;
}

}  // namespace streamfleet
