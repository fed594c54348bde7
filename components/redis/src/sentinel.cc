#include "sentinel.h"

#include <charconv>

#include "redis_internal.h"
#include "redis_transport.h"
#include "streamfleet/redis/cluster_slots.h"

namespace streamfleet {

StatusOr<RedisValue> AskSentinel(RedisTransport& t, const std::vector<std::string>& argv) {
  t.Append(argv);
  auto reply = t.Read();
  if (!reply.ok()) return reply.status();
  RedisValue v = OwnReply(*reply);
  freeReplyObject(*reply);
  if (v.is_error()) return TranslateRedisError(v.str);
  return v;
}

StatusOr<std::unique_ptr<RedisTransport>> ConnectSentinel(const RedisConfig& config, const std::string& node) {
  auto hp = SplitHostPort(node);
  if (!hp) return Status::InvalidArgument("not host:port");
  RedisConfig s;
  s.host = hp->first;
  s.port = hp->second;
  s.connect_timeout_ms = config.connect_timeout_ms;
  s.command_timeout_ms = config.command_timeout_ms;
  s.tls = config.tls;
  auto t = ConnectTransport(s);
  if (!t.ok()) return t.status();
  // As for Redis itself (NeedsAuth): an ACL user without a password (`nopass`) is authenticated too; with
  // only a password set, the sentinel's default user.
  if (!config.sentinel.password.empty() || !config.sentinel.username.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!config.sentinel.username.empty()) auth.push_back(config.sentinel.username);
    auth.push_back(config.sentinel.password);
    auto a = AskSentinel(**t, auth);
    if (!a.ok()) return a.status();
  }
  return t;
}

StatusOr<std::pair<std::string, int>> MasterAddress(const RedisValue& answer, const std::string& master) {
  if (!answer.is_array() || answer.elements.size() != 2) {
    return Status::NotFound("does not monitor a master named " + master);
  }
  int port = 0;
  const std::string& p = answer.elements[1].str;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc() || end != p.data() + p.size() || port <= 0) return Status::Internal("bad port " + p);
  return std::make_pair(answer.elements[0].str, port);
}

namespace {

StatusOr<std::pair<std::string, int>> AskOne(const RedisConfig& config, const std::string& node) {
  auto t = ConnectSentinel(config, node);
  if (!t.ok()) return t.status();
  auto r = AskSentinel(**t, {"SENTINEL", "get-master-addr-by-name", config.sentinel.master});
  if (!r.ok()) return r.status();
  return MasterAddress(*r, config.sentinel.master);
}

}  // namespace

StatusOr<std::pair<std::string, int>> AskSentinelsForMaster(const RedisConfig& config,
                                                            const std::set<std::string>& refused) {
  std::string answers;
  for (const auto& node : config.sentinel.nodes) {
    auto m = AskOne(config, node);
    if (m.ok() && refused.count(m->first + ":" + std::to_string(m->second)) == 0) return m;
    answers += (answers.empty() ? "" : "; ") + node + ": " +
               (m.ok() ? m->first + ":" + std::to_string(m->second) + ", not a master" : m.status().message());
  }
  return Status::Unavailable("no sentinel named the master " + config.sentinel.master + " (" + answers + ")");
}

}  // namespace streamfleet
