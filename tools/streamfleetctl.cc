// streamfleetctl: the operator's command line. Same configuration (environment) as the fleet; the same
// code paths as the processes (compact-generation runs the compactor's Finalizer). The commands live in
// tools/commands/, one group per file; this file parses, runs the one named, and turns the outcome into the
// exit code.
// Exit codes: 0 success, 1 operation failed (one-line reason on stderr), 2 usage or configuration error.
#include <CLI/CLI.hpp>
#include <iostream>

#include "streamfleet/base/config.h"
#include "streamfleet/base/process_cli.h"
#include "tools/commands/commands.h"
#include "tools/commands/failure.h"

using namespace streamfleet;

int main(int argc, char** argv) {
  CLI::App app{"streamfleetctl: operate a streamfleet deployment (configuration from the environment, see "
               "docs/CONFIGURATION.md)"};
  app.require_subcommand(1);
  // Options of the app are accepted after the command too (`streamfleetctl streams --json`); subcommands
  // created below inherit this.
  app.fallthrough();
  app.set_version_flag("--version", std::string(StreamfleetVersion()));
  ctl::Context ctx;
  app.add_flag("--json", ctx.as_json, "machine-readable output");
  ctl::RegisterGenerationCommands(app, ctx);
  ctl::RegisterGenerationRowCommands(app, ctx);
  ctl::RegisterDatabaseCommands(app, ctx);
  ctl::RegisterStreamCommands(app, ctx);
  ctl::RegisterDeadLetterCommands(app, ctx);
  ctl::RegisterTaskCommands(app, ctx);
  ctl::RegisterScheduleCommands(app, ctx);
  ctl::RegisterQueueCommands(app, ctx);
  ctl::RegisterBufferCommands(app, ctx);
  ctl::RegisterConfigCommands(app, ctx);
  ctl::RegisterCacheCommands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0; every usage error exits 2 (docs/CLI.md), not
    // CLI11's own codes (106, 109, ...).
    app.exit(e);
    return e.get_exit_code() == 0 ? 0 : 2;
  }
  const ctl::Context::Command* command = ctx.Parsed();
  if (command == nullptr) return 2;  // every command has an action; CLI11 already demands one

  Config config;
  if (command->needs_config) {
    auto loaded = LoadConfig(ProcessEnv(), "0.0.0.0:0");
    if (!loaded.ok()) {
      std::cerr << "streamfleetctl: configuration error: " << loaded.status().message() << "\n";
      return 2;
    }
    config = std::move(*loaded);
  }
  try {
    command->action(ctx, config);
  } catch (const ctl::Failure& f) {
    std::cerr << "streamfleetctl: " << f.message << "\n";
    return 1;
  } catch (const ctl::Usage& u) {
    std::cerr << "streamfleetctl: " << u.message << "\n";
    return 2;
  } catch (const std::exception& e) {
    // Anything else a command throws is a failure with its message (it aborted the process, exit 134).
    std::cerr << "streamfleetctl: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
