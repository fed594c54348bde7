#include "streamfleet/http/sse.h"

#include "streamfleet/base/json_input.h"

namespace streamfleet {

StatusOr<SseLine> ParseSseLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  SseLine out;
  if (line.empty() || line[0] == ':') return out;
  if (line.rfind("data:", 0) != 0) return out;  // event:, id:, retry: carry nothing we relay
  std::string_view payload = line.substr(5);
  if (!payload.empty() && payload[0] == ' ') payload.remove_prefix(1);
  if (payload == "[DONE]") {
    out.kind = SseLine::Kind::kDone;
    return out;
  }
  auto parsed = ParseJsonInput(payload);
  if (!parsed.ok()) return Status::InvalidArgument("data: " + parsed.status().message());
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return Status::InvalidArgument("data is not a JSON object");
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) out.usage = *u;
  auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array()) {
    // Provider keep-alives and usage-only events have no choices: nothing to relay.
    if (j.contains("usage")) return out;
    return Status::InvalidArgument("no \"choices\" array");
  }
  if (choices->empty()) return out;
  const auto& c0 = (*choices)[0];
  if (!c0.is_object()) return Status::InvalidArgument("choices[0] is not an object");
  auto delta = c0.find("delta");
  if (delta == c0.end() || !delta->is_object()) return out;
  auto content = delta->find("content");
  if (content == delta->end() || content->is_null()) return out;
  if (!content->is_string()) return Status::InvalidArgument("choices[0].delta.content is not a string");
  out.kind = SseLine::Kind::kData;
  out.text = content->get<std::string>();
  if (out.text.empty()) out.kind = SseLine::Kind::kSkip;
  return out;
}

}  // namespace streamfleet
