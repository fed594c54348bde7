#pragma once
// Test support: the (event, data) pairs of a live stream's raw answer (docs/live.md: every event's data is one
// line of JSON). Each HTTP chunk of the answer holds whole events, so the chunked framing between them is
// never inside an event.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace streamfleet::testing {

inline std::vector<std::pair<std::string, nlohmann::json>> SseEventsOf(const std::string& raw) {
  std::vector<std::pair<std::string, nlohmann::json>> out;
  size_t at = 0;
  while ((at = raw.find("event: ", at)) != std::string::npos) {
    size_t eol = raw.find('\n', at);
    size_t data = raw.find("data: ", eol);
    if (eol == std::string::npos || data == std::string::npos) break;  // cut off mid-event
    size_t end = raw.find('\n', data);
    if (end == std::string::npos) break;
    out.emplace_back(raw.substr(at + 7, eol - at - 7),
                     nlohmann::json::parse(raw.substr(data + 6, end - data - 6), nullptr, false));
    at = end;
  }
  return out;
}

}  // namespace streamfleet::testing
