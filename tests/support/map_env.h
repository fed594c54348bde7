#pragma once
// Test support: an EnvLookup over a map, so tests configure processes without touching the environment.
#include <map>
#include <string>

#include "streamfleet/base/config.h"

namespace streamfleet::testing {

inline EnvLookup MapEnv(std::map<std::string, std::string> env) {
  return [env = std::move(env)](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace streamfleet::testing
