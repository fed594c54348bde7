#pragma once
// Sentinel's `+switch-master` announcements, for RedisClient (docs/deploy.md, "High availability"). A client
// behind Sentinel otherwise notices a failover only when its master fails it: a lost connection, or
// `-READONLY` on a write once the old master has been turned into a replica. Until then a client that only
// reads, or whose old master is cut off from the sentinels but not from it, keeps talking to a server that is
// no longer the master. One watcher per process and Sentinel set: a thread subscribed to `+switch-master` on
// one sentinel (the next one when it goes away), which counts the failovers of the configured master;
// each client compares that count with the one it connected under, and reconnects (asking the sentinels)
// when it moved.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "redis_transport.h"
#include "streamfleet/base/config.h"

namespace streamfleet {

class SentinelWatcher {
 public:
  // The process's watcher of config.sentinel (master name and sentinels), started on first use and stopped
  // when its last client lets it go.
  static std::shared_ptr<SentinelWatcher> For(const RedisConfig& config);

  explicit SentinelWatcher(const RedisConfig& config);
  ~SentinelWatcher();
  SentinelWatcher(const SentinelWatcher&) = delete;
  SentinelWatcher& operator=(const SentinelWatcher&) = delete;

  // How many times the master's address became known or changed since the watcher started: its first
  // subscription's answer, a `+switch-master` of the configured master, or, after a (re)subscription, an
  // address other than the last one known (what a gap between two subscriptions could have missed).
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  // The master's "host:port" as last announced or asked ("" before the first subscription).
  std::string master() const {
    std::lock_guard<std::mutex> l(master_mu_);
    return announced_;
  }

 private:
  void Run();
  // One subscription on `node` until it fails or the watcher stops. False when it could not subscribe.
  bool Watch(const std::string& node);
  void Noticed(const std::string& host, int port);

  RedisConfig config_;
  std::atomic<uint64_t> epoch_{0};
  mutable std::mutex master_mu_;
  std::string announced_;  // "host:port" last known, "" before the first (under master_mu_)

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  RedisTransport* current_ = nullptr;  // the subscription's connection, for Shutdown() at stop (under mu_)
  std::thread thread_;
};

}  // namespace streamfleet
