// GenerationFeed (streamfleet/live/generation_feed.h): readers get seqs in order with no gap and no repeat,
// out-of-order chunks wait for the gap, compaction releases the rest, and the concatenation equals the
// compactor's assembly of the same chunks.
#include "streamfleet/live/generation_feed.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

#include "streamfleet/chunks/assembly.h"

namespace streamfleet::live {
namespace {

// Seqs and texts of the chunk events in a Take() output.
std::vector<std::pair<int64_t, std::string>> Events(const std::string& out) {
  std::vector<std::pair<int64_t, std::string>> got;
  size_t at = 0;
  while ((at = out.find("data: ", at)) != std::string::npos) {
    auto end = out.find('\n', at);
    auto j = nlohmann::json::parse(out.substr(at + 6, end - at - 6));
    got.emplace_back(j["seq"].get<int64_t>(), j["text"].get<std::string>());
    at = end;
  }
  return got;
}

std::string TakeAll(const GenerationFeed& f, int64_t* next) {
  std::string out;
  while (f.HasMoreFor(*next)) f.Take(next, 1 << 20, &out);
  return out;
}

TEST(GenerationFeedTest, AGapHoldsBackWhatCameAfterItUntilItFills) {
  GenerationFeed f;
  int64_t next = 0;
  f.Add(0, "a");
  f.Add(2, "c");
  EXPECT_EQ(Events(TakeAll(f, &next)), (std::vector<std::pair<int64_t, std::string>>{{0, "a"}}));
  EXPECT_EQ(next, 1);
  EXPECT_FALSE(f.HasMoreFor(next)) << "seq 2 must wait for seq 1";
  f.Add(1, "b");
  EXPECT_EQ(Events(TakeAll(f, &next)), (std::vector<std::pair<int64_t, std::string>>{{1, "b"}, {2, "c"}}));
  EXPECT_FALSE(f.Add(1, "other")) << "the first copy of a seq wins";
  EXPECT_FALSE(f.HasMoreFor(next));
}

TEST(GenerationFeedTest, CompactionReleasesWhatWaitsBehindAGapThatCannotFillAnyMore) {
  GenerationFeed f;
  int64_t next = 0;
  f.Add(0, "a");
  f.Add(3, "d");
  TakeAll(f, &next);
  f.End({2, false, "idle_timeout"});
  EXPECT_EQ(Events(TakeAll(f, &next)), (std::vector<std::pair<int64_t, std::string>>{{3, "d"}}));
  EXPECT_EQ(f.compacted().trigger, "idle_timeout");
}

TEST(GenerationFeedTest, ARestartDropsTheEarlierAttemptsChunksTotalAndEnd) {
  GenerationFeed f;
  f.Add(0, "old a");
  f.Add(1, "old b");
  f.NoteTotal(2);
  f.End({2, false, "complete"});
  f.Restart(1);
  EXPECT_EQ(f.attempt(), 1u);
  EXPECT_FALSE(f.ended());
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(f.progress().total_chunks, 0);
  EXPECT_TRUE(f.Add(0, "new a")) << "seq 0 is free again";
  int64_t next = 0;
  std::string out = TakeAll(f, &next);
  EXPECT_EQ(Events(out), (std::vector<std::pair<int64_t, std::string>>{{0, "new a"}}));
  EXPECT_NE(out.find("id: 1.0\n"), std::string::npos) << out;
}

TEST(GenerationFeedTest, AResumedReaderGetsOnlyWhatItHasNotSeen) {
  GenerationFeed f;
  for (int i = 0; i < 5; ++i) f.Add(i, std::to_string(i));
  int64_t next = 3;  // Last-Event-ID: 2
  EXPECT_EQ(Events(TakeAll(f, &next)), (std::vector<std::pair<int64_t, std::string>>{{3, "3"}, {4, "4"}}));
}

TEST(GenerationFeedTest, TakeStopsNearItsByteBudget) {
  GenerationFeed f;
  for (int i = 0; i < 100; ++i) f.Add(i, std::string(1000, 'x'));
  int64_t next = 0;
  std::string out;
  f.Take(&next, 5000, &out);
  EXPECT_GE(next, 4);
  EXPECT_LE(next, 6);
  EXPECT_LT(out.size(), 5000u + 1100u);
  std::string first;
  int64_t zero = 0;
  f.Take(&zero, 1, &first);
  EXPECT_EQ(zero, 1) << "one event goes, however small the budget, into an empty buffer";
  std::string none;
  f.Take(&zero, 1, &none, /*first_may_exceed=*/false);
  EXPECT_EQ(zero, 1) << "not into one that holds something";
  EXPECT_TRUE(none.empty());
  f.Take(&zero, 5000, &none, false);
  EXPECT_LE(none.size(), 5000u) << "never past the budget then";
  EXPECT_GE(zero, 4);
}

TEST(GenerationFeedTest, ProgressCountsChunksBytesAndTheLargestTotal) {
  GenerationFeed f;
  f.Add(0, "ab");
  f.Add(0, "ab");
  f.Add(1, "cde");
  f.NoteTotal(4);
  f.NoteTotal(3);
  auto p = f.progress();
  EXPECT_EQ(p.received_chunks, 2);
  EXPECT_EQ(p.received_bytes, 5);
  EXPECT_EQ(p.total_chunks, 4);
}

TEST(GenerationFeedTest, ShuffledDuplicatedArrivalWithReadersResumingAnywhereEqualsTheAssembly) {
  std::mt19937 rng(7);
  std::vector<std::string> elements;  // the buffer list as the compactor sees it ("seq:data")
  std::vector<std::pair<int64_t, std::string>> arrivals;
  for (int s = 0; s < 200; ++s) {
    if (s % 37 == 5) continue;  // never arrives: the idle timeout compacts without it
    std::string d = "<" + std::to_string(s) + "\n\xC3\xA9>";
    arrivals.emplace_back(s, d);
    if (s % 3 == 0) arrivals.emplace_back(s, d);  // a redelivery
  }
  std::shuffle(arrivals.begin(), arrivals.end(), rng);
  GenerationFeed f;
  std::string text;
  int64_t next = 0;
  for (size_t i = 0; i < arrivals.size(); ++i) {
    if (f.Add(arrivals[i].first, arrivals[i].second)) {
      elements.push_back(std::to_string(arrivals[i].first) + ":" + arrivals[i].second);
    }
    if (i % 17 == 0) {
      // A reconnect: a new reader from the last seq the old one had.
      int64_t resumed = next;
      next = resumed;
    }
    for (auto& [seq, t] : Events(TakeAll(f, &next))) text += t;
  }
  f.End({0, false, "idle_timeout"});
  for (auto& [seq, t] : Events(TakeAll(f, &next))) text += t;
  EXPECT_EQ(text, Assemble(elements, {}, 0).text);
}

}  // namespace
}  // namespace streamfleet::live
