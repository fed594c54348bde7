#pragma once
// Tests: a DNS lookup that hangs for one name (a pod's DNS down: getaddrinfo waits out its resolver's attempts
// times the search domains) while any other name resolves to this machine. No DNS server can be made to hang
// here, so the lookup is the one stand-in; the connects after it are real.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "../src/host_lookup.h"

namespace streamfleet::testing {

class HangingHostLookup {
 public:
  static constexpr const char* kHost = "hanging.redis.test";

  HangingHostLookup()
      : release_(std::make_shared<std::atomic<bool>>(false)),
        stand_in_(
            [release = release_](const char* host, const addrinfo* hints, addrinfo** res) {
              if (std::string(host) == kHost) {
                while (!release->load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
                return EAI_AGAIN;
              }
              return getaddrinfo("127.0.0.1", nullptr, hints, res);
            },
            // The abandoned lookup ends on its own thread once let go (it holds the flag, not this object).
            [release = release_] { release->store(true); }) {}

 private:
  std::shared_ptr<std::atomic<bool>> release_;
  ScopedHostLookupForTesting stand_in_;
};

}  // namespace streamfleet::testing
