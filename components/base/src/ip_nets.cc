#include "streamfleet/base/ip_nets.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

#include "streamfleet/base/config.h"

namespace streamfleet {

namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// ::ffff:a.b.c.d becomes a.b.c.d: one set of IPv4 rules covers both spellings.
void Unmap(IpAddress& a) {
  if (!a.v6 || std::memcmp(a.bytes.data(), kMappedPrefix, sizeof kMappedPrefix) != 0) return;
  std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
  std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
  a.v6 = false;
}

bool ParseAddress(const std::string& text, IpAddress& out) {
  out = IpAddress{};
  if (inet_pton(AF_INET, text.c_str(), out.bytes.data()) == 1) return true;
  out.v6 = true;
  return inet_pton(AF_INET6, text.c_str(), out.bytes.data()) == 1;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

StatusOr<IpNet> ParseNet(std::string_view item) {
  const std::string text(item);
  const auto slash = item.find('/');
  IpNet net;
  net.text = text;
  if (!ParseAddress(std::string(item.substr(0, slash)), net.base)) {
    return Status::InvalidArgument("\"" + text + "\" is not an IPv4 or IPv6 address or CIDR net");
  }
  const int bits = net.base.v6 ? 128 : 32;
  net.prefix = bits;
  if (slash != std::string_view::npos) {
    std::string_view p = item.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), net.prefix);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || net.prefix < 0 || net.prefix > bits) {
      return Status::InvalidArgument("\"" + text + "\": prefix length must be 0-" + std::to_string(bits));
    }
  }
  if (net.base.v6 && net.prefix >= 96) {
    IpAddress unmapped = net.base;
    Unmap(unmapped);
    if (!unmapped.v6) {
      net.base = unmapped;
      net.prefix -= 96;
    }
  }
  return net;
}

struct BuiltinNet {
  IpNet net;
  const char* what;
};

// Destinations refused unless WEBHOOK_ALLOW_NETS opens them (DestinationPolicy).
const std::vector<BuiltinNet>& BuiltinRefusals() {
  static const std::vector<BuiltinNet> nets = [] {
    const std::pair<const char*, const char*> table[] = {
        {"127.0.0.0/8", "loopback"},
        {"::1/128", "loopback"},
        // Connecting to the unspecified address reaches this host on Linux.
        {"0.0.0.0/8", "this host"},
        {"::/128", "this host"},
        {"169.254.0.0/16", "link-local"},
        {"fe80::/10", "link-local"},
        // Instance credentials live here (AWS, GCP, Azure, OpenStack; AWS's IPv6 endpoint).
        {"169.254.169.254/32", "cloud metadata"},
        {"fd00:ec2::254/128", "cloud metadata"},
    };
    std::vector<BuiltinNet> out;
    for (const auto& [cidr, what] : table) out.push_back({ParseNet(cidr).value(), what});
    return out;
  }();
  return nets;
}

}  // namespace

bool IpAddress::FromSockaddr(const sockaddr* sa, IpAddress& out) {
  out = IpAddress{};
  if (sa == nullptr) return false;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    std::memcpy(out.bytes.data(), &in->sin_addr, 4);
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    out.v6 = true;
    std::memcpy(out.bytes.data(), &in6->sin6_addr, 16);
    Unmap(out);
    return true;
  }
  return false;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

bool IpNet::Contains(const IpAddress& a) const {
  if (a.v6 != base.v6) return false;
  const int whole = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.bytes.data(), base.bytes.data(), static_cast<size_t>(whole)) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[whole] & mask) == (base.bytes[whole] & mask);
}

StatusOr<std::vector<IpNet>> ParseIpNets(std::string_view list) {
  std::vector<IpNet> out;
  for (const std::string& item : SplitList(std::string(list), ',')) {
    std::string_view t = Trim(item);
    if (t.empty()) continue;
    auto net = ParseNet(t);
    if (!net.ok()) return net.status();
    out.push_back(std::move(*net));
  }
  return out;
}

DestinationPolicy::DestinationPolicy(std::vector<IpNet> allow, std::vector<IpNet> deny)
    : allow_(std::move(allow)), deny_(std::move(deny)) {}

std::string DestinationPolicy::Refusal(const IpAddress& a) const {
  for (const IpNet& d : deny_) {
    if (d.Contains(a)) return a.ToString() + " is in WEBHOOK_DENY_NETS net " + d.text;
  }
  // The narrowest built-in net holding the address decides how narrow an allowing net must be.
  const BuiltinNet* builtin = nullptr;
  for (const BuiltinNet& b : BuiltinRefusals()) {
    if (b.net.Contains(a) && (builtin == nullptr || b.net.prefix > builtin->net.prefix)) builtin = &b;
  }
  if (builtin == nullptr) return "";
  for (const IpNet& n : allow_) {
    if (n.Contains(a) && n.prefix >= builtin->net.prefix) return "";
  }
  return a.ToString() + " is in " + builtin->net.text + " (" + builtin->what +
         "), refused unless WEBHOOK_ALLOW_NETS holds it";
}

}  // namespace streamfleet
