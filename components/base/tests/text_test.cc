#include "streamfleet/base/text.h"

#include <gtest/gtest.h>

namespace streamfleet {
namespace {

TEST(Utf8Test, FindsTheFirstInvalidByte) {
  EXPECT_EQ(FirstInvalidUtf8(""), std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8("plain ascii"), std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), std::nullopt);  // é € 😀
  EXPECT_EQ(FirstInvalidUtf8("ab\xff"), 2u);
  EXPECT_EQ(FirstInvalidUtf8("ab\xe2\x82"), 2u);          // truncated at the end
  EXPECT_EQ(FirstInvalidUtf8("a\xe2\x82z"), 1u);          // truncated in the middle
  EXPECT_EQ(FirstInvalidUtf8("\xc0\xaf"), 0u);            // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("\xe0\x80\xaf"), 0u);        // overlong, 3 bytes
  EXPECT_EQ(FirstInvalidUtf8("x\xed\xa0\x80"), 1u);       // UTF-16 surrogate
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0u);    // above U+10FFFF
  // Past and between the 8-byte ASCII strides, at every alignment.
  for (size_t pre = 0; pre < 20; ++pre) {
    const std::string ascii(pre, 'a');
    EXPECT_EQ(FirstInvalidUtf8(ascii + "\xff" + std::string(9, 'b')), pre) << pre;
    EXPECT_EQ(FirstInvalidUtf8(ascii + "\xc3\xa9" + std::string(pre, 'b') + "\xe2\x82"), 2 * pre + 2) << pre;
    EXPECT_EQ(FirstInvalidUtf8(ascii + "\xf0\x9f\x98\x80" + ascii), std::nullopt) << pre;
  }
  EXPECT_EQ(FirstInvalidUtf8("\x80"), 0u);                // lone continuation byte
  EXPECT_EQ(FirstInvalidUtf8(std::string("a\0b", 3)), std::nullopt);
}

TEST(Utf8Test, ReplacesInvalidBytes) {
  EXPECT_EQ(ToValidUtf8("ok \xc3\xa9"), "ok \xc3\xa9");
  EXPECT_EQ(ToValidUtf8("a\xff" "b"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(FirstInvalidUtf8(ToValidUtf8("\xe2\x82\xc3\xff\x80")), std::nullopt);
}

TEST(TextExcerptTest, BoundedPrintableValidUtf8) {
  EXPECT_EQ(TextExcerpt("short", 200), "short");
  EXPECT_EQ(TextExcerpt("a\r\nb\x1b[0m\x7f\xc2\x85" "c", 200), "a  b [0m  c") << "C0, DEL and C1 controls";
  EXPECT_EQ(TextExcerpt("x\xff", 200), "x\xef\xbf\xbd");
  EXPECT_EQ(TextExcerpt("abcdef", 4), "abcd...");
  EXPECT_EQ(TextExcerpt("ab\xe2\x82\xac", 4), "ab...") << "never inside a character";
  std::string big(10000, '\xff');
  EXPECT_LE(TextExcerpt(big, 200).size(), 203u) << "replacements count toward the bound";
}

TEST(RedactUrlTest, MasksPasswordsAndQueries) {
  EXPECT_EQ(RedactUrl("postgresql://user:s3cret@db:5432/app"), "postgresql://user:***@db:5432/app");
  EXPECT_EQ(RedactUrl("redis://:pw@127.0.0.1:6379/0"), "redis://:***@127.0.0.1:6379/0");
  EXPECT_EQ(RedactUrl("redis://onlyuser@host"), "redis://onlyuser@host");
  EXPECT_EQ(RedactUrl("https://u:p@a@hooks.example/x?token=abc&b=2"), "https://u:***@hooks.example/x?***");
  EXPECT_EQ(RedactUrl("http://hooks.example/x"), "http://hooks.example/x");
  EXPECT_EQ(RedactUrl("sqlite:streamfleet.db"), "sqlite:streamfleet.db");
}

TEST(UrlDecodeTest, EscapesPlusAndMalformedEscapes) {
  EXPECT_EQ(UrlDecode("a%20b%2Fc%c3%A9", false), "a b/c\xc3\xa9");
  EXPECT_EQ(UrlDecode("a+b", true), "a b") << "form encoding: '+' is a space";
  EXPECT_EQ(UrlDecode("a+b", false), "a+b") << "a path keeps '+'";
  EXPECT_EQ(UrlDecode("100%", true), "100%") << "a cut escape is kept";
  EXPECT_EQ(UrlDecode("%zz%4", true), "%zz%4");
  EXPECT_EQ(UrlDecode("%41", true), "A") << "an escape at the very end";
  EXPECT_EQ(UrlDecode("%00x", false), std::string("\0x", 2));
}

TEST(UrlEncodePathTest, KeepsUnreservedAndSlashesEncodesTheRest) {
  EXPECT_EQ(UrlEncodePath("chunk-archive/42.ndjson.zst"), "chunk-archive/42.ndjson.zst");
  EXPECT_EQ(UrlEncodePath("a b+c?d&e#f%g"), "a%20b%2Bc%3Fd%26e%23f%25g");
  EXPECT_EQ(UrlEncodePath("A-Z_a.z~0/9"), "A-Z_a.z~0/9");
  EXPECT_EQ(UrlEncodePath("\xc3\xa9"), "%C3%A9") << "bytes above 0x7f, upper-case hex";
  EXPECT_EQ(UrlEncodePath(std::string("\0", 1)), "%00");
  for (std::string s : {"/admin/queues?state=dead&page=2", "x y/\xff%zz"}) {
    EXPECT_EQ(UrlDecode(UrlEncodePath(s), false), s) << "round trip";
  }
}

}  // namespace
}  // namespace streamfleet
