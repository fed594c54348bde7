#pragma once
// The command line every streamfleet daemon shares: configuration comes from the environment (12-factor),
// so a daemon takes no arguments beyond --help and --version (and its own few flags). Without this, a
// `streamfleet-queue-worker --help` started the worker.
#include <optional>
#include <string>
#include <vector>

namespace streamfleet {

// The version CMake's project() gives, which /metrics exports as streamfleet_build_info{version}.
const char* StreamfleetVersion();

struct DaemonInfo {
  std::string name;      // "streamfleet-ingest"
  std::string summary;   // what it is, one or two sentences
  std::string ports;     // which listeners, and the variables that set them
  std::vector<std::pair<std::string, std::string>> flags;  // its own flags: {"--insecure", "what it does"}
};

// Handles --help/-h and --version (printing to stdout) and refuses unknown arguments (usage on stderr).
// Returns the exit code when the process should exit now (0 after help/version, 2 on a usage error), or
// nullopt to run; *chosen gets the daemon's own flags that were given.
std::optional<int> HandleDaemonArgs(int argc, char** argv, const DaemonInfo& info,
                                    std::vector<std::string>* chosen = nullptr);

}  // namespace streamfleet
