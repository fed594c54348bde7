// streamfleet-admin: the admin web UI (docs/admin-ui.md), a thin main over admin_lib (the shared part is
// RunProcess).
//   streamfleet-admin [--insecure]   (--insecure = ADMIN_INSECURE=true)
#include <iostream>
#include <memory>
#include <mutex>

#include "admin/admin_server.h"
#include "streamfleet/base/log.h"
#include "streamfleet/daemon/run_process.h"

using namespace streamfleet;

int main(int argc, char** argv) {
  ProcessSpec spec{{"streamfleet-admin",
                    "The operators' web UI and JSON API: streams, groups, queues, dead letters, generations\n"
                    "(docs/admin-ui.md).",
                    "ADMIN_LISTEN (default 0.0.0.0:8090: the UI) and METRICS_LISTEN (default 0.0.0.0:9103: "
                    "/metrics, /healthz, /readyz)",
                    {{"--insecure", "run without ADMIN_TOKEN (same as ADMIN_INSECURE=true; local development only)"}}},
                   ProcessRole::kAdmin, "admin", "0.0.0.0:9103"};
  return RunProcess(argc, argv, spec, [](ProcessContext& ctx) -> StatusOr<RunningService> {
    Config& config = ctx.config;
    if (!ctx.flags.empty()) config.admin_insecure = true;
    if (config.admin_token.empty() && config.admin_insecure) {
      std::cerr << "\n*** streamfleet-admin: INSECURE MODE: no ADMIN_TOKEN, every page and action is open to anyone who\n"
                   "*** can reach " << config.admin_listen << ". Use this for local development only. ***\n\n";
      SF_LOG_WARN("admin UI running WITHOUT authentication (ADMIN_INSECURE)");
    }
    std::shared_ptr<SqlStore> store =
        SqlStore::OpenOptional(config.database_url, "generation rows and \"compact now\" will answer 503");
    auto started = admin::AdminServer::Start(config, store.get());
    if (!started.ok()) return started.status();
    std::shared_ptr<admin::AdminServer> server = std::move(*started);
    admin::AdminServer* svc = server.get();
    // /readyz: Redis answers (every page reads it), asked on a connection of its own. It answered 200 always,
    // and /health 404, where docs/observability.md promises both on every process.
    struct RedisPing {
      std::mutex mu;
      std::unique_ptr<RedisClient> redis;
    };
    auto ping = std::make_shared<RedisPing>();
    ping->redis = RedisClient::Lazy(config.redis);
    RunningService r;
    r.ready = [p = ping.get()] {
      std::lock_guard<std::mutex> l(p->mu);
      auto pong = p->redis->Command({"PING"});
      return pong.ok() ? Status::Ok() : Status::Unavailable("redis: " + pong.status().message());
    };
    r.stop = [svc] { svc->Stop(); };
    r.started = "admin UI on port " + std::to_string(svc->port()) + ", redis " + config.redis.host + ":" +
                std::to_string(config.redis.port);
    r.stopping = "admin: SIGTERM received, stopping";
    r.parts = {store, server, ping};
    return r;
  });
}
