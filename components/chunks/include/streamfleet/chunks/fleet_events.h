#pragma once
// The events stream (KeySchema::EventsStream, field "e": a streamfleet.v1.Event) as JSON, for the
// webhook forwarder and the live events route, and the XADDs that write lifecycle events. docs/live.md
// lists the types and their fields.
#include <cstdint>
#include <string>
#include <vector>

#include "streamfleet/base/keys.h"
#include "streamfleet/base/status.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

struct FleetEvent {
  std::string type;  // "generation.compacted" | "generation.started" | "generation.failed"
  int64_t org = 0;
  int64_t gen = 0;
  std::string json;  // {"type", "event_id", "organization_id", "scenario_id", "generation_id", ...}
  // generation.compacted only
  int64_t chunk_count = 0;
  bool json_valid = false;
  std::string trigger;
  uint32_t attempt = 0;  // which start of the generation's text was compacted
  // generation.failed only
  std::string reason;
};

// kInvalidArgument for an entry that is not a known event.
StatusOr<FleetEvent> DecodeFleetEvent(const StreamEntry& entry);

// Bounded like the compacted events (MAXLEN ~ EVENTS_MAXLEN): the stream is a retention window, not an archive.
std::vector<std::string> GenerationStartedCommand(const KeySchema& keys, const GenerationId& g, int64_t at_ms);
std::vector<std::string> GenerationFailedCommand(const KeySchema& keys, const GenerationId& g,
                                                 const std::string& reason, int64_t at_ms);

}  // namespace streamfleet
