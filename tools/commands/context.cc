#include "tools/commands/context.h"

#include <iostream>

namespace streamfleet::ctl {

void Context::OnRun(CLI::App* command, Action action, bool needs_config) {
  commands_.push_back({command, std::move(action), needs_config});
}

const Context::Command* Context::Parsed() const {
  for (const Command& c : commands_) {
    if (c.app->parsed()) return &c;
  }
  return nullptr;
}

void Context::Print(const nlohmann::json& j, const std::string& human) const {
  if (as_json) {
    // Invalid UTF-8 (a handler's raw result or error, a dead letter's reason) is replaced, not thrown on: the
    // strict dump threw out of every --json listing that held one.
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << human;
  }
}

}  // namespace streamfleet::ctl
