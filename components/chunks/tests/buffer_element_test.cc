#include "streamfleet/chunks/buffer_element.h"

#include <gtest/gtest.h>

#include "streamfleet/base/compression.h"
#include "streamfleet/chunks/assembly.h"

namespace streamfleet {
namespace {

std::string Text(size_t n) {
  std::string s;
  while (s.size() < n) s += "{\"scenario\": \"base\", \"revenue\": [1200, 1350, 1500]} ";
  return s.substr(0, n);
}

TEST(BufferElementTest, PlainAndCompressedForms) {
  EXPECT_EQ(BufferElement(7, "a:b", false), "7:a:b");
  EXPECT_EQ(BufferElement(7, "FRAME", true), "7z:FRAME");
  BufferElementView v;
  ASSERT_TRUE(ParseBufferElement("12:x:y", &v));
  EXPECT_EQ(v.seq, 12);
  EXPECT_EQ(v.stored, "x:y");
  EXPECT_FALSE(v.compressed);
  ASSERT_TRUE(ParseBufferElement("3z:zz", &v));
  EXPECT_EQ(v.seq, 3);
  EXPECT_EQ(v.stored, "zz");
  EXPECT_TRUE(v.compressed);
  ASSERT_TRUE(ParseBufferElement("0:", &v));
  EXPECT_EQ(v.stored, "");
  for (const char* bad : {"", ":x", "z:x", "-1:x", "1zz:x", "x1:y", "12", "1 :x", "99999999999999999999:x"}) {
    EXPECT_FALSE(ParseBufferElement(bad, &v)) << bad;
  }
}

TEST(BufferElementTest, TextDecompressesWithinTheLimit) {
  std::string text = Text(5000);
  std::string e = BufferElement(4, ZstdCompress(text), true);
  BufferElementView v;
  ASSERT_TRUE(ParseBufferElement(e, &v));
  auto t = BufferElementText(v, 5000);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, text);
  EXPECT_FALSE(BufferElementText(v, 4999).ok());
}

TEST(BufferElementTest, AssemblyMixesPlainAndCompressedElements) {
  // A buffer written partly before and partly after CHUNK_COMPRESSION was turned on (or by producers of both
  // kinds): the text is the same as if every element were plain.
  std::string a = Text(3000), b = "short", c = Text(2000) + "end";
  std::vector<std::string> elements = {BufferElement(2, ZstdCompress(c), true), BufferElement(0, a, false),
                                       BufferElement(1, ZstdCompress(b), true), BufferElement(0, ZstdCompress(a), true)};
  auto out = Assemble(elements, {}, 3);
  EXPECT_EQ(out.text, a + b + c);
  EXPECT_EQ(out.chunk_count, 3);
  EXPECT_TRUE(out.missing.empty());
  EXPECT_EQ(out.malformed_elements, 0);
}

TEST(BufferElementTest, AssemblyCountsCorruptFramesAndBoundsTheTotal) {
  std::string good = ZstdCompress(Text(4000));
  std::string corrupt = good.substr(0, good.size() / 2);
  auto out = Assemble({BufferElement(0, good, true), BufferElement(1, corrupt, true)}, {}, 2);
  EXPECT_EQ(out.malformed_elements, 1);
  EXPECT_EQ(out.missing, (std::vector<int64_t>{1}));

  // Ten 1 MiB frames of one byte each against a 3 MiB budget: three are read, the rest are refused.
  std::string bomb = ZstdCompress(std::string(1 << 20, 'a'));
  std::vector<std::string> many;
  for (int i = 0; i < 10; ++i) many.push_back(BufferElement(i, bomb, true));
  auto capped = Assemble(many, {}, 10, 3 << 20);
  EXPECT_EQ(capped.chunk_count, 3);
  EXPECT_EQ(capped.malformed_elements, 7);
  EXPECT_EQ(capped.text.size(), size_t{3} << 20);
}

}  // namespace
}  // namespace streamfleet
