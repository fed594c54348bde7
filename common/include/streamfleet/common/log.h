#pragma once
// One logging facade for the fleet, over spdlog. Call InitLogging once in main; tests may skip it.
#include <spdlog/spdlog.h>

#include <string>

namespace streamfleet {

// level: trace|debug|info|warn|error. json: one JSON object per line (for log shippers).
void InitLogging(const std::string& process, const std::string& level, bool json);

}  // namespace streamfleet

#define SF_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define SF_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define SF_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define SF_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
