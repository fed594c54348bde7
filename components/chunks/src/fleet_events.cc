#include "streamfleet/chunks/fleet_events.h"

#include <nlohmann/json.hpp>

#include "streamfleet/v1/event.pb.h"

namespace streamfleet {

namespace {

nlohmann::json Ids(const std::string& type, const std::string& event_id, int64_t org, int64_t scenario, int64_t gen) {
  return {{"type", type},
          {"event_id", event_id},
          {"organization_id", org},
          {"scenario_id", scenario},
          {"generation_id", gen}};
}

std::vector<std::string> EventXadd(const KeySchema& keys, const char* type, const v1::Event& ev) {
  return {"XADD", keys.EventsStream(), "MAXLEN", "~", keys.EventsMaxlen(), "*", "type", type, "e",
          ev.SerializeAsString()};
}

}  // namespace

StatusOr<FleetEvent> DecodeFleetEvent(const StreamEntry& entry) {
  const std::string* raw = entry.Field("e");
  v1::Event ev;
  if (raw == nullptr || !ev.ParseFromString(*raw)) return Status::InvalidArgument("undecodable v1::Event");
  FleetEvent out;
  nlohmann::json j;
  if (ev.has_generation_compacted()) {
    const auto& g = ev.generation_compacted();
    out.type = "generation.compacted";
    out.org = g.organization_id();
    out.gen = g.generation_id();
    out.chunk_count = g.chunk_count();
    out.json_valid = g.json_valid();
    out.trigger = g.trigger();
    out.attempt = g.attempt();
    j = Ids(out.type, entry.id, out.org, g.scenario_id(), out.gen);
    j["chunk_count"] = g.chunk_count();
    j["trigger"] = g.trigger();
    j["json_valid"] = g.json_valid();
    j["compacted_by"] = g.compacted_by();
    j["compacted_at_ms"] = g.compacted_at_ms();
  } else if (ev.has_generation_started()) {
    const auto& g = ev.generation_started();
    out.type = "generation.started";
    out.org = g.organization_id();
    out.gen = g.generation_id();
    j = Ids(out.type, entry.id, out.org, g.scenario_id(), out.gen);
    j["started_at_ms"] = g.started_at_ms();
  } else if (ev.has_generation_failed()) {
    const auto& g = ev.generation_failed();
    out.type = "generation.failed";
    out.org = g.organization_id();
    out.gen = g.generation_id();
    j = Ids(out.type, entry.id, out.org, g.scenario_id(), out.gen);
    out.reason = g.reason();
    j["reason"] = g.reason();
    j["failed_at_ms"] = g.failed_at_ms();
  } else {
    return Status::InvalidArgument("unknown event body");
  }
  out.json = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return out;
}

std::vector<std::string> GenerationStartedCommand(const KeySchema& keys, const GenerationId& g, int64_t at_ms) {
  v1::Event ev;
  auto* s = ev.mutable_generation_started();
  s->set_organization_id(g.org);
  s->set_scenario_id(g.scenario);
  s->set_generation_id(g.gen);
  s->set_started_at_ms(at_ms);
  return EventXadd(keys, "generation.started", ev);
}

std::vector<std::string> GenerationFailedCommand(const KeySchema& keys, const GenerationId& g,
                                                 const std::string& reason, int64_t at_ms) {
  v1::Event ev;
  auto* f = ev.mutable_generation_failed();
  f->set_organization_id(g.org);
  f->set_scenario_id(g.scenario);
  f->set_generation_id(g.gen);
  f->set_reason(reason);
  f->set_failed_at_ms(at_ms);
  return EventXadd(keys, "generation.failed", ev);
}

}  // namespace streamfleet
