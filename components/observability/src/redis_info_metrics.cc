#include "streamfleet/observability/redis_info_metrics.h"

#include <nlohmann/json.hpp>
#include <sstream>

namespace streamfleet {

namespace {
prometheus::Counter& Ctr(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}
prometheus::Gauge& Gau(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}
double Num(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) return 0;
  try {
    return std::stod(it->second);
  } catch (...) {
    return 0;
  }
}
}  // namespace

std::map<std::string, std::string> ParseInfo(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto colon = line.find(':');
    if (colon != std::string::npos) out[line.substr(0, colon)] = line.substr(colon + 1);
  }
  return out;
}

RedisInfoMetrics::RedisInfoMetrics(prometheus::Registry& r)
    : up_(Gau(r, "streamfleet_redis_server_up", "1 when the last INFO sample of the Redis server succeeded")),
      hits_(Ctr(r, "streamfleet_redis_keyspace_hits_total", "Redis keyspace hits (INFO keyspace_hits)")),
      misses_(Ctr(r, "streamfleet_redis_keyspace_misses_total", "Redis keyspace misses (INFO keyspace_misses)")),
      evicted_(Ctr(r, "streamfleet_redis_evicted_keys_total", "Keys evicted by maxmemory (INFO evicted_keys)")),
      expired_(Ctr(r, "streamfleet_redis_expired_keys_total", "Keys expired by TTL (INFO expired_keys)")),
      used_memory_(Gau(r, "streamfleet_redis_used_memory_bytes", "Redis used_memory")),
      maxmemory_(Gau(r, "streamfleet_redis_maxmemory_bytes", "Redis maxmemory (0 = unlimited)")),
      clients_(Gau(r, "streamfleet_redis_connected_clients", "Redis connected_clients")) {}

void RedisInfoMetrics::Mirror(prometheus::Counter& c, const std::string& node, const std::string& key,
                              const std::map<std::string, std::string>& info) {
  double v = Num(info, key);
  const std::string last_key = node + "|" + key;  // per server: one master's restart resets only its own
  auto it = last_.find(last_key);
  // First sample counts everything so far; a lower value means Redis restarted: count from zero.
  double inc = it == last_.end() ? v : (v >= it->second ? v - it->second : v);
  if (inc > 0) c.Increment(inc);
  last_[last_key] = v;
}

Status RedisInfoMetrics::Sample(RedisClient& redis) {
  // Every master of a cluster (one entry, the server, otherwise): counters add up, gauges are fleet totals.
  double used = 0, max = 0, clients = 0;
  const std::vector<std::string> masters = redis.Masters();
  if (masters.empty()) {
    up_.Set(0);
    return Status::Unavailable("redis: no master reachable");
  }
  for (const std::string& node : masters) {
    auto r = redis.CommandOn(node, {"INFO"});
    if (!r.ok()) {
      up_.Set(0);
      return r.status();
    }
    auto info = ParseInfo(r->str);
    Mirror(hits_, node, "keyspace_hits", info);
    Mirror(misses_, node, "keyspace_misses", info);
    Mirror(evicted_, node, "evicted_keys", info);
    Mirror(expired_, node, "expired_keys", info);
    used += Num(info, "used_memory");
    max += Num(info, "maxmemory");
    clients += Num(info, "connected_clients");
  }
  up_.Set(1);
  used_memory_.Set(used);
  maxmemory_.Set(max);
  clients_.Set(clients);
  return Status::Ok();
}

StatusOr<std::string> RedisInfoMetrics::HealthJson(RedisClient& redis) {
  auto info = redis.Command({"INFO"});
  auto size = redis.Command({"DBSIZE"});
  if (!info.ok() || !size.ok()) {
    return nlohmann::json{{"connected", false},
                          {"error", (!info.ok() ? info.status() : size.status()).message()}}
        .dump();
  }
  auto m = ParseInfo(info->str);
  return nlohmann::json{{"connected", true},
                        {"dbSize", size->integer},
                        {"total_connections_received", static_cast<int64_t>(Num(m, "total_connections_received"))},
                        {"total_commands_processed", static_cast<int64_t>(Num(m, "total_commands_processed"))},
                        {"used_memory_human", m.count("used_memory_human") ? m["used_memory_human"] : ""}}
      .dump();
}

}  // namespace streamfleet
