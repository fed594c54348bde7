// streamfleet-compactor: thin main over the compactor library (the shared part is RunProcess).
#include <chrono>
#include <thread>

#include "compactor/compactor_loops.h"
#include "streamfleet/base/backoff.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/shutdown.h"
#include "streamfleet/base/text.h"
#include "streamfleet/daemon/run_process.h"

using namespace streamfleet;

namespace {

// Migrations are idempotent and serialized across processes; wait for the database if it is not up yet
// (logged when the wait starts and when it ends, not per attempt).
Status MigrateWhenReachable(const std::string& database_url) {
  auto store = SqlStore::Open(database_url);
  if (!store.ok()) return Status(store.status().code(), "database: " + store.status().message());
  bool waiting = false;
  for (JitteredBackoff backoff(100); !Shutdown::Requested();) {
    Status s = (*store)->Migrate();
    if (s.ok()) {
      if (waiting) SF_LOG_INFO("database ready");
      break;
    }
    if (!waiting) SF_LOG_WARN("database not ready: {} (retrying with backoff)", s.ToString());
    waiting = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff.Next()));
  }
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  ProcessSpec spec{{"streamfleet-compactor",
                    "Consumes the chunk streams in the \"compactor\" group, buffers each generation in Redis and\n"
                    "finalizes it (final marker, total reached or idle timeout) into the scenario_generations row.",
                    "METRICS_LISTEN (default 0.0.0.0:9101: /metrics, /healthz, /readyz)",
                    {}},
                   ProcessRole::kCompactor, "compactor", "0.0.0.0:9101"};
  return RunProcess(argc, argv, spec, [](ProcessContext& ctx) -> StatusOr<RunningService> {
    const Config& config = ctx.config;
    if (Status s = MigrateWhenReachable(config.database_url); !s.ok()) return s;
    auto clock = std::make_shared<RedisServerClock>();
    auto opened = compactor::CompactorLoops::Open(config, *clock, *ctx.registry);  // each loop its own session
    if (!opened.ok()) return Status(opened.status().code(), "database: " + opened.status().message());
    std::shared_ptr<compactor::CompactorLoops> loops = std::move(*opened);
    compactor::CompactorLoops* svc = loops.get();
    RunningService r;
    r.ready = [svc] { return svc->Ready(); };
    r.sample_gauges = [svc] { svc->SampleGauges(); };
    r.run = [svc](const std::atomic<bool>& stop) { svc->Run(stop); };
    r.started = "compactor " + config.consumer_name + " started: " + std::to_string(svc->size()) +
                " loops, redis " + config.redis.host + ":" + std::to_string(config.redis.port) + ", database " +
                RedactUrl(config.database_url);
    r.parts = {clock, loops};
    return r;
  });
}
