#pragma once
// SIGTERM/SIGINT -> a flag the main loops poll. Install once in main; tests call Request() instead.
#include <atomic>

namespace streamfleet {

class Shutdown {
 public:
  // Installs handlers for SIGTERM and SIGINT (async-signal-safe: they only set the flag).
  static void InstallSignalHandlers();
  static bool Requested();
  static void Request();
};

}  // namespace streamfleet
