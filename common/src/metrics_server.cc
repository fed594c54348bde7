#include "streamfleet/common/metrics_server.h"

#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>

namespace streamfleet {

namespace {

double ResidentBytes() {
  std::ifstream f("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  f >> pages_total >> pages_resident;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace

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
      .Add({{"process", process}, {"version", "0.1.0"}})
      .Set(1);
  double start = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  prometheus::BuildGauge()
      .Name("process_start_time_seconds")
      .Help("Start time of the process since unix epoch in seconds")
      .Register(*m->registry_)
      .Add({})
      .Set(start);
  m->rss_ = &prometheus::BuildGauge()
                 .Name("process_resident_memory_bytes")
                 .Help("Resident memory size in bytes")
                 .Register(*m->registry_)
                 .Add({});
  MetricsServer* raw = m.get();
  auto http = HttpServer::Start(listen, 4, [raw](HttpExchange& ex) { raw->Handle(ex); });
  if (!http.ok()) return http.status();
  m->http_ = std::move(*http);
  return m;
}

std::string MetricsServer::Render() {
  // Scrapes may overlap; hooks refresh shared gauges, so run them one at a time.
  static std::mutex mu;
  std::lock_guard<std::mutex> l(mu);
  if (hook_) hook_();
  rss_->Set(ResidentBytes());
  prometheus::TextSerializer s;
  return s.Serialize(registry_->Collect());
}

void MetricsServer::Handle(HttpExchange& ex) {
  if (ex.path() == "/metrics") {
    ex.Respond(200, "text/plain; version=0.0.4; charset=utf-8", Render());
  } else if (ex.path() == "/healthz") {
    ex.Respond(200, "text/plain", "ok\n");
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
