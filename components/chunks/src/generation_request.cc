#include "streamfleet/chunks/generation_request.h"

#include "streamfleet/base/json_input.h"

namespace streamfleet {

namespace {

// Whether a string of `j` (a value or an object's key) holds U+0000: the request's fields go into the row's
// metadata, which PostgreSQL's jsonb refuses with it ("unsupported Unicode escape sequence"): every attempt of
// generation.run failed before calling the provider, and the generation never got a row. (At most max_depth
// deep: ParseJsonInput built it.)
bool HoldsNul(const nlohmann::json& j) {
  if (j.is_string()) return j.get_ref<const std::string&>().find('\0') != std::string::npos;
  if (j.is_array()) {
    for (const auto& v : j) {
      if (HoldsNul(v)) return true;
    }
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k.find('\0') != std::string::npos || HoldsNul(v)) return true;
    }
  }
  return false;
}

// Reads the request fields shared by the HTTP body and the task payload.
Status ReadCommon(const nlohmann::json& j, GenerationRequest* r) {
  for (const char* field : {"instruction", "model", "initiator"}) {
    if (auto f = j.find(field); f != j.end() && HoldsNul(*f)) {
      return Status::InvalidArgument(std::string("\"") + field + "\" must not hold U+0000 (\\u0000)");
    }
  }
  auto ins = j.find("instruction");
  if (ins == j.end() || !ins->is_object()) return Status::InvalidArgument("\"instruction\" must be an object");
  auto content = ins->find("content");
  if (content == ins->end() || !content->is_string() || content->get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument("\"instruction.content\" must be a non-empty string");
  }
  r->content = content->get<std::string>();
  for (auto [name, out] : {std::pair{"source", &r->source}, std::pair{"language", &r->language}}) {
    auto f = ins->find(name);
    if (f == ins->end() || f->is_null()) continue;
    if (!f->is_string()) return Status::InvalidArgument(std::string("\"instruction.") + name + "\" must be a string");
    *out = f->get<std::string>();
  }
  if (auto s = j.find("scenario_id"); s != j.end() && !s->is_null()) {
    if (!s->is_number_integer() || s->get<int64_t>() <= 0) {
      return Status::InvalidArgument("\"scenario_id\" must be a positive integer or null");
    }
    r->scenario_id = s->get<int64_t>();
  }
  if (auto m = j.find("model"); m != j.end() && !m->is_null()) {
    if (!m->is_string()) return Status::InvalidArgument("\"model\" must be a string");
    r->model = m->get<std::string>();
  }
  if (auto i = j.find("initiator"); i != j.end() && !i->is_null()) {
    if (!i->is_string() && !i->is_number_integer() && !i->is_object()) {
      return Status::InvalidArgument("\"initiator\" must be a string, an integer or an object");
    }
    r->initiator = *i;
  }
  return Status::Ok();
}

}  // namespace

StatusOr<GenerationRequest> ParseGenerationRequest(int64_t org, std::string_view body) {
  auto parsed = ParseJsonInput(body);
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return Status::InvalidArgument("expected a JSON object");
  GenerationRequest r;
  r.organization_id = org;
  SF_RETURN_IF_ERROR(ReadCommon(j, &r));
  return r;
}

std::string GenerationRunPayload(const GenerationRequest& r) {
  nlohmann::json j = {{"organization_id", r.organization_id},
                      {"generation_id", r.generation_id},
                      {"scenario_id", r.scenario_id > 0 ? nlohmann::json(r.scenario_id) : nlohmann::json(nullptr)},
                      {"instruction", {{"content", r.content}, {"source", r.source}, {"language", r.language}}},
                      {"model", r.model},
                      {"initiator", r.initiator}};
  return j.dump();
}

StatusOr<GenerationRequest> ParseGenerationRunPayload(std::string_view payload) {
  auto parsed = ParseJsonInput(payload);
  if (!parsed.ok()) return Status::InvalidArgument("payload: " + parsed.status().message());
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return Status::InvalidArgument("payload is not a JSON object");
  GenerationRequest r;
  for (auto [name, out] : {std::pair{"organization_id", &r.organization_id}, std::pair{"generation_id", &r.generation_id}}) {
    auto f = j.find(name);
    if (f == j.end() || !f->is_number_integer() || f->get<int64_t>() <= 0) {
      return Status::InvalidArgument(std::string("payload \"") + name + "\" must be a positive integer");
    }
    *out = f->get<int64_t>();
  }
  SF_RETURN_IF_ERROR(ReadCommon(j, &r));
  return r;
}

}  // namespace streamfleet
