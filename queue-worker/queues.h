#pragma once
// The configured queues (QUEUES: name:weight pairs, in config order) as the worker's parts use them.
#include <string>
#include <utility>
#include <vector>

#include "streamfleet/base/config.h"

namespace streamfleet::worker {

// The queue names, in config order.
std::vector<std::string> QueueNames(const Config& config);

// The order a slot tries the queues in for one read: weighted sampling without replacement, so critical (6)
// comes first most often and low (1) still gets turns (a busy low queue cannot starve critical).
std::vector<std::string> WeightedOrder(const std::vector<std::pair<std::string, int>>& queues);

}  // namespace streamfleet::worker
