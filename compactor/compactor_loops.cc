#include "compactor/compactor_loops.h"

#include <thread>

namespace streamfleet::compactor {

StatusOr<std::unique_ptr<CompactorLoops>> CompactorLoops::Open(const Config& config, Clock& clock,
                                                               prometheus::Registry& registry, LoopOptions options,
                                                               int loops) {
  if (loops <= 0) loops = config.compactor_loops;
  std::unique_ptr<CompactorLoops> out(new CompactorLoops());
  out->redis_health_ =
      std::make_unique<DependencyHealth>(registry, Dependency::kRedis, &DependencyHealth::RedisUpGauge(registry));
  // The db_up gauge lives in the registry (every loop's CompactorMetrics finds the same one).
  out->db_health_ = std::make_unique<DependencyHealth>(registry, Dependency::kDatabase, &CompactorMetrics(registry).db_up);
  const CompactorHealth health{out->redis_health_.get(), out->db_health_.get()};
  for (int i = 0; i < loops; ++i) {
    auto c = std::make_unique<Config>(config);
    if (i > 0) c->consumer_name += "-" + std::to_string(i + 1);
    auto store = SqlStore::Open(config.database_url);
    if (!store.ok()) return store.status();
    out->stores_.push_back(std::move(*store));
    out->loops_.push_back(
        std::make_unique<CompactorService>(*c, clock, *out->stores_.back(), registry, options, health));
    out->configs_.push_back(std::move(c));
  }
  return out;
}

void CompactorLoops::Run(const std::atomic<bool>& stop) {
  std::vector<std::thread> others;
  for (size_t i = 1; i < loops_.size(); ++i) others.emplace_back([this, i, &stop] { loops_[i]->Run(stop); });
  loops_.front()->Run(stop);
  for (auto& t : others) t.join();
}

Status CompactorLoops::Ready() const {
  for (const auto& l : loops_) SF_RETURN_IF_ERROR(l->Ready());
  return Status::Ok();
}

}  // namespace streamfleet::compactor
