// streamfleet-ingest: thin main over the ingest library.
#include <iostream>
#include <thread>

#include "ingest/ingest_service.h"
#include "streamfleet/base/log.h"
#include "streamfleet/observability/metrics_server.h"
#include "streamfleet/base/process_cli.h"
#include "streamfleet/base/shutdown.h"

using namespace streamfleet;

int main(int argc, char** argv) {
  DaemonInfo info{"streamfleet-ingest",
                  "Takes a generation's text chunks over HTTP (JSON, NDJSON, relayed SSE) per organization and\n"
                  "appends them to the Redis chunk streams; starts provider generations (docs/API.md).",
                  "INGEST_LISTEN (default 0.0.0.0:8080: the API) and METRICS_LISTEN (default 0.0.0.0:9100: "
                  "/metrics, /healthz, /readyz)",
                  {}};
  if (auto code = HandleDaemonArgs(argc, argv, info)) return *code;
  auto config = LoadConfig(ProcessEnv(), "0.0.0.0:9100");
  if (!config.ok()) {
    std::cerr << "streamfleet-ingest: configuration error: " << config.status().message() << "\n";
    return 2;
  }
  InitLogging("ingest", config->log_level, config->log_json);
  Shutdown::InstallSignalHandlers();
  auto registry = std::make_shared<prometheus::Registry>();
  // Only GET /v1/orgs/{org}/generations/{gen} uses the database; chunks never wait on it. Open() does not
  // connect eagerly, so an unreachable database is a 503 on that route, not a startup failure.
  std::unique_ptr<SqlStore> store;
  if (auto s = SqlStore::Open(config->database_url); s.ok()) {
    store = std::move(*s);
  } else {
    SF_LOG_WARN("DATABASE_URL: {}; GET .../generations/{{gen}} will answer 503", s.status().ToString());
  }
  ingest::IngestService service(*config, *registry, store.get());
  Status s = service.Start();
  if (!s.ok()) {
    SF_LOG_ERROR("ingest listener {}: {}", config->ingest_listen, s.ToString());
    return 2;
  }
  auto metrics = MetricsServer::Start(config->metrics_listen, "ingest", registry, [&] { return service.Ready(); });
  if (!metrics.ok()) {
    SF_LOG_ERROR("metrics listener: {}", metrics.status().ToString());
    return 2;
  }
  (*metrics)->EnableRedisHealth(config->redis);
  SF_LOG_INFO("ingest listening on port {} (metrics on port {}), redis {}:{}", service.port(), (*metrics)->port(),
              config->redis.host, config->redis.port);
  while (!Shutdown::Requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  SF_LOG_INFO("ingest: SIGTERM received, finishing in-flight requests");
  service.Stop();
  (*metrics)->Stop();
  SF_LOG_INFO("ingest stopped");
  return 0;
}
