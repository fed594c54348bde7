#pragma once
// What the command groups (commands.h) register into and main runs from: each command's action, and the
// output mode every command prints in. Registration happens before parsing; main then runs the one
// action whose command the command line named.
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "streamfleet/base/config.h"

namespace streamfleet::ctl {

class Context {
 public:
  // What a command does once parsed, with the configuration loaded from the environment.
  using Action = std::function<void(const Context& ctx, const Config& config)>;
  struct Command {
    CLI::App* app;
    Action action;
    // False only for `config`, which prints the variables and must work when they do not load.
    bool needs_config = true;
  };

  // --json (the app's flag, accepted before or after the command).
  bool as_json = false;

  // Registers `command`'s action.
  void OnRun(CLI::App* command, Action action, bool needs_config = true);
  // Registers run(ctx, config, *args), where `args` holds what the command's options are parsed into (CLI11
  // writes through the pointers it was given, so they must live as long as the action: it owns them).
  template <typename Args>
  void OnRun(CLI::App* command, std::shared_ptr<Args> args,
             void (*run)(const Context& ctx, const Config& config, const Args& args)) {
    OnRun(command, [args, run](const Context& ctx, const Config& config) { run(ctx, config, *args); });
  }
  // After parsing: the registered command the command line named (nullptr if none was).
  const Command* Parsed() const;

  // Prints `j` (pretty, with --json) or `human` on stdout.
  void Print(const nlohmann::json& j, const std::string& human) const;

 private:
  std::vector<Command> commands_;
};

}  // namespace streamfleet::ctl
