#include "streamfleet/base/json_input.h"

#include <gtest/gtest.h>

#include <string>

#include "streamfleet/base/codec.h"

namespace streamfleet {
namespace {

std::string Nested(char open, char close, size_t depth, const std::string& inner = "1") {
  return std::string(depth, open) + inner + std::string(depth, close);
}

TEST(JsonInputTest, ParsesWhatNlohmannParses) {
  const std::string text = R"({"a": [1, 2.5, "x", null, true, {"b": {}}], "c": -3, "d": 18446744073709551615})";
  auto j = ParseJsonInput(text);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(*j, nlohmann::json::parse(text));
  EXPECT_EQ((*j)["a"][5]["b"], nlohmann::json::object());
  EXPECT_TRUE(ParseJsonInput("7")->is_number_integer());
  EXPECT_EQ(*ParseJsonInput("\"s\""), "s");
  EXPECT_EQ(*ParseJsonInput("[[],[[]]]"), nlohmann::json::parse("[[],[[]]]"));
}

TEST(JsonInputTest, DepthLimitCountsEveryContainer) {
  EXPECT_TRUE(ParseJsonInput(Nested('[', ']', 64)).ok());
  auto deep = ParseJsonInput(Nested('[', ']', 65));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(deep.status().message().find("deeper than 64"), std::string::npos) << deep.status().message();
  std::string objects;
  for (int i = 0; i < 65; ++i) objects += "{\"k\":";
  objects += "1" + std::string(65, '}');
  EXPECT_FALSE(ParseJsonInput(objects).ok());
  EXPECT_TRUE(ParseJsonInput(Nested('[', ']', 3), JsonLimits{3}).ok());
  EXPECT_FALSE(ParseJsonInput(Nested('[', ']', 4), JsonLimits{3}).ok());
}

// The defect of the tenant-isolation issue: ~70,000 levels killed ingest (stack overflow in nlohmann's
// recursive parse/copy). Refused now, and so are much deeper and unterminated documents, without recursion.
TEST(JsonInputTest, VeryDeepDocumentsAreRefusedNotCrashedOn) {
  for (size_t depth : {70000u, 1000000u}) {
    auto r = ParseJsonInput("{\"initiator\": " + Nested('[', ']', depth) + "}");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(ParseJsonInput(std::string(500000, '{')).ok());
  EXPECT_FALSE(ParseJsonInput(std::string(500000, '[')).ok());
  // The generated-text limits are deeper but still bounded.
  EXPECT_TRUE(ParseJsonInput(Nested('[', ']', 500), kGeneratedJsonLimits).ok());
  EXPECT_FALSE(ParseJsonInput(Nested('[', ']', 70000), kGeneratedJsonLimits).ok());
}

TEST(JsonInputTest, DuplicateKeysAreRefusedUnlessAllowed) {
  auto dup = ParseJsonInput(R"({"seq":0,"seq":5})");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate key \"seq\""), std::string::npos) << dup.status().message();
  EXPECT_FALSE(ParseJsonInput(R"({"a":{"x":1,"x":1}})").ok());
  // The same key in sibling objects is not a duplicate.
  EXPECT_TRUE(ParseJsonInput(R"([{"x":1},{"x":2}])").ok());
  JsonLimits lenient;
  lenient.reject_duplicate_keys = false;
  auto last = ParseJsonInput(R"({"seq":0,"seq":5})", lenient);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ((*last)["seq"], 5);
}

TEST(JsonInputTest, SyntaxErrorsAndSizeLimit) {
  for (const char* bad : {"", "{", "{\"a\":}", "[1,]", "nul", "{\"a\":1} x", "\"\\x\""}) {
    auto r = ParseJsonInput(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  JsonLimits small;
  small.max_bytes = 4;
  EXPECT_TRUE(ParseJsonInput("[1]", small).ok());
  EXPECT_FALSE(ParseJsonInput("[1,2]", small).ok());
}

// CheckJsonInput applies ParseJsonInput's rules without building the value: the same verdict on every case
// above, and what it saw of U+0000.
TEST(JsonInputTest, CheckingGivesTheParsersVerdictWithoutBuilding) {
  std::vector<std::pair<std::string, JsonLimits>> cases = {
      {R"({"a": [1, 2.5, "x", null, true, {"b": {}}], "c": -3})", {}},
      {Nested('[', ']', 64), {}}, {Nested('[', ']', 65), {}}, {Nested('{', '}', 3), {}},
      {Nested('[', ']', 70000), kGeneratedJsonLimits}, {std::string(500000, '{'), {}},
      {R"({"seq":0,"seq":5})", {}}, {R"({"seq":0,"seq":5})", kGeneratedJsonLimits},
      {R"({"a":{"x":1,"x":1}})", {}}, {R"([{"x":1},{"x":2}])", {}}, {R"({"a":{"x":1},"x":2})", {}},
      {"", {}}, {"[1,]", {}}, {"{\"a\":1} x", {}}, {"\"\\x\"", {}}, {"[1,2]", JsonLimits{64, 4}},
  };
  for (const auto& [text, limits] : cases) {
    const bool parsed = ParseJsonInput(text, limits).ok();
    Status checked = CheckJsonInput(text, limits);
    EXPECT_EQ(checked.ok(), parsed) << text.substr(0, 80) << ": " << checked.ToString();
    if (!parsed) {
      EXPECT_EQ(checked.code(), StatusCode::kInvalidArgument) << text.substr(0, 80);
    }
  }
  JsonFacts facts;
  ASSERT_TRUE(CheckJsonInput(R"({"a": "x\u0000y"})", {}, &facts).ok());
  EXPECT_TRUE(facts.holds_nul);
  facts = {};
  ASSERT_TRUE(CheckJsonInput(R"({"\u0000": 1})", {}, &facts).ok());
  EXPECT_TRUE(facts.holds_nul) << "in a key";
  facts = {};
  ASSERT_TRUE(CheckJsonInput(R"({"a": "\\u0000"})", {}, &facts).ok());
  EXPECT_FALSE(facts.holds_nul) << "the six characters \\u0000 are not U+0000";
}

TEST(SecretEqualsTest, ComparesContentsOfAnyLength) {
  EXPECT_TRUE(SecretEquals("tok-twelve", "tok-twelve"));
  EXPECT_FALSE(SecretEquals("tok-twelve", "tok-twelvf"));
  EXPECT_FALSE(SecretEquals("tok-twelve", "tok-twelve-and-more"));
  EXPECT_FALSE(SecretEquals("", "x"));
  EXPECT_TRUE(SecretEquals("", ""));
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace streamfleet
