#include "queue-worker/queues.h"
#include "streamfleet/base/random.h"

#include <cstdint>

namespace streamfleet::worker {

std::vector<std::string> QueueNames(const Config& config) {
  std::vector<std::string> names;
  for (const auto& [q, w] : config.queues) names.push_back(q);
  return names;
}

std::vector<std::string> WeightedOrder(const std::vector<std::pair<std::string, int>>& queues) {
  std::vector<std::pair<std::string, int>> left = queues;
  std::vector<std::string> order;
  while (!left.empty()) {
    int total = 0;
    for (auto& [q, w] : left) total += w;
    int pick = static_cast<int>(RandomU64() % static_cast<uint64_t>(total));
    for (size_t i = 0; i < left.size(); ++i) {
      pick -= left[i].second;
      if (pick < 0) {
        order.push_back(left[i].first);
        left.erase(left.begin() + static_cast<long>(i));
        break;
      }
    }
  }
  return order;
}

}  // namespace streamfleet::worker
