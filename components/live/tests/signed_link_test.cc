// Signed stream links (streamfleet/live/signed_link.h): a known vector (computed independently with
// Python's hmac module), a link is good for its own path until it expires, and nothing else passes.
#include "streamfleet/live/signed_link.h"

#include <gtest/gtest.h>

namespace streamfleet::live {
namespace {

TEST(SignedLinkTest, MatchesAnIndependentHmacSha256) {
  // python3 -c 'import hmac,hashlib;print(hmac.new(b"tok-org-1",b"GET\n/v1/orgs/1/generations/7/stream\n1800000000",hashlib.sha256).hexdigest())'
  EXPECT_EQ(SignLink("tok-org-1", "/v1/orgs/1/generations/7/stream", 1800000000),
            "cbb3e6d4743bb856e33e0362fe2215e154581b7c710a47be4330837e9dee3358");
}

TEST(SignedLinkTest, GoodForItsPathUntilItExpires) {
  const std::string path = "/v1/orgs/1/generations/7/stream";
  std::string sig = SignLink("tok", path, 1000);
  EXPECT_EQ(CheckLink("tok", path, "1000", sig, 999), LinkCheck::kOk);
  EXPECT_EQ(CheckLink("tok", path, "1000", sig, 1000), LinkCheck::kOk);
  EXPECT_EQ(CheckLink("tok", path, "1000", sig, 1001), LinkCheck::kExpired);
  EXPECT_EQ(CheckLink("tok", "/v1/orgs/1/generations/8/stream", "1000", sig, 0), LinkCheck::kBadSignature);
  EXPECT_EQ(CheckLink("tok", "/v1/orgs/2/events", "1000", sig, 0), LinkCheck::kBadSignature);
  EXPECT_EQ(CheckLink("other", path, "1000", sig, 0), LinkCheck::kBadSignature);
  EXPECT_EQ(CheckLink("tok", path, "2000", sig, 0), LinkCheck::kBadSignature) << "a longer expiry is a forgery";
  std::string upper = sig;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(CheckLink("tok", path, "1000", upper, 0), LinkCheck::kBadSignature);
  for (const char* exp : {"", "-5", "0", "1e3", "1000 ", "99999999999999"}) {
    EXPECT_EQ(CheckLink("tok", path, exp, sig, 0), LinkCheck::kMalformed) << exp;
  }
  EXPECT_EQ(CheckLink("tok", path, "1000", sig.substr(1), 0), LinkCheck::kMalformed);
}

}  // namespace
}  // namespace streamfleet::live
