#pragma once
// Internal to the redis component: a host name looked up within a time limit. getaddrinfo has none of its
// own (the resolver's timeout times its attempts times the search domains: tens of seconds in a pod whose
// DNS is down), and hiredis and our TLS connect called it on the calling thread, so REDIS_CONNECT_TIMEOUT
// did not bound a connect to a host name: a worker's slot, a compactor loop or a request thread stalled.
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

// Tests: replaces getaddrinfo for the lookups that follow (nullptr: getaddrinfo again).
using HostLookupFn = std::function<int(const char* host, const addrinfo* hints, addrinfo** res)>;
void SetHostLookupForTesting(HostLookupFn fn);

}  // namespace streamfleet
