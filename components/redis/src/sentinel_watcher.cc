#include "sentinel_watcher.h"

#include <algorithm>
#include <map>
#include <utility>

#include "redis_internal.h"
#include "sentinel.h"
#include "streamfleet/base/log.h"
#include "streamfleet/redis/cluster_slots.h"

namespace streamfleet {

namespace {

// A subscription's read waits this long for a message, then the watcher resubscribes (and compares the
// master's address): an idle sentinel connection that died silently is noticed within this time.
constexpr int kSubscribedReadTimeoutMs = 30'000;
// Between two sentinels that could not be reached.
constexpr int kRetryMs = 500;

// Short: the watcher's own connections must not hold up its stop (the last client's destructor joins it).
constexpr int kWatcherTimeoutMs = 1000;

// Everything the watcher's connections depend on: configurations that differ in any of it get their own.
std::string WatcherKey(const RedisConfig& c) {
  std::string key = c.sentinel.master + "|" + c.sentinel.username + "|" + c.sentinel.password + "|" +
                    (c.tls.enabled ? "tls" : "tcp") + "|" + c.tls.ca_file + "|" + c.tls.cert_file + "|" +
                    c.tls.key_file + "|" + c.tls.server_name + (c.tls.insecure ? "|insecure" : "");
  for (const auto& n : c.sentinel.nodes) key += "|" + n;
  return key;
}

RedisConfig WatcherConfig(RedisConfig c) {
  c.connect_timeout_ms = std::min(c.connect_timeout_ms, kWatcherTimeoutMs);
  c.command_timeout_ms = std::min(c.command_timeout_ms, kWatcherTimeoutMs);
  return c;
}

}  // namespace

std::shared_ptr<SentinelWatcher> SentinelWatcher::For(const RedisConfig& config) {
  static std::mutex mu;
  static auto* watchers = new std::map<std::string, std::weak_ptr<SentinelWatcher>>();  // never destroyed
  std::lock_guard<std::mutex> l(mu);
  auto& slot = (*watchers)[WatcherKey(config)];
  if (auto w = slot.lock()) return w;
  auto w = std::make_shared<SentinelWatcher>(config);
  slot = w;
  return w;
}

SentinelWatcher::SentinelWatcher(const RedisConfig& config)
    : config_(WatcherConfig(config)), thread_([this] { Run(); }) {}

SentinelWatcher::~SentinelWatcher() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    if (current_ != nullptr) current_->Shutdown();  // its blocked read returns at once
  }
  wake_.notify_all();
  thread_.join();
}

void SentinelWatcher::Run() {
  // A write to a sentinel that closed (or to the socket Shutdown() closed) must be an error, not SIGPIPE: the
  // signal goes to this thread, and the CLI and the tests do not ignore it as the daemons do.
  BlockSigpipeOnThisThread();
  size_t failed_in_a_row = 0;
  for (size_t i = 0;; ++i) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return;
    }
    failed_in_a_row = Watch(config_.sentinel.nodes[i % config_.sentinel.nodes.size()]) ? 0 : failed_in_a_row + 1;
    if (failed_in_a_row == config_.sentinel.nodes.size()) {
      // Once per outage, not at every retry: the clients report it themselves at their next connect.
      SF_LOG_WARN("redis sentinel: no sentinel of {} accepts a +switch-master subscription; retrying",
                  config_.sentinel.master);
    }
    std::unique_lock<std::mutex> l(mu_);
    wake_.wait_for(l, std::chrono::milliseconds(kRetryMs), [this] { return stop_; });
  }
}

bool SentinelWatcher::Watch(const std::string& node) {
  auto t = ConnectSentinel(config_, node);
  if (!t.ok()) return false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return true;
    current_ = t->get();
  }
  // Subscribe first, then ask (on another connection: a subscribed one takes no other command): a switch
  // between the two is then seen twice (harmless), never missed.
  (*t)->Append({"SUBSCRIBE", "+switch-master"});
  auto subscribed = (*t)->Read();
  bool confirmed = false;
  if (subscribed.ok()) {
    RedisValue v = OwnReply(*subscribed);
    freeReplyObject(*subscribed);
    confirmed = v.is_array() && !v.elements.empty() && v.elements[0].str == "subscribe";  // not -NOPERM, -NOAUTH
  }
  if (!confirmed) {
    std::lock_guard<std::mutex> l(mu_);
    current_ = nullptr;
    return false;
  }
  auto m = AskSentinelsForMaster(config_);
  if (m.ok()) Noticed(m->first, m->second);
  (*t)->SetTimeout(kSubscribedReadTimeoutMs);
  for (;;) {
    auto reply = (*t)->Read();
    if (!reply.ok()) break;
    RedisValue v = OwnReply(*reply);
    freeReplyObject(*reply);
    // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
    if (!v.is_array() || v.elements.size() != 3 || v.elements[0].str != "message") continue;
    std::vector<std::string> words = SplitList(v.elements[2].str, ' ');
    if (words.size() != 5 || words[0] != config_.sentinel.master) continue;
    if (auto hp = SplitHostPort(words[3] + ":" + words[4])) Noticed(hp->first, hp->second);
  }
  std::lock_guard<std::mutex> l(mu_);
  current_ = nullptr;
  return true;
}

void SentinelWatcher::Noticed(const std::string& host, int port) {
  std::string m = host + ":" + std::to_string(port);
  std::string previous;
  {
    // The address first, then the count: a client that sees the new count also sees the new address.
    std::lock_guard<std::mutex> l(master_mu_);
    if (m == announced_) return;
    previous = std::exchange(announced_, m);
  }
  if (!previous.empty()) {
    SF_LOG_WARN("redis sentinel: master {} switched from {} to {}: clients reconnect", config_.sentinel.master,
                previous, m);
  }
  // The first address known counts too: a client that connected before the first subscription (it asked the
  // sentinels itself) may have been told of a master that a switch in between replaced. Each such client
  // compares once; one on this address only adopts the count (RedisClient::EnsureConnected).
  epoch_.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace streamfleet
