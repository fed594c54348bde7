#include "streamfleet/chunks/assembly.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace streamfleet {
namespace {

TEST(AssemblyTest, OrdersBySeqAndReportsMissing) {
  auto a = Assemble({"2:c", "0:a", "3:d"}, {}, 5);
  EXPECT_EQ(a.text, "acd");
  EXPECT_EQ(a.chunk_count, 3);
  EXPECT_EQ(a.missing, (std::vector<int64_t>{1, 4}));
  using Runs = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(a.runs, (Runs{{0, 0}, {2, 3}}));
  EXPECT_EQ(Assemble({"5:f", "6:g", "7:h"}, {}, 0).runs, (Runs{{5, 7}}));
  EXPECT_TRUE(Assemble({}, {}, 0).runs.empty());
}

TEST(AssemblyTest, DataMayContainColonsAndBinary) {
  std::string bin("x:\0\xff", 4);
  auto a = Assemble({"1:" + bin, "0:a:b"}, {}, 0);
  EXPECT_EQ(a.text, "a:b" + bin);
  EXPECT_TRUE(a.missing.empty());
}

TEST(AssemblyTest, DuplicatesAndMalformedElements) {
  auto a = Assemble({"0:a", "0:a", "junk", "x:y", "1:b"}, {}, 0);
  EXPECT_EQ(a.text, "ab");
  EXPECT_EQ(a.malformed_elements, 2);
}

TEST(AssemblyTest, MergesChunksFromTheDatabase) {
  auto a = Assemble({"2:c"}, {{0, "a"}, {1, "b"}, {2, "c"}}, 3);
  EXPECT_EQ(a.text, "abc");
  EXPECT_TRUE(a.missing.empty());
}

TEST(AssemblyTest, JsonDecodeWithFallbackReason) {
  auto ok = DecodeJson(R"( {"b": [1, 2], "a": "é"} )");
  EXPECT_TRUE(ok.valid);
  EXPECT_EQ(nlohmann::json::parse(ok.normalized)["b"][1], 2);
  auto bad = DecodeJson(R"({"a": 1)");
  EXPECT_FALSE(bad.valid);
  EXPECT_NE(bad.error.find("parse"), std::string::npos) << bad.error;
  EXPECT_FALSE(DecodeJson("").valid);
}

// U+0000 in a string: valid JSON, but PostgreSQL's jsonb refuses it, and the finalization was retried until
// dead-lettered; it is stored as text with the fallback recorded. The six characters \u0000 (an escaped
// backslash) are not U+0000 and stay JSON.
TEST(AssemblyTest, JsonHoldingUPlus0000IsTextWithTheReasonRecorded) {
  for (const char* text : {R"({"a": "x\u0000"})", R"(["\\\u0000"])", R"({"\u0000": 1})"}) {
    auto d = DecodeJson(text);
    EXPECT_FALSE(d.valid) << text;
    EXPECT_NE(d.error.find("U+0000"), std::string::npos) << d.error;
  }
  for (const char* text : {R"({"a": "\\u0000"})", R"(["\\\\u0000", "u0000"])"}) {
    auto d = DecodeJson(text);
    EXPECT_TRUE(d.valid) << text << ": " << d.error;
  }
}

// Above kNormalizeMaxBytes a document is checked without building it and kept as sent (its DOM and dump
// cost several times its size); the same verdicts as below it.
TEST(AssemblyTest, LargeJsonIsCheckedWithoutBuildingAndKeptAsSent) {
  std::string items;
  while (items.size() <= kNormalizeMaxBytes) items += R"({"k": 1, "t": "lorem ipsum"}, )";
  const std::string doc = "{\"items\": [" + items + "{}]}";
  auto ok = DecodeJson(doc);
  EXPECT_TRUE(ok.valid) << ok.error;
  EXPECT_TRUE(ok.as_sent);
  EXPECT_TRUE(ok.normalized.empty());
  auto cut = DecodeJson(doc.substr(0, doc.size() - 1));
  EXPECT_FALSE(cut.valid);
  EXPECT_NE(cut.error.find("parse"), std::string::npos) << cut.error;
  auto nul = DecodeJson("{\"items\": [" + items + "\"\\u0000\"]}");
  EXPECT_FALSE(nul.valid);
  EXPECT_NE(nul.error.find("U+0000"), std::string::npos) << nul.error;
  auto deep = DecodeJson("[" + items + std::string(600, '[') + std::string(600, ']') + "]");
  EXPECT_FALSE(deep.valid);
  EXPECT_NE(deep.error.find("deeper than"), std::string::npos) << deep.error;
  // A leading byte order mark: the parser skips it, jsonb refuses it: re-serialized, without it.
  auto bom = DecodeJson("\xEF\xBB\xBF" + doc);
  EXPECT_TRUE(bom.valid) << bom.error;
  EXPECT_FALSE(bom.as_sent);
  EXPECT_EQ(bom.normalized.front(), '{');
  auto small = DecodeJson(R"( {"a": 1} )");
  EXPECT_FALSE(small.as_sent);
  EXPECT_EQ(small.normalized, R"({"a":1})");
}

// Found by the fault suite: "tré" makes the lexer stop inside "é" (it expected "true"), and the error quoted
// the cut bytes; the compactor then died in metadata.dump() (type_error 316) on every delivery.
TEST(AssemblyTest, JsonDecodeErrorIsValidUtf8WhenTheParseStopsInsideACharacter) {
  for (const char* text : {"tr\xC3\xA9s bien", "n\xE4\xB8\xAD", "fa\xF0\x9F\x98\x80", "\xC3"}) {
    auto bad = DecodeJson(text);
    EXPECT_FALSE(bad.valid) << text;
    EXPECT_NO_THROW((void)nlohmann::json(bad.error).dump()) << bad.error;
    EXPECT_NE(bad.error.find("parse"), std::string::npos) << bad.error;
  }
}

}  // namespace
}  // namespace streamfleet
