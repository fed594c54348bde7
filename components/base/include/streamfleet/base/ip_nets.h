#pragma once
// IP networks (CIDR) and the policy deciding which addresses an outbound request of the fleet may connect
// to (WEBHOOK_ALLOW_NETS / WEBHOOK_DENY_NETS). A task payload names the URL, so without it anyone who can
// enqueue a task could make a worker reach its own loopback services or the cloud metadata endpoint (SSRF).
//
// The policy is checked on the address actually connected to (the worker's libcurl open-socket callback),
// not on a name resolved earlier: a DNS answer that changes between a check and the connect (rebinding)
// cannot slip past it.
//
// Thread-safety: immutable after construction; pure functions.
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "streamfleet/base/status.h"

namespace streamfleet {

// An IPv4 or IPv6 address; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 address, so the
// IPv4 rules apply to it (a dual-stack socket connects to 127.0.0.1 through ::ffff:127.0.0.1).
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4: the first 4

  static bool FromSockaddr(const sockaddr* sa, IpAddress& out);
  std::string ToString() const;
};

struct IpNet {
  IpAddress base;
  int prefix = 0;    // leading bits that must match
  std::string text;  // as configured (or the built-in rule's), for messages

  bool Contains(const IpAddress& a) const;
};

// "10.0.0.0/8, fd00::/8, 192.0.2.7" (a bare address is one host). kInvalidArgument names the bad item.
StatusOr<std::vector<IpNet>> ParseIpNets(std::string_view list);

// Which destinations are refused, in this order:
//   1. an address in a WEBHOOK_DENY_NETS net: refused, whatever allows it (deny beats allow);
//   2. an address in a built-in refused net (loopback and unspecified 127.0.0.0/8, 0.0.0.0/8, ::1, ::;
//      link-local 169.254.0.0/16, fe80::/10; cloud metadata 169.254.169.254, fd00:ec2::254): refused unless
//      a WEBHOOK_ALLOW_NETS net holds it and is at least as narrow as the narrowest built-in net holding it
//      (127.0.0.0/8 opens loopback; 0.0.0.0/0 opens nothing built in; 169.254.0.0/16 opens link-local but
//      not the metadata address, which needs 169.254.169.254 itself);
//   3. anything else: allowed (WEBHOOK_ALLOW_NETS only makes exceptions to the refusals above).
class DestinationPolicy {
 public:
  DestinationPolicy() = default;  // the built-in refusals only
  DestinationPolicy(std::vector<IpNet> allow, std::vector<IpNet> deny);

  // "" when `a` may be connected to, else why not: the address and the rule, e.g.
  // "127.0.0.1 is in 127.0.0.1/8 (loopback), refused unless WEBHOOK_ALLOW_NETS holds it".
  std::string Refusal(const IpAddress& a) const;

 private:
  std::vector<IpNet> allow_, deny_;
};

}  // namespace streamfleet
