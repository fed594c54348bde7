#pragma once
// The request that starts a provider generation (ingest's POST /v1/orgs/{org}/generations,
// `streamfleetctl generate`, the queue-worker's generation.run): its validation and the task payload both
// sides agree on. Pure functions (streamfleet::chunk_wire, fuzzed); the start itself is generation_start.h.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "streamfleet/base/status.h"

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

}  // namespace streamfleet
