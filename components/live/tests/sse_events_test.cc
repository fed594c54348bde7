// The live streams' event text (streamfleet/live/sse_events.h): what an EventSource parses, byte-exact text
// through JSON whatever characters a chunk holds, and what a reconnecting client may send.
#include "streamfleet/live/sse_events.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace streamfleet::live {
namespace {

// The data line of one event.
nlohmann::json DataOf(const std::string& ev) {
  auto at = ev.find("\ndata: ");
  EXPECT_NE(at, std::string::npos) << ev;
  auto end = ev.find('\n', at + 7);
  return nlohmann::json::parse(ev.substr(at + 7, end - at - 7));
}

TEST(SseEventsTest, AChunkIsOneEventWithItsSeqAsIdAndItsTextByteExact) {
  const std::string text = "line one\r\nline two\rthree\n\n: not a comment\ndata: nor a field \xC3\xA9";
  std::string ev = ChunkEvent(41, text);
  EXPECT_EQ(ev.rfind("id: 41\nevent: chunk\ndata: ", 0), 0u) << ev;
  EXPECT_EQ(ev.substr(ev.size() - 2), "\n\n");
  // One data line: no raw CR or LF inside it.
  std::string data_line = ev.substr(ev.find("data: "), ev.size() - 2 - ev.find("data: "));
  EXPECT_EQ(data_line.find('\n'), std::string::npos);
  EXPECT_EQ(data_line.find('\r'), std::string::npos);
  auto j = DataOf(ev);
  EXPECT_EQ(j["seq"], 41);
  EXPECT_EQ(j["text"].get<std::string>(), text);
}

TEST(SseEventsTest, ProgressCompactedAndClosing) {
  auto p = DataOf(ProgressEvent({3, 120, 0}));
  EXPECT_EQ(p["received_chunks"], 3);
  EXPECT_EQ(p["received_bytes"], 120);
  EXPECT_TRUE(p["total_chunks"].is_null());
  EXPECT_TRUE(p["percent"].is_null());
  p = DataOf(ProgressEvent({3, 120, 4}));
  EXPECT_EQ(p["percent"], 75);
  EXPECT_EQ(ProgressEvent({3, 120, 4}).find("id:"), std::string::npos) << "progress must not move the resume point";

  std::string c = CompactedEvent({7, true, "complete"});
  EXPECT_EQ(c.rfind("id: end\nevent: compacted\n", 0), 0u) << c;
  EXPECT_EQ(DataOf(c)["chunk_count"], 7);
  EXPECT_EQ(DataOf(c)["json_valid"], true);
  EXPECT_EQ(DataOf(c)["trigger"], "complete");
  EXPECT_TRUE(DataOf(CompactedEvent({1, false, ""}))["trigger"].is_null());

  auto w = DataOf(RowTextEvent("all\nof it", true));
  EXPECT_EQ(w["text"], "all\nof it");
  EXPECT_EQ(w["replaces"], true);
  EXPECT_EQ(DataOf(ClosingEvent("slow_reader", "why"))["reason"], "slow_reader");
}

// A row's text is sent in pieces: none ends inside a UTF-8 sequence, and together they are the text.
TEST(SseEventsTest, TextPiecesAreCutBetweenCharacters) {
  const std::string text = "ab\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";  // a b é € 😀 z: 1,1,2,3,4,1 bytes
  EXPECT_EQ(TextPieceLength(text, 0, 3), 2u) << "é is not split";
  EXPECT_EQ(TextPieceLength(text, 0, 4), 4u);
  EXPECT_EQ(TextPieceLength(text, 4, 4), 3u) << "€ whole, not the 😀 after it in part";
  EXPECT_EQ(TextPieceLength(text, 7, 3), 3u) << "a sequence longer than a piece is cut (it cannot be kept whole)";
  EXPECT_EQ(TextPieceLength(text, 7, 100), 5u) << "the rest";
  EXPECT_EQ(TextPieceLength(text, text.size(), 10), 0u);
  EXPECT_EQ(TextPieceLength("\x80\x80\x80\x80\x80", 0, 2), 2u) << "not UTF-8: cut where it is";
  for (size_t max : {1u, 2u, 3u, 5u, 7u}) {
    std::string joined;
    for (size_t at = 0; at < text.size();) {
      size_t n = TextPieceLength(text, at, max);
      ASSERT_GT(n, 0u);
      joined += text.substr(at, n);
      at += n;
    }
    EXPECT_EQ(joined, text) << max;
  }
}

TEST(SseEventsTest, InvalidUtf8DoesNotThrow) {
  std::string ev = ChunkEvent(0, std::string("a\xFF" "b"));
  EXPECT_EQ(DataOf(ev)["text"], "a\xEF\xBF\xBD" "b");
}

TEST(SseEventsTest, ResumePoints) {
  EXPECT_EQ(ParseResume(std::nullopt, std::nullopt)->after_seq, -1);
  EXPECT_EQ(ParseResume(std::string("12"), std::nullopt)->after_seq, 12);
  EXPECT_EQ(ParseResume(std::string("12"), std::string("3"))->after_seq, 12) << "Last-Event-ID wins";
  EXPECT_EQ(ParseResume(std::nullopt, std::string("3"))->after_seq, 2);
  EXPECT_EQ(ParseResume(std::nullopt, std::string("0"))->after_seq, -1);
  EXPECT_EQ(ParseResume(std::string(""), std::string("5"))->after_seq, 4) << "an empty Last-Event-ID is none";
  EXPECT_TRUE(ParseResume(std::string("end"), std::nullopt)->ended);
  for (const char* bad : {"-1", "x", "12 ", "99999999999999999999", "9007199254740993"}) {
    EXPECT_FALSE(ParseResume(std::string(bad), std::nullopt).ok()) << bad;
    EXPECT_FALSE(ParseResume(std::nullopt, std::string(bad)).ok()) << bad;
  }
}

// A later attempt's chunk ids are "<attempt>.<seq>"; a client resumes with one, or with from_seq and attempt.
TEST(SseEventsTest, ResumePointsOfALaterAttempt) {
  auto r = ParseResume(std::string("3.12"), std::nullopt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->attempt, 3u);
  EXPECT_EQ(r->after_seq, 12);
  EXPECT_EQ(ParseResume(std::string("12"), std::nullopt)->attempt, 0u) << "the first attempt's ids are the seq";
  r = ParseResume(std::nullopt, std::string("5"), std::string("2"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->attempt, 2u);
  EXPECT_EQ(r->after_seq, 4);
  EXPECT_EQ(ParseResume(std::string("1.7"), std::string("5"), std::string("2"))->attempt, 1u) << "Last-Event-ID wins";
  for (const char* bad : {"1.", ".5", "x.5", "-1.5", "1.-5", "4294967296.1", "1.2.3", "1.9007199254740993"}) {
    EXPECT_FALSE(ParseResume(std::string(bad), std::nullopt).ok()) << bad;
  }
  EXPECT_FALSE(ParseResume(std::nullopt, std::string("1.5")).ok()) << "from_seq is a seq";
  EXPECT_FALSE(ParseResume(std::nullopt, std::string("5"), std::string("-1")).ok());
  EXPECT_FALSE(ParseResume(std::nullopt, std::string("5"), std::string("4294967296")).ok());
}

TEST(SseEventsTest, ALaterAttemptsChunkNamesItAndAResetSaysWhichStarts) {
  std::string ev = ChunkEvent(4, "x", 2);
  EXPECT_EQ(ev.rfind("id: 2.4\nevent: chunk\n", 0), 0u) << ev;
  EXPECT_EQ(DataOf(ev), nlohmann::json({{"seq", 4}, {"text", "x"}, {"attempt", 2}}));
  EXPECT_EQ(DataOf(ChunkEvent(4, "x")), nlohmann::json({{"seq", 4}, {"text", "x"}})) << "the first attempt's as before";
  std::string reset = ResetEvent(2);
  EXPECT_EQ(reset.rfind("event: reset\n", 0), 0u) << "no id: " << reset;
  EXPECT_EQ(DataOf(reset), nlohmann::json({{"attempt", 2}}));
}

}  // namespace
}  // namespace streamfleet::live
