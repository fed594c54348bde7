#include "streamfleet/chunks/request_parsing.h"

#include "streamfleet/chunks/common_chunk_json.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace streamfleet {
namespace {

TEST(ParseIdTest, OnlyPositiveDecimalIntegers) {
  EXPECT_EQ(ParseId("12"), 12);
  EXPECT_EQ(ParseId("999999999999999999"), 999999999999999999);
  for (const char* bad : {"", "0", "-1", "+1", "1.5", "1e3", "12 ", "*", "1:2", "abc", "1234567890123456789", "0x1"}) {
    EXPECT_FALSE(ParseId(bad).has_value()) << bad;
  }
}

TEST(MatchRouteTest, RoutesAndBadIds) {
  auto r = MatchRoute("/v1/orgs/12/generations/59/chunks");
  EXPECT_EQ(r.kind, Route::Kind::kChunks);
  EXPECT_EQ(r.org, 12);
  EXPECT_EQ(r.gen, 59);
  EXPECT_EQ(MatchRoute("/v1/orgs/12/generations/59/finish").kind, Route::Kind::kFinish);
  EXPECT_EQ(MatchRoute("/v1/orgs/12/generations/59/progress").kind, Route::Kind::kProgress);
  EXPECT_EQ(MatchRoute("/v1/orgs/12/generations/59/other").kind, Route::Kind::kUnknown);
  auto gen = MatchRoute("/v1/orgs/12/generations/59");
  EXPECT_EQ(gen.kind, Route::Kind::kGeneration);
  EXPECT_EQ(gen.gen, 59);
  EXPECT_NE(MatchRoute("/v1/orgs/12/generations/5*").bad_id.find("generation"), std::string::npos);
  EXPECT_EQ(MatchRoute("/v2/orgs/12/generations/59/chunks").kind, Route::Kind::kUnknown);
  auto bad = MatchRoute("/v1/orgs/1*/generations/59/chunks");
  EXPECT_EQ(bad.kind, Route::Kind::kChunks);
  EXPECT_NE(bad.bad_id.find("organization"), std::string::npos);
  EXPECT_NE(MatchRoute("/v1/orgs/1/generations/x:y/chunks").bad_id.find("generation"), std::string::npos);
}

TEST(ParseChunkJsonTest, FieldsAndErrors) {
  auto c = ParseChunkJson(R"({"seq": 3, "data": "hé", "final": true, "total_chunks": 4})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c->seq, 3);
  EXPECT_EQ(c->data, "hé");
  EXPECT_TRUE(c->final);
  EXPECT_EQ(c->total_chunks, 4);
  auto minimal = ParseChunkJson(R"({"data": ""})");
  ASSERT_TRUE(minimal.ok());
  EXPECT_FALSE(minimal->seq.has_value());
  EXPECT_TRUE(ParseChunkJson(R"({"data": "x", "seq": null, "total_chunks": null})").ok());
  for (const char* bad : {"", "{", "[]", R"({"seq": 1})", R"({"data": 5})", R"({"data": "x", "seq": -1})",
                          R"({"data": "x", "seq": 1.5})", R"({"data": "x", "final": "yes"})",
                          R"({"data": "x", "total_chunks": 0})"}) {
    EXPECT_FALSE(ParseChunkJson(bad).ok()) << bad;
  }
}

// The fast path reads the common shape exactly as the general parser does, and leaves everything else to it.
TEST(ParseCommonChunkJsonTest, TakesTheCommonShapeAndAgreesWithTheGeneralParser) {
  auto same = [](const std::string& text) {
    auto fast = ParseCommonChunkJson(text);
    auto general = ParseChunkJsonGeneral(text);
    if (!fast) return ::testing::AssertionSuccess();
    if (!general.ok()) return ::testing::AssertionFailure() << "fast path accepted, general refused: " << text;
    if (fast->data != general->data || fast->seq != general->seq || fast->final != general->final ||
        fast->total_chunks != general->total_chunks) {
      return ::testing::AssertionFailure() << "read differently: " << text;
    }
    return ::testing::AssertionSuccess();
  };
  const std::vector<std::string> common = {
      R"({"data":"x"})",
      R"({"data": ""})",
      " \t{ \"data\" : \"a b\" , \"seq\" : 0 }\r",
      R"({"seq": 7, "data": "h\u00e9 \ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t", "final": true, "total_chunks": 8})",
      R"({"data": "\u0000 nul", "seq": null, "final": null, "total_chunks": null})",
      R"({"data": "x", "final": false, "seq": 999999999999999999})",
      "{\"data\": \"h\xc3\xa9llo \xe2\x82\xac\"}",
  };
  for (const auto& text : common) {
    EXPECT_TRUE(ParseCommonChunkJson(text).has_value()) << text;
    EXPECT_TRUE(same(text));
  }
  auto c = ParseCommonChunkJson(common[3]);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->data, "h\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ / \b\f\n\r\t");
  EXPECT_EQ(*c->seq, 7);
  EXPECT_TRUE(c->final);
  EXPECT_EQ(c->total_chunks, 8);
  EXPECT_EQ(ParseCommonChunkJson(common[4])->data, std::string("\0 nul", 5));

  // Valid or not, these are the general parser's: its answer stands (ParseChunkJson gives it unchanged).
  const std::vector<std::string> others = {
      "", "{", "{}", "[]", R"({"data": "x", "other": 1})", R"({"data": "x", "data": "y"})",
      R"({"data": "x", "seq": -0})", R"({"data": "x", "seq": 1.0})", R"({"data": "x", "seq": 1e2})",
      R"({"data": "x", "seq": 01})", R"({"data": "x", "seq": 1234567890123456789})",
      R"({"data": "x", "seq": "1"})", R"({"data": "x", "total_chunks": 0})", R"({"data": "\ud83d"})",
      R"({"data": "\ude00"})", R"({"data": "\ud83d\u0041"})", R"({"data": "\x"})", R"({"data": "\u12g4"})",
      "{\"data\": \"bad \xff\"}", "{\"data\": \"cut \xc3\"}", "{\"data\": \"tab\tinside\"}",
      R"({"data": "x"} trailing)", R"({"data": "x"},)", R"({"data": ["x"]})", R"({"data": null})",
      R"({"data": "x", "final": 1})", R"({"data": "x", "final": True})", R"({"da\u0074a": "x"})",
      "\xef\xbb\xbf{\"data\": \"bom\"}", R"({"data": "x", "seq": 5)", R"({"data": "x" "seq": 5})",
  };
  for (const auto& text : others) {
    EXPECT_FALSE(ParseCommonChunkJson(text).has_value()) << text;
    auto a = ParseChunkJson(text);
    auto b = ParseChunkJsonGeneral(text);
    EXPECT_EQ(a.ok(), b.ok()) << text;
    if (!a.ok() && !b.ok()) {
      EXPECT_EQ(a.status().message(), b.status().message()) << text;
    }
  }
}

TEST(ParseSseLineTest, OpenAiDeltas) {
  auto d = ParseSseLine(R"(data: {"choices":[{"delta":{"content":"Hel"}}]})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->kind, SseLine::Kind::kData);
  EXPECT_EQ(d->text, "Hel");
  EXPECT_EQ(ParseSseLine("data: [DONE]")->kind, SseLine::Kind::kDone);
  EXPECT_EQ(ParseSseLine("data: [DONE]\r")->kind, SseLine::Kind::kDone);
  EXPECT_EQ(ParseSseLine("")->kind, SseLine::Kind::kSkip);
  EXPECT_EQ(ParseSseLine(": keep-alive")->kind, SseLine::Kind::kSkip);
  EXPECT_EQ(ParseSseLine("event: message")->kind, SseLine::Kind::kSkip);
  EXPECT_EQ(ParseSseLine(R"(data: {"choices":[{"delta":{"role":"assistant"}}]})")->kind, SseLine::Kind::kSkip);
  EXPECT_EQ(ParseSseLine(R"(data: {"choices":[],"usage":{"total_tokens":9}})")->kind, SseLine::Kind::kSkip);
  EXPECT_FALSE(ParseSseLine("data: {not json").ok());
  EXPECT_FALSE(ParseSseLine(R"(data: {"choices":[{"delta":{"content":5}}]})").ok());
}

TEST(ForEachCompleteLineTest, CompleteLinesOnlyAndStopsWhenAsked) {
  std::vector<std::string> lines;
  auto collect = [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  };
  EXPECT_EQ(ForEachCompleteLine("a\n\nb\r\nrest", collect), 6u);  // "rest" waits for the next read
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "", "b\r"}));
  lines.clear();
  EXPECT_EQ(ForEachCompleteLine("no newline", collect), 0u);
  EXPECT_TRUE(lines.empty());
  int seen = 0;
  EXPECT_EQ(ForEachCompleteLine("1\n2\n3\n", [&](std::string_view) { return ++seen < 2; }), std::string_view::npos);
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace streamfleet
