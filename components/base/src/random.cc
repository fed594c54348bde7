#include "streamfleet/base/random.h"

#include <random>

namespace streamfleet {

uint64_t RandomU64() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine();
}

}  // namespace streamfleet
