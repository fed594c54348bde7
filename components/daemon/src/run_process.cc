#include "streamfleet/daemon/run_process.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "streamfleet/base/log.h"
#include "streamfleet/base/shutdown.h"
#include "streamfleet/observability/metrics_server.h"

namespace streamfleet {

namespace {

void WaitForShutdown() {
  while (!Shutdown::Requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// Runs the service until SIGTERM: on the main thread when it has a loop of its own (a watcher thread turns
// the signal into its stop flag), else the main thread just waits for the signal.
void RunUntilShutdown(RunningService& service) {
  if (!service.run) {
    WaitForShutdown();
    if (!service.stopping.empty()) SF_LOG_INFO("{}", service.stopping);
    return;
  }
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    WaitForShutdown();
    if (!service.stopping.empty()) SF_LOG_INFO("{}", service.stopping);
    stop.store(true);
  });
  service.run(stop);
  Shutdown::Request();  // the loop may also end on its own (a fatal error): let the watcher go
  watcher.join();
}

}  // namespace

int RunProcess(int argc, char** argv, const ProcessSpec& spec, const StartFn& start) {
  ProcessContext ctx;
  if (auto code = HandleDaemonArgs(argc, argv, spec.info, &ctx.flags)) return *code;
  auto config = LoadConfig(ProcessEnv(), spec.default_metrics_listen);
  if (!config.ok()) {
    std::cerr << spec.info.name << ": configuration error: " << config.status().message() << "\n";
    return 2;
  }
  ctx.config = std::move(*config);
  KeepOnlySecretsOf(spec.role, ctx.config);
  InitLogging(spec.log_name, ctx.config.log_level, ctx.config.log_json);
  Shutdown::InstallSignalHandlers();
  ctx.registry = std::make_shared<prometheus::Registry>();

  auto started = start(ctx);
  if (!started.ok()) {
    SF_LOG_ERROR("{}", started.status().ToString());
    std::cerr << spec.info.name << ": " << started.status().message() << "\n";
    return 2;
  }
  RunningService& service = *started;
  auto ready = service.ready ? service.ready : [] { return Status::Ok(); };
  auto metrics = MetricsServer::Start(ctx.config.metrics_listen, spec.log_name, ctx.registry, ready,
                                      service.sample_gauges);
  if (!metrics.ok()) {
    SF_LOG_ERROR("metrics listener: {}", metrics.status().ToString());
    if (service.stop) service.stop();
    while (!service.parts.empty()) service.parts.pop_back();
    return 2;
  }
  if (service.redis_health) (*metrics)->EnableRedisHealth(ctx.config.redis);
  SF_LOG_INFO("{} (metrics on port {})", service.started, (*metrics)->port());
  RunUntilShutdown(service);
  if (service.stop) service.stop();
  (*metrics)->Stop();
  if (const int64_t left = service.threads_left_running ? service.threads_left_running() : 0; left > 0) {
    // What was owed is done (an abandoned attempt was handed back as a retry by the thread that replaced
    // it); what is left is a handler C++ cannot stop. Waiting could take forever, and destroying the service
    // would free what it returns into.
    SF_LOG_WARN("{} stopped with {} abandoned task handler(s) still running: exiting without waiting for them",
                spec.log_name, left);
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    std::_Exit(0);
  }
  while (!service.parts.empty()) service.parts.pop_back();
  SF_LOG_INFO("{} stopped", spec.log_name);
  return 0;
}

}  // namespace streamfleet
