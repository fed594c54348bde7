#pragma once
// Internal to the redis component: a host name looked up within a time limit. getaddrinfo has none of its
// own (the resolver's timeout times its attempts times the search domains: tens of seconds in a pod whose
// DNS is down), and hiredis and our TLS connect called it on the calling thread, so REDIS_CONNECT_TIMEOUT
// did not bound a connect to a host name: a worker's slot, a compactor loop or a request thread stalled.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <netdb.h>

#include "streamfleet/base/status.h"

namespace streamfleet {

// An IPv4 or IPv6 address rather than a name.
bool IsIpLiteral(const std::string& host);

// The addresses of `host` (numeric strings, IPv4 ones first: redis-server binds 127.0.0.1 unless told
// otherwise, and "localhost" often lists ::1 first), or kUnavailable naming the host when the lookup
// fails or takes longer than timeout_ms. An IP literal is returned as it is, without a lookup. The lookup
// runs on a thread of its own; one that outlives the limit finishes there and is dropped.
StatusOr<std::vector<std::string>> LookUpHost(const std::string& host, int timeout_ms);

// What is left of a connect timeout that a lookup and then the connects to each address share.
class ConnectDeadline {
 public:
  explicit ConnectDeadline(int timeout_ms)
      : at_(std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms)) {}
  int LeftMs() const {
    return static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(at_ - std::chrono::steady_clock::now()).count());
  }

 private:
  std::chrono::steady_clock::time_point at_;
};

// Tests: replaces getaddrinfo for the lookups that follow (nullptr: getaddrinfo again).
using HostLookupFn = std::function<int(const char* host, const addrinfo* hints, addrinfo** res)>;
void SetHostLookupForTesting(HostLookupFn fn);

// Tests: the stand-in for the scope's life, also when an assertion leaves it early; `on_exit` runs first
// (to let go of a lookup the stand-in is holding).
class ScopedHostLookupForTesting {
 public:
  ScopedHostLookupForTesting(HostLookupFn fn, std::function<void()> on_exit) : on_exit_(std::move(on_exit)) {
    SetHostLookupForTesting(std::move(fn));
  }
  ~ScopedHostLookupForTesting() {
    if (on_exit_) on_exit_();
    SetHostLookupForTesting(nullptr);
  }
  ScopedHostLookupForTesting(const ScopedHostLookupForTesting&) = delete;
  ScopedHostLookupForTesting& operator=(const ScopedHostLookupForTesting&) = delete;

 private:
  std::function<void()> on_exit_;
};

}  // namespace streamfleet
