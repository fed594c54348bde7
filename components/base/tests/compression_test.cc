#include "streamfleet/base/compression.h"

#include <gtest/gtest.h>

#include <zstd.h>

namespace streamfleet {
namespace {

std::string Prose(size_t n) {
  const std::string words = "The quarterly plan keeps the scenario's revenue targets and the hiring budget. ";
  std::string s;
  while (s.size() < n) s += words + std::to_string(s.size()) + " ";
  return s.substr(0, n);
}

TEST(CompressionTest, RoundTripsTextAndBinary) {
  std::string bin;
  for (int i = 0; i < 5000; ++i) bin.push_back(static_cast<char>(i * 7 % 256));
  for (const std::string& plain : {std::string(), std::string("x"), Prose(4096), bin}) {
    std::string z = ZstdCompress(plain);
    ASSERT_FALSE(z.empty());
    auto back = ZstdDecompress(z, plain.size());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, plain);
  }
}

TEST(CompressionTest, IfSmallerKeepsOnlyWhatPays) {
  auto text = ZstdCompressIfSmaller(Prose(4096));
  ASSERT_TRUE(text.has_value());
  EXPECT_LT(text->size(), 4096u / 2);
  EXPECT_FALSE(ZstdCompressIfSmaller("short").has_value());
  std::string dense;  // already dense: a pseudo-random byte sequence does not shrink by an eighth
  uint32_t x = 12345;
  for (int i = 0; i < 4096; ++i) dense.push_back(static_cast<char>((x = x * 1103515245 + 12345) >> 24));
  EXPECT_FALSE(ZstdCompressIfSmaller(dense).has_value());
}

TEST(CompressionTest, RefusesFramesOverTheLimitOrMalformed) {
  std::string big(1 << 20, 'a');  // 1 MiB of one byte: a few dozen bytes compressed (a "bomb")
  std::string z = ZstdCompress(big);
  ASSERT_LT(z.size(), 200u);
  auto refused = ZstdDecompress(z, 1000);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("exceeds the limit"), std::string::npos);
  EXPECT_TRUE(ZstdDecompress(z, big.size()).ok());

  EXPECT_FALSE(ZstdDecompress("", 100).ok());
  EXPECT_FALSE(ZstdDecompress("plain text, not zstd", 100).ok());
  std::string small = ZstdCompress(Prose(300));
  EXPECT_FALSE(ZstdDecompress(small.substr(0, small.size() - 3), 1000).ok()) << "truncated";
  EXPECT_FALSE(ZstdDecompress(small + small, 1000).ok()) << "two frames";
  std::string flipped = small;
  flipped[flipped.size() / 2] ^= 0x55;
  auto f = ZstdDecompress(flipped, 1000);
  if (f.ok()) {
    EXPECT_NE(*f, Prose(300));  // corruption is an error or different bytes, never a crash
  }
}

TEST(CompressionTest, RefusesFramesWithoutContentSize) {
  // A streaming frame does not record its size up front; a reader would have to grow without a bound.
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
  std::string plain = Prose(2000);
  std::string out(ZSTD_compressBound(plain.size()), '\0');
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  ZSTD_inBuffer in{plain.data(), plain.size(), 0};
  ASSERT_EQ(ZSTD_compressStream2(c, &o, &in, ZSTD_e_end), 0u);
  ZSTD_freeCCtx(c);
  out.resize(o.pos);
  auto r = ZstdDecompress(out, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("content size"), std::string::npos);
}

}  // namespace
}  // namespace streamfleet
