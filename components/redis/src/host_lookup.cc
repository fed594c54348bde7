#include "host_lookup.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace streamfleet {
namespace {

std::mutex g_lookup_mu;
HostLookupFn g_lookup;  // guarded by g_lookup_mu; empty: getaddrinfo

// What the lookup thread and the caller share: the caller may have given up and gone when it ends.
struct Lookup {
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  int rc = 0;
  std::vector<std::string> v4, v6;
};

}  // namespace

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

void SetHostLookupForTesting(HostLookupFn fn) {
  std::lock_guard<std::mutex> l(g_lookup_mu);
  g_lookup = std::move(fn);
}

StatusOr<std::vector<std::string>> LookUpHost(const std::string& host, int timeout_ms) {
  if (IsIpLiteral(host)) return std::vector<std::string>{host};
  HostLookupFn fn;
  {
    std::lock_guard<std::mutex> l(g_lookup_mu);
    fn = g_lookup;
  }
  if (!fn) fn = [](const char* h, const addrinfo* hints, addrinfo** res) { return getaddrinfo(h, nullptr, hints, res); };
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host, fn = std::move(fn)] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = fn(host.c_str(), &hints, &res);
    std::vector<std::string> v4, v6;
    for (const addrinfo* a = rc == 0 ? res : nullptr; a != nullptr; a = a->ai_next) {
      char ip[INET6_ADDRSTRLEN] = "";
      if (a->ai_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr, ip, sizeof(ip));
        v4.emplace_back(ip);
      } else if (a->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr, ip, sizeof(ip));
        v6.emplace_back(ip);
      }
    }
    if (res != nullptr) freeaddrinfo(res);
    std::lock_guard<std::mutex> l(lookup->mu);
    lookup->rc = rc;
    lookup->v4 = std::move(v4);
    lookup->v6 = std::move(v6);
    lookup->done = true;
    lookup->done_cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> l(lookup->mu);
  if (!lookup->done_cv.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return lookup->done; })) {
    return Status::Unavailable("looking up " + host + " took longer than the connect timeout (" +
                               std::to_string(timeout_ms) + " ms)");
  }
  if (lookup->rc != 0) return Status::Unavailable("cannot look up " + host + ": " + gai_strerror(lookup->rc));
  std::vector<std::string> all = std::move(lookup->v4);
  all.insert(all.end(), lookup->v6.begin(), lookup->v6.end());
  if (all.empty()) return Status::Unavailable("cannot look up " + host + ": no address");
  return all;
}

}  // namespace streamfleet
