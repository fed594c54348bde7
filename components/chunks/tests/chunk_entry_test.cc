// The chunk-stream entry format (chunk_entry.h): batches as ingest builds them and the script completes them,
// read back by the hand-written scanner and checked against protobuf's own parser, and bytes that are no
// batch refused without reading past them.
#include "streamfleet/chunks/chunk_entry.h"

#include <gtest/gtest.h>

#include <random>

#include "streamfleet/base/envelope_version.h"
#include "streamfleet/testing/chunk_envelope.h"
#include "streamfleet/v1/chunk.pb.h"

namespace streamfleet {
namespace {

v1::ChunkEnvelope Batched(const GenerationId& g, const std::string& data) {
  v1::ChunkEnvelope e;
  e.ParseFromString(testing::ChunkEnvelopeBytes(g, 0, data, false, 0, false, kChunkEnvelopeBatched));
  return e;
}

// What the append script appends to a part: field 2 (first_seq) as a varint.
std::string WithFirstSeq(std::string part, uint64_t seq) {
  part.push_back(static_cast<char>(0x10));
  for (; seq >= 0x80; seq >>= 7) part.push_back(static_cast<char>((seq & 0x7f) | 0x80));
  part.push_back(static_cast<char>(seq));
  return part;
}

TEST(ChunkEntryTest, ABatchBuiltInPlaceIsWhatProtobufReads) {
  GenerationId g{7, 3, 900};
  std::string part;
  std::vector<std::string> texts = {"a", std::string(300, 'b'), "", std::string(20000, 'c')};  // 1-3 byte lengths
  for (const auto& t : texts) AppendBatchEnvelope(&part, Batched(g, t));
  const std::string raw = WithFirstSeq(part, 70000);  // a 3-byte varint
  v1::ChunkBatch parsed;
  ASSERT_TRUE(parsed.ParseFromString(raw));
  EXPECT_EQ(parsed.first_seq(), 70000);
  ASSERT_EQ(parsed.envelopes_size(), 4);

  std::vector<std::string_view> views;
  int64_t first = -1;
  ASSERT_TRUE(ScanChunkBatch(raw, &views, &first));
  EXPECT_EQ(first, 70000);
  ASSERT_EQ(views.size(), 4u);
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(views[i], parsed.envelopes(static_cast<int>(i)));
    int64_t org = 0, gen = 0;
    ASSERT_TRUE(PeekEnvelopeGeneration(views[i], &org, &gen));
    EXPECT_EQ(org, 7);
    EXPECT_EQ(gen, 900);
  }
  EXPECT_EQ(ChunkEnvelopeCount("b", raw), 4u);
  EXPECT_EQ(ChunkEnvelopeCount("e", raw), 1u);
  EXPECT_EQ(ChunkEnvelopeCount("source", raw), 0u);

  StreamEntry entry{"s", "1700000000000-0", {{"b", raw}}};
  std::vector<ChunkItem> items;
  std::string why;
  ASSERT_TRUE(DecodeChunkEntry(entry, &items, &why)) << why;
  ASSERT_EQ(items.size(), 4u);
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(items[i].seq, 70000 + static_cast<int64_t>(i));
    EXPECT_EQ(items[i].data, texts[i]);
    EXPECT_EQ(items[i].gen, g);
    EXPECT_EQ(items[i].ingested_ms, 1700000000000);
  }
}

TEST(ChunkEntryTest, EveryTruncationOfABatchIsRefusedOrReadsAPrefixOfItsEnvelopes) {
  GenerationId g{1, 0, 2};
  std::string part;
  for (int i = 0; i < 3; ++i) AppendBatchEnvelope(&part, Batched(g, std::string(150, static_cast<char>('x' + i))));
  const std::string raw = WithFirstSeq(part, 5);
  for (size_t n = 0; n < raw.size(); ++n) {
    std::string cut = raw.substr(0, n);  // its own buffer: a read past it is ASan's to see
    std::vector<std::string_view> views;
    int64_t first = 0;
    if (!ScanChunkBatch(cut, &views, &first)) continue;
    ASSERT_LE(views.size(), 3u) << n;
    v1::ChunkBatch parsed;
    ASSERT_TRUE(parsed.ParseFromString(cut)) << "the scanner accepts only what protobuf accepts, at " << n;
    ASSERT_EQ(views.size(), static_cast<size_t>(parsed.envelopes_size())) << n;
    StreamEntry entry{"s", "1-0", {{"b", cut}}};
    std::vector<ChunkItem> items;
    std::string why;
    if (views.empty()) {
      EXPECT_FALSE(DecodeChunkEntry(entry, &items, &why)) << "an empty batch is no chunk";
    }
  }
}

// fuzz_chunk_batch's finding: a size encoded in more bytes than protobuf reads (its ReadSize takes at most
// 5, the fifth below 8) was accepted by the scanner. Each encoding of a size is checked against the parser.
TEST(ChunkEntryTest, SizesAreReadAsProtobufReadsThem) {
  const std::vector<std::string> sizes = {
      std::string("\x00", 1), std::string("\x80\x00", 2), std::string("\x80\x80\x80\x80\x00", 5),
      std::string("\x80\x80\x80\x80\x80\x00", 6), std::string("\x80\x80\x80\x80\x07", 5),
      std::string("\x80\x80\x80\x80\x08", 5), std::string("\xff\xff\xff\xff\x07", 5)};
  for (const std::string& size : sizes) {
    // An unknown length-delimited field 11 of that size (the bytes it claims are not there unless it is 0),
    // then first_seq 5.
    std::string raw = "\x5a" + size + std::string("\x10\x05", 2);
    std::vector<std::string_view> views;
    int64_t first = -1;
    v1::ChunkBatch parsed;
    EXPECT_EQ(ScanChunkBatch(raw, &views, &first), parsed.ParseFromString(raw))
        << "size bytes " << ::testing::PrintToString(size);
  }
  // The fuzzer's input itself.
  const std::string found("\x10\x5c\x58\x58\x58\x58\x58\x58\x58\x5d\x58\x5c\x58\x58\x58\x58\x58\x58\x58\x58\x58\x58"
                          "\x58\x58\x58\x86\x58\x58\x58\x5a\x80\x80\x80\x80\x80\x00\x58\x58\x58\x58\x58\x00", 43);
  std::vector<std::string_view> views;
  int64_t first = -1;
  v1::ChunkBatch parsed;
  EXPECT_FALSE(parsed.ParseFromString(found));
  EXPECT_FALSE(ScanChunkBatch(found, &views, &first));
}

TEST(ChunkEntryTest, RandomBytesNeverReadPastTheirEnd) {
  std::mt19937 rng(42);
  for (int round = 0; round < 20000; ++round) {
    std::string raw(rng() % 40, '\0');
    for (char& c : raw) c = static_cast<char>(rng() % 4 == 0 ? 0x0a : rng());
    std::vector<std::string_view> views;
    int64_t first = 0, org = 0, gen = 0;
    if (ScanChunkBatch(raw, &views, &first)) {
      v1::ChunkBatch parsed;
      ASSERT_TRUE(parsed.ParseFromString(raw)) << "the scanner accepts only what protobuf accepts";
      ASSERT_EQ(views.size(), static_cast<size_t>(parsed.envelopes_size()));
      EXPECT_EQ(first, parsed.first_seq());
      for (auto v : views) {
        ASSERT_GE(v.data(), raw.data());
        ASSERT_LE(v.data() + v.size(), raw.data() + raw.size());
      }
    }
    PeekEnvelopeGeneration(raw, &org, &gen);
    (void)ChunkEnvelopeCount("b", raw);
    StreamEntry entry{"s", "1-0", {{"b", raw}, {"e", raw}}};
    std::vector<ChunkItem> items = {ChunkItem{}};
    std::string why;
    if (!DecodeChunkEntry(entry, &items, &why)) {
      EXPECT_EQ(items.size(), 1u) << "a refused entry leaves the items as they were";
      EXPECT_FALSE(why.empty());
    }
  }
}

}  // namespace
}  // namespace streamfleet
