// streamfleet-ingest: thin main over the ingest library (the shared part is RunProcess).
#include "ingest/ingest_service.h"
#include "streamfleet/daemon/run_process.h"

using namespace streamfleet;

int main(int argc, char** argv) {
  ProcessSpec spec{{"streamfleet-ingest",
                    "Takes a generation's text chunks over HTTP (JSON, NDJSON, relayed SSE) per organization and\n"
                    "appends them to the Redis chunk streams; starts provider generations (docs/API.md).",
                    "INGEST_LISTEN (default 0.0.0.0:8080: the API) and METRICS_LISTEN (default 0.0.0.0:9100: "
                    "/metrics, /healthz, /readyz)",
                    {}},
                   ProcessRole::kIngest, "ingest", "0.0.0.0:9100"};
  return RunProcess(argc, argv, spec, [](ProcessContext& ctx) -> StatusOr<RunningService> {
    const Config& config = ctx.config;
    // Only GET /v1/orgs/{org}/generations/{gen} uses the database; chunks never wait on it. An unreachable
    // database is a 503 on that route, not a startup failure.
    std::shared_ptr<SqlStore> store =
        SqlStore::OpenOptional(config.database_url, "GET .../generations/{gen} will answer 503");
    auto service = std::make_shared<ingest::IngestService>(config, *ctx.registry, store.get());
    if (Status s = service->Start(); !s.ok()) {
      return Status(s.code(), "ingest listener " + config.ingest_listen + ": " + s.message());
    }
    ingest::IngestService* svc = service.get();
    RunningService r;
    r.ready = [svc] { return svc->Ready(); };
    r.stop = [svc] { svc->Stop(); };
    r.started = "ingest listening on port " + std::to_string(svc->port()) + ", redis " + config.redis.host + ":" +
                std::to_string(config.redis.port);
    r.stopping = "ingest: SIGTERM received, finishing in-flight requests";
    r.parts = {store, service};
    return r;
  });
}
