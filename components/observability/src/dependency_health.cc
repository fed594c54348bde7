#include "streamfleet/observability/dependency_health.h"

#include "streamfleet/base/log.h"

namespace streamfleet {

namespace {
prometheus::Counter& Outages(prometheus::Registry& r, Dependency d) {
  bool redis = d == Dependency::kRedis;
  return prometheus::BuildCounter()
      .Name(redis ? "streamfleet_redis_outages_total" : "streamfleet_db_outages_total")
      .Help(redis ? "Times Redis became unreachable for this process (once per outage, not per failed call)"
                  : "Times the database became unreachable for this process (once per outage, not per failed call)")
      .Register(r)
      .Add({});
}
}  // namespace

DependencyHealth::DependencyHealth(prometheus::Registry& registry, Dependency dependency, prometheus::Gauge* up_gauge)
    : name_(dependency == Dependency::kRedis ? "redis" : "database"),
      outages_(Outages(registry, dependency)),
      up_gauge_(up_gauge) {}

prometheus::Gauge& DependencyHealth::RedisUpGauge(prometheus::Registry& registry) {
  return prometheus::BuildGauge()
      .Name("streamfleet_redis_up")
      .Help("1 when the last Redis operation of this process succeeded")
      .Register(registry)
      .Add({});
}

void DependencyHealth::Report(const Status& s, const char* what) {
  // A rejected password (WRONGPASS/NOAUTH) makes the dependency as unusable as an outage, and it must be
  // logged with its reason: the calls after it only say "reconnect backing off".
  bool down = s.retryable() || s.code() == StatusCode::kUnauthenticated;
  State to = s.ok() ? kUp : (down ? kDown : kUnknown);
  if (to == kUnknown || state_.load() == to) return;  // the hot path: nothing changes
  Change(to, s, what);
}

void DependencyHealth::Change(State to, const Status& s, const char* what) {
  std::lock_guard<std::mutex> l(mu_);
  State from = static_cast<State>(state_.load());
  if (from == to) return;  // another thread reported the same change first
  state_.store(to);
  if (up_gauge_ != nullptr) up_gauge_->Set(to == kUp ? 1 : 0);
  if (to == kDown) {
    outages_.Increment();
    SF_LOG_WARN("{} unreachable ({}: {}); not ready, retrying with backoff", name_, what, s.ToString());
  } else if (from == kDown) {
    SF_LOG_INFO("{} reachable again ({}); ready", name_, what);
  }
}

}  // namespace streamfleet
