// streams: every fleet stream and consumer group as Redis has them now, or (--keys) only the streams the
// consumer groups read under this configuration, computed without Redis for autoscaler triggers.
#include <cstdio>

#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/operations/operator_json.h"
#include "streamfleet/redis/stream_admin.h"
#include "tools/commands/commands.h"
#include "tools/commands/connections.h"
#include "tools/commands/failure.h"

namespace streamfleet::ctl {
namespace {

using nlohmann::json;

void ListConsumedStreams(const Context& ctx, const Config& c) {
  json j = json::array();
  std::string human;
  for (const auto& s : ConsumedStreams(c)) {
    j.push_back({{"stream", s.stream}, {"group", s.group}, {"process", s.process}});
    human += s.stream + "  group=" + s.group + "  " + s.process + "\n";
  }
  ctx.Print(j, human);
}

// One table row per group (a stream without groups gets one row with "-"), each consumer indented below.
std::string StreamTableRows(const StreamStats& st) {
  char line[256];
  std::string rows;
  const char* s = st.stream.c_str();
  if (st.groups.empty()) {
    std::snprintf(line, sizeof(line), "%-32s %8lld  %-10s\n", s, static_cast<long long>(st.length), "-");
    rows += line;
  }
  for (const auto& gs : st.groups) {
    std::snprintf(line, sizeof(line), "%-32s %8lld  %-10s %8lld %8lld %9lld %12.1f\n", s,
                  static_cast<long long>(st.length), gs.name.c_str(), static_cast<long long>(gs.pending),
                  static_cast<long long>(gs.lag), static_cast<long long>(gs.consumers), gs.oldest_pending_seconds);
    rows += line;
    for (const auto& cs : gs.consumer_list) {
      std::snprintf(line, sizeof(line), "    consumer %-28s pending %lld, idle %.1f s\n", cs.name.c_str(),
                    static_cast<long long>(cs.pending), cs.idle_ms / 1000.0);
      rows += line;
    }
  }
  return rows;
}

void ShowStreams(const Context& ctx, const Config& c) {
  auto r = ConnectRedis(c);
  json j = json::array();
  char line[256];
  std::snprintf(line, sizeof(line), "%-32s %8s  %-10s %8s %8s %9s %12s\n", "STREAM", "LENGTH", "GROUP", "PENDING",
                "LAG", "CONSUMERS", "OLDEST(s)");
  std::string human = line;
  for (const auto& s : FleetStreams(c)) {
    auto st = Must(GetStreamStats(*r, s, /*with_consumers=*/true), "stream " + s);
    human += StreamTableRows(st);
    j.push_back(StreamStatsJson(st));
  }
  ctx.Print(j, human);
}

}  // namespace

void RegisterStreamCommands(CLI::App& app, Context& ctx) {
  auto* streams = app.add_subcommand("streams",
                                     "every fleet stream and group: length, pending, lag, oldest pending, consumers\n"
                                     "  example: streamfleetctl --json streams");
  auto keys_only = std::make_shared<bool>(false);
  streams->add_flag("--keys", *keys_only,
                    "only list the streams consumer groups read under this configuration, with group and process, "
                    "without connecting to Redis (what an autoscaler such as KEDA must watch)");
  ctx.OnRun(streams, [keys_only](const Context& ctx, const Config& c) {
    if (*keys_only) {
      ListConsumedStreams(ctx, c);
    } else {
      ShowStreams(ctx, c);
    }
  });
}

}  // namespace streamfleet::ctl
