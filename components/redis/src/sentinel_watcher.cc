#include "sentinel_watcher.h"

#include <map>

#include "redis_internal.h"
#include "sentinel.h"
#include "streamfleet/base/log.h"

namespace streamfleet {

namespace {

// A subscription's read waits this long for a message, then the watcher resubscribes (and compares the
// master's address): an idle sentinel connection that died silently is noticed within this time.
constexpr int kSubscribedReadTimeoutMs = 30'000;
// Between two sentinels that could not be reached.
constexpr int kRetryMs = 500;

std::string WatcherKey(const RedisConfig& c) {
  std::string key = c.sentinel.master + "|" + c.sentinel.username + "|" + (c.tls.enabled ? "tls" : "tcp");
  for (const auto& n : c.sentinel.nodes) key += "|" + n;
  return key;
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

SentinelWatcher::SentinelWatcher(const RedisConfig& config) : config_(config), thread_([this] { Run(); }) {}

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
  for (size_t i = 0;; ++i) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return;
    }
    Watch(config_.sentinel.nodes[i % config_.sentinel.nodes.size()]);
    std::unique_lock<std::mutex> l(mu_);
    wake_.wait_for(l, std::chrono::milliseconds(kRetryMs), [this] { return stop_; });
  }
}

void SentinelWatcher::Watch(const std::string& node) {
  auto t = ConnectSentinel(config_, node);
  if (!t.ok()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return;
    current_ = t->get();
  }
  // Subscribe first, then ask (on another connection: a subscribed one takes no other command): a switch
  // between the two is then seen twice (harmless), never missed.
  (*t)->Append({"SUBSCRIBE", "+switch-master"});
  auto subscribed = (*t)->Read();
  if (!subscribed.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    current_ = nullptr;
    return;
  }
  freeReplyObject(*subscribed);
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
    std::vector<std::string> words;
    for (size_t at = 0, sp; at <= v.elements[2].str.size(); at = sp + 1) {
      sp = v.elements[2].str.find(' ', at);
      if (sp == std::string::npos) sp = v.elements[2].str.size();
      words.push_back(v.elements[2].str.substr(at, sp - at));
    }
    if (words.size() != 5 || words[0] != config_.sentinel.master) continue;
    int port = std::atoi(words[4].c_str());
    if (port > 0) Noticed(words[3], port);
  }
  std::lock_guard<std::mutex> l(mu_);
  current_ = nullptr;
}

void SentinelWatcher::Noticed(const std::string& host, int port) {
  std::string m = host + ":" + std::to_string(port);
  if (m == master_) return;
  if (!master_.empty()) {
    SF_LOG_WARN("redis sentinel: master {} switched from {} to {}: clients reconnect", config_.sentinel.master,
                master_, m);
    epoch_.fetch_add(1, std::memory_order_acq_rel);
  }
  master_ = m;
}

}  // namespace streamfleet
