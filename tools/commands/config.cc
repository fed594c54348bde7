// config: every configuration variable with its default and description (the table docs/CONFIGURATION.md
// mirrors). Needs no configuration itself, so it works when the environment's is broken.
#include "tools/commands/commands.h"

namespace streamfleet::ctl {
namespace {

void PrintConfigVars(const Context& ctx, const Config&) {
  nlohmann::json j = nlohmann::json::array();
  std::string human;
  for (const auto& v : ConfigVars()) {
    j.push_back({{"name", v.name}, {"default", v.default_value}, {"description", v.description}});
    human += std::string(v.name) + "=" + v.default_value + "\n    " + v.description + "\n";
  }
  ctx.Print(j, human);
}

// check-config: the environment loaded as the processes load it. A value they refuse (an INGEST_TOKENS
// entry whose organization is not a number, a bad duration) makes every process exit at start; this says
// so before a rollout does (scripts/check-deploy.sh runs it on each manifest's environment). The loading
// itself is the command's (needs_config): an error exits 2 with the variable named.
void PrintConfigOk(const Context& ctx, const Config& config) {
  ctx.Print({{"ok", true}, {"redis", config.redis.host + ":" + std::to_string(config.redis.port)}},
            "configuration ok\n");
}

}  // namespace

void RegisterConfigCommands(CLI::App& app, Context& ctx) {
  auto* config = app.add_subcommand("config", "print every configuration variable with its default\n"
                                              "  example: streamfleetctl --json config");
  ctx.OnRun(config, PrintConfigVars, /*needs_config=*/false);
  auto* check = app.add_subcommand("check-config",
                                   "load this environment's configuration as the processes do; exit 2 naming the "
                                   "first bad variable\n"
                                   "  example: streamfleetctl check-config   (in the environment a process gets)");
  ctx.OnRun(check, PrintConfigOk);
}

}  // namespace streamfleet::ctl
