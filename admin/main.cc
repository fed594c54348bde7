// streamfleet-admin: the admin web UI (docs/admin-ui.md), a thin main over admin_lib.
//   streamfleet-admin [--insecure]   (--insecure = ADMIN_INSECURE=true)
#include <iostream>
#include <thread>

#include "admin/admin_server.h"
#include "streamfleet/base/log.h"
#include "streamfleet/observability/metrics_server.h"
#include "streamfleet/base/process_cli.h"
#include "streamfleet/base/shutdown.h"

using namespace streamfleet;

int main(int argc, char** argv) {
  DaemonInfo info{"streamfleet-admin",
                  "The operators' web UI and JSON API: streams, groups, queues, dead letters, generations\n"
                  "(docs/admin-ui.md).",
                  "ADMIN_LISTEN (default 0.0.0.0:8090: the UI) and METRICS_LISTEN (default 0.0.0.0:9103: "
                  "/metrics, /healthz, /readyz)",
                  {{"--insecure", "run without ADMIN_TOKEN (same as ADMIN_INSECURE=true; local development only)"}}};
  std::vector<std::string> flags;
  if (auto code = HandleDaemonArgs(argc, argv, info, &flags)) return *code;
  auto config = LoadConfig(ProcessEnv(), "0.0.0.0:9103");
  if (!config.ok()) {
    std::cerr << "streamfleet-admin: configuration error: " << config.status().message() << "\n";
    return 2;
  }
  if (!flags.empty()) config->admin_insecure = true;
  InitLogging("admin", config->log_level, config->log_json);
  Shutdown::InstallSignalHandlers();
  if (config->admin_token.empty() && config->admin_insecure) {
    std::cerr << "\n*** streamfleet-admin: INSECURE MODE: no ADMIN_TOKEN, every page and action is open to anyone who\n"
                 "*** can reach " << config->admin_listen << ". Use this for local development only. ***\n\n";
    SF_LOG_WARN("admin UI running WITHOUT authentication (ADMIN_INSECURE)");
  }
  std::unique_ptr<SqlStore> store;
  if (auto s = SqlStore::Open(config->database_url); s.ok()) {
    store = std::move(*s);
  } else {
    SF_LOG_WARN("DATABASE_URL: {}; generation rows and \"compact now\" will answer 503", s.status().ToString());
  }
  auto server = admin::AdminServer::Start(*config, store.get());
  if (!server.ok()) {
    SF_LOG_ERROR("admin: {}", server.status().ToString());
    std::cerr << "streamfleet-admin: " << server.status().message() << "\n";
    return 2;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  auto metrics = MetricsServer::Start(config->metrics_listen, "admin", registry, [] { return Status::Ok(); });
  if (!metrics.ok()) {
    SF_LOG_ERROR("metrics listener: {}", metrics.status().ToString());
    return 2;
  }
  SF_LOG_INFO("admin UI on port {} (metrics on port {}), redis {}:{}", (*server)->port(), (*metrics)->port(),
              config->redis.host, config->redis.port);
  while (!Shutdown::Requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  SF_LOG_INFO("admin: SIGTERM received, stopping");
  (*server)->Stop();
  (*metrics)->Stop();
  return 0;
}
