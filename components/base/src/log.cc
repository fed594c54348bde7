#include "streamfleet/base/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace streamfleet {

namespace {

thread_local LogContext current;

bool Empty(const LogContext& c) { return c.org == 0 && c.generation == 0 && c.task.empty() && c.entry.empty(); }

// Text mode: the %* flag appends " [org=7 gen=12 task=... entry=...]" when a context is set.
class ContextFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const LogContext& c = current;
    if (Empty(c)) return;
    std::string s = " [";
    auto add = [&s](const char* k, const std::string& v) {
      if (v.empty()) return;
      if (s.size() > 2) s += ' ';
      s += k;
      s += '=';
      s += v;
    };
    add("org", c.org ? std::to_string(c.org) : "");
    add("gen", c.generation ? std::to_string(c.generation) : "");
    add("task", c.task);
    add("entry", c.entry);
    s += ']';
    dest.append(s.data(), s.data() + s.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<ContextFlag>(); }
};

// JSON mode: the message goes through nlohmann::json, so quotes, control characters and invalid UTF-8 in
// it can never break the line (a pattern like {"msg":"%v"} would).
class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(msg.time);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time - secs).count();
    std::time_t t = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[32];
    size_t n = std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(ts + n, sizeof(ts) - n, ".%03dZ", static_cast<int>(ms));
    auto level = spdlog::level::to_string_view(msg.level);
    nlohmann::json j = {{"ts", ts},
                        {"level", std::string(level.data(), level.size())},
                        {"process", std::string(msg.logger_name.data(), msg.logger_name.size())},
                        {"msg", std::string(msg.payload.data(), msg.payload.size())}};
    const LogContext& c = current;
    if (c.org) j["org"] = c.org;
    if (c.generation) j["generation"] = c.generation;
    if (!c.task.empty()) j["task"] = c.task;
    if (!c.entry.empty()) j["entry"] = c.entry;
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

std::unique_ptr<spdlog::formatter> MakeLogFormatter(bool json) {
  if (json) return std::make_unique<JsonFormatter>();
  auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  f->add_flag<ContextFlag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %n: %v%*");
  return f;
}

void InitLogging(const std::string& process, const std::string& level, bool json) {
  auto logger = spdlog::stderr_logger_mt(process);
  logger->set_formatter(MakeLogFormatter(json));
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

LogScope::LogScope(const LogContext& ctx) : saved_(current) {
  if (ctx.org) current.org = ctx.org;
  if (ctx.generation) current.generation = ctx.generation;
  if (!ctx.task.empty()) current.task = ctx.task;
  if (!ctx.entry.empty()) current.entry = ctx.entry;
}

LogScope::~LogScope() { current = std::move(saved_); }

const LogContext& CurrentLogContext() { return current; }

}  // namespace streamfleet
