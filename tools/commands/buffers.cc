// buffers: every live generation buffer at once: how many, how many chunks, the largest, and those over
// GENERATION_LLEN_ALERT_THRESHOLD (what the llen alert fires on).
#include "streamfleet/operations/fleet_admin.h"
#include "tools/commands/commands.h"
#include "tools/commands/connections.h"
#include "tools/commands/failure.h"

namespace streamfleet::ctl {
namespace {

using nlohmann::json;

void SummarizeLiveBuffers(const Context& ctx, const Config& c) {
  auto r = ConnectRedis(c);
  auto b = Must(SummarizeBuffers(*r, KeySchema::FromConfig(c), c.llen_alert_threshold), "buffers");
  json over = json::array();
  for (const auto& o : b.over_threshold) over.push_back({{"key", o.key}, {"llen", o.llen}});
  std::string human = "buffers: " + std::to_string(b.count) + "\ntotal chunks: " + std::to_string(b.total_chunks) +
                      "\nlargest LLEN: " + std::to_string(b.max_llen) + "\nover threshold (" +
                      std::to_string(c.llen_alert_threshold) + "): " + std::to_string(over.size()) + "\n";
  for (const auto& o : b.over_threshold) human += "  " + o.key + " " + std::to_string(o.llen) + "\n";
  ctx.Print(json{{"buffers", b.count}, {"total_chunks", b.total_chunks}, {"max_llen", b.max_llen},
                 {"over_threshold", over}},
            human);
}

}  // namespace

void RegisterBufferCommands(CLI::App& app, Context& ctx) {
  auto* buffers = app.add_subcommand("buffers",
                                     "live generation buffers: count, total chunks, largest LLEN, over threshold\n"
                                     "  example: streamfleetctl --json buffers");
  ctx.OnRun(buffers, SummarizeLiveBuffers);
}

}  // namespace streamfleet::ctl
