#pragma once
// One logging facade for the fleet, over spdlog. Call InitLogging once in main; tests may skip it.
#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <memory>
#include <string>

namespace streamfleet {

// level: trace|debug|info|warn|error. json: one JSON object per line (for log shippers).
void InitLogging(const std::string& process, const std::string& level, bool json);

// The line format InitLogging installs, for any sink. json: {"ts","level","process","msg", ids...}, escaped
// by a JSON library (quotes, newlines, invalid UTF-8), one object per line. text: "ts level process: msg",
// plus " [gen=... task=... entry=...]" when the thread has a log context.
std::unique_ptr<spdlog::formatter> MakeLogFormatter(bool json);

// Ids of the work the current thread is doing, attached to each line it logs, so a generation's or a task's
// lines can be found with one filter. Zero / empty means not set. Built by chaining:
//   LogScope scope(LogContext().Generation(g.org, g.gen).Entry(e.id));
struct LogContext {
  int64_t org = 0;
  int64_t generation = 0;
  std::string task;   // task id
  std::string entry;  // stream entry id

  LogContext& Generation(int64_t org_id, int64_t gen_id) {
    org = org_id;
    generation = gen_id;
    return *this;
  }
  LogContext& Task(std::string id) {
    task = std::move(id);
    return *this;
  }
  LogContext& Entry(std::string id) {
    entry = std::move(id);
    return *this;
  }
};

// Sets the current thread's log context for its lifetime (fields it leaves unset are kept from the outer
// scope) and restores the previous one on exit. A thread_local copy: cheap, no locking.
class LogScope {
 public:
  explicit LogScope(const LogContext& ctx);
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  LogContext saved_;
};

// The current thread's context (for the formatters and tests).
const LogContext& CurrentLogContext();

}  // namespace streamfleet

#define SF_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define SF_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define SF_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define SF_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
