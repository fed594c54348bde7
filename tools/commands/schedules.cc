// schedules: the configured SCHEDULES, each with its last fired occurrence (from Redis) and its next run.
#include <algorithm>
#include <charconv>
#include <memory>

#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_keys.h"
#include "tools/commands/commands.h"
#include "tools/commands/connections.h"
#include "tools/commands/failure.h"

namespace streamfleet::ctl {
namespace {

void ListSchedules(const Context& ctx, const Config& c) {
  if (c.schedules.empty()) {
    ctx.Print(nlohmann::json::array(), "no schedules (SCHEDULES / SCHEDULES_FILE is empty)\n");
    return;
  }
  auto r = ConnectRedis(c);
  const TaskKeys keys = TaskKeys::FromConfig(c);
  const int64_t now = WallClockMs();
  nlohmann::json j = nlohmann::json::array();
  std::string human;
  for (const Schedule& s : c.schedules) {
    auto last = Must(r->Command({"GET", keys.ScheduleLastFired(s.name)}), "GET");
    int64_t last_ms = 0;
    if (!last.is_nil()) std::from_chars(last.str.data(), last.str.data() + last.str.size(), last_ms);
    // What the workers will do: the next occurrence after the last fired one (or now, before the first).
    auto next = s.cron.Next(std::max(last_ms, now));
    if (last_ms > 0) {
      if (auto missed = s.cron.Next(last_ms); missed && *missed <= now) next = now;  // due: fires at once
    }
    j.push_back({{"name", s.name}, {"cron", s.cron.text()}, {"type", s.type}, {"queue", s.queue},
                 {"payload", nlohmann::json::parse(s.payload)},
                 {"last_fired_ms", last_ms > 0 ? nlohmann::json(last_ms) : nlohmann::json(nullptr)},
                 {"next_run_ms", next ? nlohmann::json(*next) : nlohmann::json(nullptr)}});
    human += s.name + "  \"" + s.cron.text() + "\"  " + s.type + "  queue=" + s.queue +
             "  last=" + (last_ms > 0 ? IsoUtcFromMs(last_ms) : std::string("never")) +
             "  next=" + (next ? IsoUtcFromMs(*next) : std::string("never")) + "\n";
  }
  ctx.Print(j, human);
}

}  // namespace

void RegisterScheduleCommands(CLI::App& app, Context& ctx) {
  auto* schedules = app.add_subcommand(
      "schedules", "the cron schedules (SCHEDULES): last fired occurrence and next run of each, UTC\n"
                   "  example: streamfleetctl schedules");
  ctx.OnRun(schedules, ListSchedules);
}

}  // namespace streamfleet::ctl
