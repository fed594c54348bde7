#include "streamfleet/base/task_specs.h"

#include <cctype>
#include <charconv>
#include <limits>
#include <optional>
#include <string_view>

#include "streamfleet/base/config.h"
#include "streamfleet/base/json_input.h"

namespace streamfleet {

namespace {

Status BadItem(const char* format, const std::string& item) {
  return Status::InvalidArgument(std::string(format) + "; \"" + item + "\" is not one");
}

// A whole non-negative decimal number of `text`, or nothing.
std::optional<int64_t> NonNegative(std::string_view text) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

// "type=value,..." into a map by type (a later item for a type wins), each value through `parse`
// (nullopt: refused, and the error quotes the item).
template <typename T, typename Parse>
StatusOr<std::map<std::string, T>> ParsePerType(const std::string& spec, const char* format, Parse parse) {
  std::map<std::string, T> out;
  for (const std::string& item : SplitList(spec, ',')) {
    const size_t eq = item.find('=');
    std::optional<T> value;
    if (eq != std::string::npos && eq > 0) value = parse(std::string_view(item).substr(eq + 1));
    if (!value) return BadItem(format, item);
    out[item.substr(0, eq)] = *value;
  }
  return out;
}

// TASK_POLICY's value: "attempts/base_ms/cap_ms".
std::optional<RetryPolicy> PolicyValue(std::string_view v) {
  const size_t slash1 = v.find('/');
  const size_t slash2 = slash1 == v.npos ? v.npos : v.find('/', slash1 + 1);
  if (slash2 == v.npos) return std::nullopt;
  auto attempts = NonNegative(v.substr(0, slash1));
  auto base = NonNegative(v.substr(slash1 + 1, slash2 - slash1 - 1));
  auto cap = NonNegative(v.substr(slash2 + 1));
  // Attempts are counted in an int (the envelope's attempt is an int32): more would wrap around.
  if (!attempts || !base || !cap || *attempts < 1 || *attempts > std::numeric_limits<int32_t>::max()) {
    return std::nullopt;
  }
  return RetryPolicy{static_cast<int>(*attempts), *base, *cap};
}

// TASK_TIMEOUTS' value: a duration, 0 = none.
std::optional<int64_t> TimeoutValue(std::string_view v) {
  auto d = ParseDurationMs(std::string(v), 1000);
  if (!d.ok() || *d < 0) return std::nullopt;
  return *d;
}

}  // namespace

bool ValidQueueName(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

StatusOr<std::map<std::string, RetryPolicy>> ParseTaskPolicies(const std::string& spec) {
  return ParsePerType<RetryPolicy>(spec, "type=attempts/base_ms/cap_ms items, attempts at least 1", PolicyValue);
}

StatusOr<std::vector<PeriodicTask>> ParsePeriodicTasks(const std::string& spec) {
  constexpr const char* kFormat =
      "name=type@interval[@queue] items, the interval above 0 (30s, 5m), the queue [a-z0-9_.-]{1,64}";
  std::vector<PeriodicTask> out;
  for (const std::string& item : SplitList(spec, ',')) {
    const size_t eq = item.find('=');
    const size_t at = item.find('@', eq == std::string::npos ? 0 : eq);
    if (eq == std::string::npos || at == std::string::npos || eq == 0 || at == eq + 1) {
      return BadItem(kFormat, item);
    }
    PeriodicTask p;
    p.name = item.substr(0, eq);
    p.type = item.substr(eq + 1, at - eq - 1);
    std::string interval = item.substr(at + 1);
    if (const size_t at2 = interval.find('@'); at2 != std::string::npos) {
      p.queue = interval.substr(at2 + 1);
      interval.resize(at2);
    }
    auto d = ParseDurationMs(interval, 1000);
    if (!d.ok() || *d <= 0 || !ValidQueueName(p.queue)) return BadItem(kFormat, item);
    p.interval_ms = *d;
    out.push_back(std::move(p));
  }
  return out;
}

StatusOr<std::vector<Schedule>> ParseSchedules(const std::string& json_text) {
  std::vector<Schedule> out;
  if (json_text.find_first_not_of(" \t\r\n") == std::string::npos) return out;
  auto doc = ParseJsonInput(json_text);
  if (!doc.ok()) return Status::InvalidArgument("not JSON: " + doc.status().message());
  if (!doc->is_array()) return Status::InvalidArgument("a JSON array of {name, cron, type, payload?, queue?}");
  for (size_t i = 0; i < doc->size(); ++i) {
    const auto& j = (*doc)[i];
    const std::string at = "schedule " + std::to_string(i) + ": ";
    auto str = [&](const char* k) -> std::optional<std::string> {
      if (!j.is_object() || !j.contains(k) || !j[k].is_string()) return std::nullopt;
      return j[k].get<std::string>();
    };
    auto name = str("name"), cron = str("cron"), type = str("type");
    if (!name || !cron || !type || type->empty()) {
      return Status::InvalidArgument(at + "needs \"name\", \"cron\" and \"type\" strings");
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() != "name" && it.key() != "cron" && it.key() != "type" && it.key() != "payload" &&
          it.key() != "queue") {
        return Status::InvalidArgument(at + "unknown field \"" + it.key() + "\"");
      }
    }
    bool name_ok = !name->empty() && name->size() <= 100;
    for (char c : *name) name_ok = name_ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                                              c == ':' || c == '-');
    if (!name_ok) return Status::InvalidArgument(at + "name must be [A-Za-z0-9_.:-]{1,100}");
    for (const Schedule& s : out) {
      if (s.name == *name) return Status::InvalidArgument(at + "name \"" + *name + "\" is used twice");
    }
    auto c = CronSchedule::Parse(*cron);
    if (!c.ok()) return Status::InvalidArgument(at + c.status().message());
    Schedule s{*name, std::move(*c), *type, "{}", "default"};
    if (j.contains("payload")) s.payload = j["payload"].dump();
    if (j.contains("queue")) {
      auto q = str("queue");
      if (!q || !ValidQueueName(*q)) return Status::InvalidArgument(at + "queue must be [a-z0-9_.-]{1,64}");
      s.queue = *q;
    }
    out.push_back(std::move(s));
  }
  return out;
}

StatusOr<std::map<std::string, TaskLimit>> ParseTaskLimits(const std::string& spec) {
  return ParsePerType<TaskLimit>(
      spec, "type=max_running/per_second items (numbers, 0 = no such limit, not both 0)",
      [](std::string_view v) -> std::optional<TaskLimit> {
        const size_t slash = v.find('/');
        if (slash == v.npos) return std::nullopt;
        auto running = NonNegative(v.substr(0, slash));
        auto rate = NonNegative(v.substr(slash + 1));
        if (!running || !rate || (*running == 0 && *rate == 0)) return std::nullopt;
        return TaskLimit{*running, *rate};
      });
}

StatusOr<std::map<std::string, int64_t>> ParseTaskTimeouts(const std::string& spec) {
  return ParsePerType<int64_t>(spec, "type=duration items (30s, 10m; 0 = no timeout)", TimeoutValue);
}

}  // namespace streamfleet
