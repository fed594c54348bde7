#pragma once
// Starting a provider generation, one code path for ingest's POST /v1/orgs/{org}/generations,
// `streamfleetctl generate` and the queue-worker's generation.run: validation of the request, the task
// payload both sides agree on, and the start itself (allocate an id, enqueue the task). Redis only: the SQL
// row is created by the worker that runs the task, so ingest never needs the database to start one.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "streamfleet/common/config.h"
#include "streamfleet/common/redis.h"
#include "streamfleet/common/status.h"

namespace streamfleet {

inline constexpr const char* kGenerationRunTask = "generation.run";

struct GenerationRequest {
  int64_t organization_id = 0;
  int64_t scenario_id = 0;    // 0 = none
  int64_t generation_id = 0;  // 0 until StartGeneration allocates it
  // The instruction, stored as metadata.used_instruction {content, source, language}.
  std::string content;
  std::string source;
  std::string language;
  std::string model;           // "" = PROVIDER_MODEL
  nlohmann::json initiator;    // null, a string, an integer or an object: kept as given
};

// The body of POST /v1/orgs/{org}/generations:
//   {"instruction": {"content": "...", "source": "api", "language": "en"}, "scenario_id": 3,
//    "model": "gpt-4o-mini", "initiator": "user:7"}
// Only instruction.content is required (non-empty). kInvalidArgument says which field is wrong.
StatusOr<GenerationRequest> ParseGenerationRequest(int64_t org, std::string_view body);

// The generation.run task payload: the request as JSON, generation_id included.
std::string GenerationRunPayload(const GenerationRequest& r);
StatusOr<GenerationRequest> ParseGenerationRunPayload(std::string_view payload);

// The key generation ids are allocated from (INCR): "{STREAMFLEET_STREAM_PREFIX}:generation_ids". Apps
// that also number generations themselves should SET it above their highest id once.
std::string GenerationIdsKey(const Config& config);

struct StartedGeneration {
  int64_t generation_id = 0;
  std::string task_id;  // "generation-{id}": `streamfleetctl tasks show generation-59`
};

// Allocates the id (INCR) and enqueues generation.run on the "default" queue. req.generation_id is set.
// kUnavailable when Redis cannot be reached (an id may have been burned; ids are not required to be dense).
StatusOr<StartedGeneration> StartGeneration(RedisCommands& redis, const Config& config, GenerationRequest& req,
                                            int64_t now_ms);

}  // namespace streamfleet
