// Configuration from the environment (config.h): the input is "NAME=value" lines handed to LoadConfig as
// its environment, and every value also goes through the value parsers on their own (durations, points in
// time, redis:// URLs, host:port, lists).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "streamfleet/base/config.h"

using namespace streamfleet;

namespace {

void CheckValue(const std::string& v) {
  for (int64_t unit : {int64_t{1}, int64_t{1000}}) {
    auto d = ParseDurationMs(v, unit);
    if (d.ok()) FUZZ_CHECK(*d >= 0);
  }
  (void)ParseTimeMs(v);
  if (auto r = ParseRedisUrl(v); r.ok()) {
    FUZZ_CHECK(!r->host.empty() && r->port > 0 && r->port <= 65535 && r->db >= 0);
    FUZZ_CHECK(!r->seeds.empty() && r->seeds[0] == r->host + ":" + std::to_string(r->port));
  }
  if (auto l = ParseListen(v); l.ok()) FUZZ_CHECK(!l->first.empty() && l->second >= 0 && l->second <= 65535);
  for (const std::string& item : SplitList(v, ',')) FUZZ_CHECK(!item.empty() && item.find(',') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> env;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    size_t eq = line.find('=');
    std::string value(eq == std::string_view::npos ? line : line.substr(eq + 1));
    CheckValue(value);
    if (eq != std::string_view::npos) env[std::string(line.substr(0, eq))] = value;
  }
  auto lookup = [&env](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  auto c = LoadConfig(lookup, "127.0.0.1:0");
  if (c.ok()) {
    FUZZ_CHECK(c->redis.port > 0 && c->redis.port <= 65535 && !c->redis.host.empty());
    FUZZ_CHECK(!c->redis.seeds.empty() && (c->redis.cluster || c->redis.seeds.size() == 1));
    FUZZ_CHECK(!c->redis.cluster || (c->redis.db == 0 && c->key_schema == KeySchemaMode::kCluster));
    FUZZ_CHECK(c->chunk_streams >= 1 && !c->queues.empty() && c->idle_timeout_ms >= 1);
    for (const auto& [org, token] : c->ingest_tokens) FUZZ_CHECK(org > 0 && !token.empty());
    // The task specs the worker uses without checking again (task_specs.h).
    for (const auto& [type, p] : c->task_policies) {
      FUZZ_CHECK(!type.empty() && p.max_attempts >= 1 && p.base_ms >= 0 && p.cap_ms >= 0);
    }
    for (const auto& p : c->periodic_tasks) {
      FUZZ_CHECK(!p.name.empty() && !p.type.empty() && p.interval_ms > 0 && ValidQueueName(p.queue));
    }
    for (const auto& [type, ms] : c->task_timeouts) FUZZ_CHECK(!type.empty() && ms >= 0);
  } else {
    FUZZ_CHECK(c.status().code() == StatusCode::kInvalidArgument);
  }
  return 0;
}
