#include "streamfleet/chunks/request_parsing.h"

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
