#pragma once
// What the fleet caches about a compacted generation, in one place: the cache entry (name "generation",
// content "{org}:{gen}" -> key ir_cache:generation_{hash8}) and the value (the JSON that
// GET /v1/orgs/{org}/generations/{gen} answers). ingest reads through it, the queue-worker's cache.warm fills
// it, and the compactor's finalizer invalidates it after a re-finalization writes the row.
#include <cstddef>
#include <cstdint>
#include <string>

#include "streamfleet/cache/cache.h"
#include "streamfleet/sql/sql_store.h"

namespace streamfleet {

inline constexpr const char* kGenerationCacheName = "generation";
// Deterministic from the ids alone, so an invalidating process needs nothing but the ids.
std::string GenerationCacheContent(int64_t org, int64_t gen);

// {"generation_id", "organization_id", "scenario_id", "llm_response", "metadata", "chunk_count",
// "compacted_at"}; llm_response and metadata as JSON (not strings), null when absent or unparsable.
// llm_response above kSpliceResponseMinBytes is put in as stored (checked, not re-serialized).
inline constexpr size_t kSpliceResponseMinBytes = size_t{1} << 20;
std::string GenerationCacheValue(const GenerationRow& row);

// Whether a cached value is the row of generation gen of organization org (a 32-bit key can be another's).
bool GenerationCacheValueIs(const std::string& value, int64_t org, int64_t gen);

// The cached value for a generation of org, loaded from the store on a miss. kNotFound when there is no row
// or it belongs to another organization (nothing is cached then). A cached entry holding another
// generation's row (a key collision) is not served: the store's row is.
StatusOr<CacheResult> GetCachedGeneration(Cache& cache, SqlStore& store, int64_t org, int64_t gen,
                                          GetOptions options = {});

}  // namespace streamfleet
