#include "streamfleet/base/process_cli.h"

#include <algorithm>
#include <iostream>

#ifndef STREAMFLEET_VERSION
#define STREAMFLEET_VERSION "unknown"
#endif

namespace streamfleet {

const char* StreamfleetVersion() { return STREAMFLEET_VERSION; }

namespace {

void PrintHelp(std::ostream& out, const DaemonInfo& info) {
  out << info.name << " " << StreamfleetVersion() << "\n\n" << info.summary << "\n\n"
      << "usage: " << info.name;
  for (const auto& [flag, _] : info.flags) out << " [" << flag << "]";
  out << "\n\nListens on: " << info.ports << "\n\n"
      << "Configuration comes from environment variables (REDIS_URL, DATABASE_URL, ...): every variable with\n"
      << "its default and meaning is in docs/CONFIGURATION.md, or run `streamfleetctl config`.\n\n"
      << "Options:\n";
  for (const auto& [flag, what] : info.flags) out << "  " << flag << "  " << what << "\n";
  out << "  --help     print this help and exit\n"
      << "  --version  print the version and exit\n";
}

}  // namespace

std::optional<int> HandleDaemonArgs(int argc, char** argv, const DaemonInfo& info, std::vector<std::string>* chosen) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      PrintHelp(std::cout, info);
      return 0;
    }
    if (a == "--version") {
      std::cout << info.name << " " << StreamfleetVersion() << "\n";
      return 0;
    }
    bool own = std::any_of(info.flags.begin(), info.flags.end(), [&](const auto& f) { return f.first == a; });
    if (!own) {
      std::cerr << info.name << ": unknown argument \"" << a << "\" (configuration comes from the environment; "
                << "see " << info.name << " --help)\n";
      return 2;
    }
    if (chosen != nullptr) chosen->push_back(a);
  }
  return std::nullopt;
}

}  // namespace streamfleet
