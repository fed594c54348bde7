#pragma once
// What every streamfleet daemon's main does, once: --help/--version, the configuration (only the secrets
// this process uses kept), logging, SIGTERM/SIGINT, the /metrics /healthz /readyz endpoint, running until
// asked to stop, the drain, and the exit codes (0 after a clean stop, 2 for a configuration or start
// error). A main supplies what differs: its description and a Start that builds its service.
//
// Thread-safety: call once, from main. Errors: reported on stderr / the log and turned into exit code 2.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/registry.h>

#include "streamfleet/base/config.h"
#include "streamfleet/base/process_cli.h"
#include "streamfleet/base/status.h"

namespace streamfleet {

struct ProcessSpec {
  DaemonInfo info;                     // --help text; info.name prefixes errors ("streamfleet-compactor")
  ProcessRole role = ProcessRole::kTool;
  std::string log_name;                // "compactor": the logs' process field and the metrics' process label
  std::string default_metrics_listen;  // METRICS_LISTEN's default for this process
};

// What Start gets: the loaded configuration (a main may adjust it, e.g. from its own flags), the registry
// its metrics go to, and the daemon flags given on the command line.
struct ProcessContext {
  Config config;
  std::shared_ptr<prometheus::Registry> registry;
  std::vector<std::string> flags;
};

// A started service, as the runner drives it.
struct RunningService {
  std::function<Status()> ready;          // /readyz (nullptr: always ready)
  std::function<void()> sample_gauges;    // before each scrape (nullptr: none)
  bool redis_health = true;               // serve /health from the process's own Redis connection
  // Runs until `stop` is set (on SIGTERM); nullptr: the service runs on its own threads and the runner only
  // waits for the signal.
  std::function<void(const std::atomic<bool>& stop)> run;
  std::function<void()> stop;             // after the signal (and after run returned): drain, close listeners
  // Threads the service could not stop: task handlers that ignored their cancellation, whose threads the
  // worker's watchdog abandoned (nullptr: none can be left). Such a thread still uses what `parts` hold
  // once its handler returns, so when this counts any after the drain the process ends at once
  // (std::_Exit, after flushing the log) instead of destroying them under it.
  std::function<int64_t()> threads_left_running;
  std::string started;                    // the "started" log line
  std::string stopping;                   // logged when the signal arrives ("" = nothing)
  // What the service is made of, in construction order (a store before the service that uses it): owned by
  // the runner until the end and released last to first. The functions above capture raw pointers.
  std::vector<std::shared_ptr<void>> parts;
};

using StartFn = std::function<StatusOr<RunningService>(ProcessContext& ctx)>;

// Returns the process's exit code.
int RunProcess(int argc, char** argv, const ProcessSpec& spec, const StartFn& start);

}  // namespace streamfleet
