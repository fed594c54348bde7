#include "streamfleet/base/ip_nets.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

namespace streamfleet {
namespace {

// The address as libcurl's open-socket callback hands it over.
IpAddress Addr(const char* text) {
  sockaddr_in6 in6{};
  sockaddr_in in{};
  IpAddress a;
  if (inet_pton(AF_INET, text, &in.sin_addr) == 1) {
    in.sin_family = AF_INET;
    EXPECT_TRUE(IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&in), a));
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, text, &in6.sin6_addr), 1) << text;
    in6.sin6_family = AF_INET6;
    EXPECT_TRUE(IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&in6), a));
  }
  return a;
}

DestinationPolicy Policy(const char* allow, const char* deny) {
  return DestinationPolicy(ParseIpNets(allow).value(), ParseIpNets(deny).value());
}

TEST(IpNetsTest, ParsesIpv4AndIpv6NetsAndRefusesTheRest) {
  auto nets = ParseIpNets(" 10.0.0.0/8, fd00::/8 ,192.0.2.7,,::ffff:127.0.0.0/104");
  ASSERT_TRUE(nets.ok()) << nets.status().ToString();
  ASSERT_EQ(nets->size(), 4u);
  EXPECT_EQ((*nets)[0].text, "10.0.0.0/8");
  EXPECT_EQ((*nets)[2].prefix, 32) << "a bare address is one host";
  EXPECT_FALSE((*nets)[3].base.v6) << "an IPv4-mapped net is the IPv4 net";
  EXPECT_EQ((*nets)[3].prefix, 8);
  EXPECT_TRUE((*nets)[0].Contains(Addr("10.255.1.2")));
  EXPECT_FALSE((*nets)[0].Contains(Addr("11.0.0.1")));
  EXPECT_TRUE((*nets)[1].Contains(Addr("fdff::1")));
  EXPECT_FALSE((*nets)[1].Contains(Addr("fe00::1")));
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8x", "example.com", "10.0.0", "1.2.3.4/-1"}) {
    EXPECT_FALSE(ParseIpNets(bad).ok()) << bad;
  }
}

TEST(IpNetsTest, BuiltInRefusalsAndWhatOpensThem) {
  DestinationPolicy closed;
  for (const char* a : {"127.0.0.1", "127.9.9.9", "::1", "0.0.0.0", "::", "169.254.1.1", "fe80::1",
                        "169.254.169.254", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254"}) {
    EXPECT_NE(closed.Refusal(Addr(a)), "") << a;
  }
  for (const char* a : {"10.1.2.3", "192.168.0.1", "8.8.8.8", "2001:db8::1", "fd00:ec2::253"}) {
    EXPECT_EQ(closed.Refusal(Addr(a)), "") << a;
  }
  EXPECT_EQ(closed.Refusal(Addr("::ffff:127.0.0.1")),
            "127.0.0.1 is in 127.0.0.0/8 (loopback), refused unless WEBHOOK_ALLOW_NETS holds it");

  DestinationPolicy loopback = Policy("127.0.0.0/8,::1", "");
  EXPECT_EQ(loopback.Refusal(Addr("127.0.0.1")), "");
  EXPECT_EQ(loopback.Refusal(Addr("::1")), "");
  EXPECT_NE(loopback.Refusal(Addr("169.254.169.254")), "");

  // A wide net opens nothing built in; link-local does not open the metadata address inside it.
  DestinationPolicy wide = Policy("0.0.0.0/0,::/0,169.254.0.0/16", "");
  EXPECT_NE(wide.Refusal(Addr("127.0.0.1")), "");
  EXPECT_NE(wide.Refusal(Addr("fd00:ec2::254")), "");
  EXPECT_EQ(wide.Refusal(Addr("169.254.1.1")), "");
  EXPECT_NE(wide.Refusal(Addr("169.254.169.254")).find("(cloud metadata)"), std::string::npos);
  EXPECT_EQ(Policy("169.254.169.254", "").Refusal(Addr("169.254.169.254")), "") << "named explicitly";
}

TEST(IpNetsTest, DenyBeatsAllow) {
  DestinationPolicy p = Policy("10.0.0.0/8,127.0.0.1", "10.1.0.0/16,127.0.0.0/8");
  EXPECT_EQ(p.Refusal(Addr("10.2.0.1")), "");
  EXPECT_EQ(p.Refusal(Addr("10.1.0.1")), "10.1.0.1 is in WEBHOOK_DENY_NETS net 10.1.0.0/16");
  EXPECT_EQ(p.Refusal(Addr("127.0.0.1")), "127.0.0.1 is in WEBHOOK_DENY_NETS net 127.0.0.0/8");
  EXPECT_NE(Policy("", "2001:db8::/32").Refusal(Addr("2001:db8::5")), "");
}

}  // namespace
}  // namespace streamfleet
