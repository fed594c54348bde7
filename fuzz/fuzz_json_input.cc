// ParseJsonInput (streamfleet/base/json_input.h), the one parser every outside JSON document goes through: it must
// never crash or recurse on input depth, must refuse what is deeper than the limit, and what it accepts must
// be exactly what nlohmann's own parser builds (dumped and read back). CheckJsonInput, the same rules without
// building the value, must give the same verdict, and see U+0000 exactly when the value holds it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "streamfleet/base/json_input.h"

namespace {

// Depth of a value, iteratively (the value is bounded, but the check itself should not trust that).
int Depth(const nlohmann::json& root) {
  int max = 0;
  std::vector<std::pair<const nlohmann::json*, int>> todo = {{&root, 0}};
  while (!todo.empty()) {
    auto [v, d] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    max = std::max(max, d + 1);
    for (const auto& child : *v) todo.push_back({&child, d + 1});
  }
  return max;
}

// Whether a string or key of the value holds U+0000, iteratively.
bool HoldsNul(const nlohmann::json& root) {
  std::vector<const nlohmann::json*> todo = {&root};
  while (!todo.empty()) {
    const nlohmann::json* v = todo.back();
    todo.pop_back();
    if (v->is_string() && v->get_ref<const std::string&>().find('\0') != std::string::npos) return true;
    if (v->is_object()) {
      for (auto it = v->begin(); it != v->end(); ++it) {
        if (it.key().find('\0') != std::string::npos) return true;
        todo.push_back(&it.value());
      }
    } else if (v->is_array()) {
      for (const auto& child : *v) todo.push_back(&child);
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  streamfleet::JsonLimits limits;
  limits.max_depth = 16;
  auto j = streamfleet::ParseJsonInput(text, limits);
  streamfleet::JsonFacts facts;
  streamfleet::Status checked = streamfleet::CheckJsonInput(text, limits, &facts);
  FUZZ_CHECK(checked.ok() == j.ok());
  if (!j.ok()) {
    FUZZ_CHECK(j.status().code() == streamfleet::StatusCode::kInvalidArgument);
    FUZZ_CHECK(checked.code() == streamfleet::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!j.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(facts.holds_nul == HoldsNul(*j));
  FUZZ_CHECK(Depth(*j) <= limits.max_depth);
  std::string dumped = j->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto back = nlohmann::json::parse(dumped, nullptr, false);
  FUZZ_CHECK(!back.is_discarded());
  // NaN cannot come out of a JSON text, so equality is exact.
  FUZZ_CHECK(back == *j || dumped.find("\\ufffd") != std::string::npos);
  return 0;
}
