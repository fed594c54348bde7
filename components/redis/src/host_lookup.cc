#include "host_lookup.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace streamfleet {
namespace {

std::mutex g_lookup_mu;
HostLookupFn g_lookup;  // guarded by g_lookup_mu; empty: getaddrinfo

// Lookups still running, process-wide. With DNS down each lasts as long as the resolver tries (tens of
// seconds) while clients retry every few: without a cap the threads would pile up to the process limit.
constexpr int kMaxLookupsRunning = 32;
std::atomic<int> g_running{0};

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
  if (g_running.fetch_add(1) >= kMaxLookupsRunning) {
    g_running.fetch_sub(1);
    return Status::Unavailable("cannot look up " + host + ": " + std::to_string(kMaxLookupsRunning) +
                               " lookups are already waiting for the DNS");
  }
  auto lookup = std::make_shared<Lookup>();
  auto run = [lookup, host, fn = std::move(fn)] {
    // IPv4 first, IPv6 only when there is none, as hiredis 0.14 looked names up: no AAAA query (and no
    // wait on one) for a name with an IPv4 address.
    std::vector<std::string> v4, v6;
    int rc = 0;
    for (int family : {AF_INET, AF_INET6}) {
      addrinfo hints{};
      hints.ai_family = family;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* res = nullptr;
      rc = fn(host.c_str(), &hints, &res);
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
      if (!v4.empty() || !v6.empty()) {
        rc = 0;
        break;
      }
    }
    std::lock_guard<std::mutex> l(lookup->mu);
    lookup->rc = rc;
    lookup->v4 = std::move(v4);
    lookup->v6 = std::move(v6);
    lookup->done = true;
    lookup->done_cv.notify_all();
    g_running.fetch_sub(1);
  };
  try {
    std::thread(std::move(run)).detach();
  } catch (const std::system_error& e) {  // out of threads: a failed connect, not std::terminate
    g_running.fetch_sub(1);
    return Status::Unavailable("cannot look up " + host + ": no thread for the lookup (" + e.what() + ")");
  }
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
