#include "streamfleet/common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace streamfleet {

void InitLogging(const std::string& process, const std::string& level, bool json) {
  auto logger = spdlog::stderr_logger_mt(process);
  if (json) {
    // Messages are produced by our own code and never contain raw quotes from user input unescaped
    // (ids are validated integers); payloads are never logged.
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","process":"%n","msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %n: %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace streamfleet
