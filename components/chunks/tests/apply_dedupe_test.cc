// ChunkBuffer::Apply's dedupe against a real Redis. The buffer script sets the seen bits of a run of
// consecutive seqs with one BITFIELD field (up to 52 bits) and reads each seq's old bit back out of the
// field's old value: these cases pin that mapping (runs longer than one field, a seq twice in a batch,
// out-of-order seqs, redelivery, two generations in one call) to "each seq is applied exactly once".
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "buffer_on_redis.h"

namespace streamfleet {
namespace {

class ApplyDedupeTest : public BufferOnRedisTest {
 protected:
  static ChunkItem Chunk(const GenerationId& g, int64_t seq) {
    return ChunkItem{g, false, seq, "text of " + std::to_string(seq), false, 0, 0};
  }
  // The applied flags of one call, as a string of 1s (applied) and 0s (duplicate), in input order.
  std::string Apply(const std::vector<ChunkItem>& items) {
    auto r = buffer_->Apply(*redis_, items);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return "error";
    std::string flags;
    for (bool a : r->applied) flags += a ? '1' : '0';
    return flags;
  }
  // The seqs in the generation's buffer list, each as often as it is there.
  std::multiset<int64_t> Buffered(const GenerationId& g) {
    auto snap = buffer_->Snapshot(*redis_, g);
    EXPECT_TRUE(snap.ok()) << snap.status().ToString();
    std::multiset<int64_t> seqs;
    if (!snap.ok()) return seqs;
    for (const auto& e : snap->elements) seqs.insert(std::stoll(e.substr(0, e.find(':'))));
    EXPECT_EQ(snap->MetaInt("received_chunks"), static_cast<int64_t>(seqs.size()));
    return seqs;
  }
};

TEST_F(ApplyDedupeTest, ALongRunIsAppliedOnceAndRedeliveredAsDuplicates) {
  GenerationId g{7, 0, 1};
  std::vector<ChunkItem> batch;
  for (int64_t s = 0; s < 130; ++s) batch.push_back(Chunk(g, s));  // 52 + 52 + 26 bits
  EXPECT_EQ(Apply(batch), std::string(130, '1'));
  EXPECT_EQ(Apply(batch), std::string(130, '0'));
  std::multiset<int64_t> want;
  for (int64_t s = 0; s < 130; ++s) want.insert(s);
  EXPECT_EQ(Buffered(g), want);
}

TEST_F(ApplyDedupeTest, OldBitsAreReadPerSeqWithinARun) {
  GenerationId g{7, 0, 2};
  // Seen before: 1, 3, 50, 51, 52 and 60 (the second run starts at the 52-bit boundary).
  EXPECT_EQ(Apply({Chunk(g, 1), Chunk(g, 3), Chunk(g, 50), Chunk(g, 51), Chunk(g, 52), Chunk(g, 60)}), "111111");
  std::vector<ChunkItem> batch;
  std::string want;
  for (int64_t s = 0; s < 64; ++s) {
    batch.push_back(Chunk(g, s));
    bool seen = s == 1 || s == 3 || s == 50 || s == 51 || s == 52 || s == 60;
    want += seen ? '0' : '1';
  }
  EXPECT_EQ(Apply(batch), want);
  std::multiset<int64_t> all;
  for (int64_t s = 0; s < 64; ++s) all.insert(s);
  EXPECT_EQ(Buffered(g), all);
}

TEST_F(ApplyDedupeTest, ASeqTwiceInABatchOutOfOrderSeqsAndTwoGenerations) {
  GenerationId a{7, 0, 3}, b{8, 0, 4};
  // a: 5 6 7, then 6 again (a new run: a duplicate of this same batch), then 2 3 (backwards: new runs),
  // then 7 8; b interleaved with seqs that would continue a's runs.
  std::vector<ChunkItem> batch = {Chunk(a, 5), Chunk(a, 6), Chunk(b, 7), Chunk(a, 7), Chunk(a, 6), Chunk(b, 8),
                                  Chunk(a, 3), Chunk(a, 2), Chunk(a, 7), Chunk(a, 8), Chunk(b, 7)};
  EXPECT_EQ(Apply(batch), "11110111010");
  EXPECT_EQ(Buffered(a), (std::multiset<int64_t>{2, 3, 5, 6, 7, 8}));
  EXPECT_EQ(Buffered(b), (std::multiset<int64_t>{7, 8}));
}

}  // namespace
}  // namespace streamfleet
