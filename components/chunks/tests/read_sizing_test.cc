// ReadSizer: the COUNT of chunk-stream reads follows what recent reads held.
#include "streamfleet/chunks/read_sizing.h"

#include <gtest/gtest.h>

namespace streamfleet {
namespace {

TEST(ReadSizerTest, StartsSmallThenAsksForAboutTheTargetChunksPerRead) {
  ReadSizer s(1, 500, 500, 1 << 20);
  EXPECT_EQ(s.Count(), ReadSizer::kFirstCount);
  s.Observe(16, 16, 16 * 300);  // one-chunk entries of 300 bytes
  EXPECT_EQ(s.Count(), 500);
  ReadSizer ndjson(1, 500, 500, 1 << 20);
  ndjson.Observe(16, 16 * 100, 16 * 22000);  // an NDJSON request's 100 chunks per entry
  EXPECT_EQ(ndjson.Count(), 5);
}

TEST(ReadSizerTest, TheByteBudgetBoundsLargeOneChunkEntries) {
  ReadSizer s(1, 500, 500, 1 << 20);
  s.Observe(10, 10, 10 * (256 << 10));  // 256 KiB chunks
  EXPECT_EQ(s.Count(), 4);
  s.Observe(1, 1, 4 << 20);  // never below one entry
  EXPECT_EQ(s.Count(), 1);
}

TEST(ReadSizerTest, FollowsAChangeOfTrafficWithinAFewReadsAndIgnoresEmptyOnes) {
  ReadSizer s(1, 500, 500, 1 << 20);
  s.Observe(8, 8000, 8 * 65536);  // entries of 1000 envelopes
  EXPECT_EQ(s.Count(), 1);
  s.Observe(0, 0, 0);
  EXPECT_EQ(s.Count(), 1);
  s.Observe(500, 500, 500 * 250);  // one-chunk entries again
  EXPECT_EQ(s.Count(), 1) << "averaged: half the weight on the newest read";
  for (int i = 0; i < 11; ++i) s.Observe(500, 500, 500 * 250);
  EXPECT_GE(s.Count(), 400);
}

TEST(ReadSizerTest, NeverAsksForMoreThanTheMaximum) {
  ReadSizer s(1, 50, 500, 1 << 20);
  EXPECT_EQ(s.Count(), 16);
  s.Observe(16, 16, 16 * 100);
  EXPECT_EQ(s.Count(), 50);
  ReadSizer tiny(1, 4, 500, 1 << 20);
  EXPECT_EQ(tiny.Count(), 4);
}

TEST(ReadSizerTest, NeverAsksForFewerThanTheMinimum) {
  ReadSizer s(50, 1000, 1000, 1 << 20);  // the live tail: its COUNT also paces the events stream
  EXPECT_EQ(s.Count(), 50);
  s.Observe(10, 10000, 10 * 65536);
  EXPECT_EQ(s.Count(), 50);
  for (int i = 0; i < 12; ++i) s.Observe(10, 10, 10 * 200);
  EXPECT_GT(s.Count(), 500);
}

}  // namespace
}  // namespace streamfleet
