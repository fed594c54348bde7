#include "streamfleet/observability/metrics_server.h"

#include "process_metrics.h"
#include "streamfleet/base/process_cli.h"
#include "streamfleet/observability/redis_info_metrics.h"

#include <prometheus/text_serializer.h>

#include <chrono>
#include <mutex>

namespace streamfleet {

MetricsServer::~MetricsServer() = default;

StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen, const std::string& process,
                                                              std::shared_ptr<prometheus::Registry> registry,
                                                              ReadyCheck ready, CollectHook hook) {
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  m->registry_ = std::move(registry);
  m->ready_ = std::move(ready);
  m->hook_ = std::move(hook);
  prometheus::BuildGauge()
      .Name("streamfleet_build_info")
      .Help("Build information; always 1")
      .Register(*m->registry_)
      .Add({{"process", process}, {"version", StreamfleetVersion()}})
      .Set(1);
  double start = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  prometheus::BuildGauge()
      .Name("process_start_time_seconds")
      .Help("Start time of the process since unix epoch in seconds")
      .Register(*m->registry_)
      .Add({})
      .Set(start);
  m->process_ = std::make_unique<ProcessMetrics>(*m->registry_);
  MetricsServer* raw = m.get();
  auto http = HttpServer::Start(listen, 4, [raw](HttpExchange& ex) { raw->Handle(ex); });
  if (!http.ok()) return http.status();
  m->http_ = std::move(*http);
  return m;
}

void MetricsServer::EnableRedisHealth(const RedisConfig& redis) {
  std::lock_guard<std::mutex> l(health_mu_);
  health_redis_ = RedisClient::Lazy(redis);
}

std::string MetricsServer::Render() {
  // Scrapes may overlap; hooks refresh shared gauges, so run them one at a time.
  static std::mutex mu;
  std::lock_guard<std::mutex> l(mu);
  if (hook_) hook_();
  process_->Refresh();
  prometheus::TextSerializer s;
  return s.Serialize(registry_->Collect());
}

void MetricsServer::Handle(HttpExchange& ex) {
  if (ex.path() == "/metrics") {
    ex.Respond(200, "text/plain; version=0.0.4; charset=utf-8", Render());
  } else if (ex.path() == "/healthz") {
    ex.Respond(200, "text/plain", "ok\n");
  } else if (ex.path() == "/health") {
    std::lock_guard<std::mutex> l(health_mu_);
    if (!health_redis_) {
      ex.RespondJson(404, JsonError("not_found", "/health is not enabled"));
      return;
    }
    auto j = RedisInfoMetrics::HealthJson(*health_redis_);
    bool connected = j.ok() && j->find("\"connected\":true") != std::string::npos;
    ex.RespondJson(connected ? 200 : 503, j.ok() ? *j : JsonError("unavailable", j.status().message()));
  } else if (ex.path() == "/readyz") {
    Status s = ready_ ? ready_() : Status::Ok();
    if (s.ok()) {
      ex.Respond(200, "text/plain", "ready\n");
    } else {
      ex.Respond(503, "text/plain", "not ready: " + s.ToString() + "\n");
    }
  } else {
    ex.RespondJson(404, JsonError("not_found", ex.path()));
  }
}

}  // namespace streamfleet
