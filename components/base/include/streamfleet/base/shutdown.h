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

// Blocks SIGPIPE on the calling thread for good, for threads a component owns (an event loop writing to
// clients, the Redis clients' loops): a write to a socket the peer closed is then an error, not a signal that
// kills a process which does not ignore it (the CLI, the tests, an SDK's host). The fleet's binaries ignore
// it anyway (InstallSignalHandlers).
void BlockSigpipeOnThisThread();

}  // namespace streamfleet
