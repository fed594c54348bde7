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

}  // namespace

void RegisterConfigCommands(CLI::App& app, Context& ctx) {
  auto* config = app.add_subcommand("config", "print every configuration variable with its default\n"
                                              "  example: streamfleetctl --json config");
  ctx.OnRun(config, PrintConfigVars, /*needs_config=*/false);
}

}  // namespace streamfleet::ctl
