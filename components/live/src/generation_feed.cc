#include "streamfleet/live/generation_feed.h"

#include <algorithm>

namespace streamfleet::live {

bool GenerationFeed::Add(int64_t seq, std::string data) {
  if (seq < 0 || chunks_.count(seq)) return false;
  auto size = static_cast<int64_t>(data.size());
  auto it = chunks_.emplace(seq, Chunk{ChunkEvent(seq, data, attempt_), size}).first;
  bytes_ += size;
  held_ += static_cast<int64_t>(it->second.event.size());
  return true;
}

void GenerationFeed::Restart(uint32_t attempt) {
  chunks_.clear();
  bytes_ = 0;
  held_ = 0;
  total_ = 0;
  ended_ = false;
  info_ = CompactedInfo{};
  attempt_ = attempt;
}

void GenerationFeed::NoteTotal(int64_t total) { total_ = std::max(total_, total); }

void GenerationFeed::End(CompactedInfo info) {
  ended_ = true;
  info_ = std::move(info);
}

FeedProgress GenerationFeed::progress() const {
  return FeedProgress{static_cast<int64_t>(chunks_.size()), bytes_, total_};
}

bool GenerationFeed::HasMoreFor(int64_t next_seq) const {
  auto it = chunks_.lower_bound(next_seq);
  if (it == chunks_.end()) return false;
  return ended_ || it->first == next_seq;
}

bool GenerationFeed::GapAt(int64_t next_seq) const {
  auto it = chunks_.lower_bound(next_seq);
  return !ended_ && it != chunks_.end() && it->first != next_seq;
}

void GenerationFeed::Take(int64_t* next_seq, size_t max_bytes, std::string* out, bool first_may_exceed) const {
  const size_t started = out->size();
  for (auto it = chunks_.lower_bound(*next_seq); it != chunks_.end(); ++it) {
    if (!ended_ && it->first != *next_seq) break;  // a gap: wait for it to fill
    const std::string& event = it->second.event;
    const bool first = out->size() == started;
    if (out->size() - started + event.size() > max_bytes && !(first && first_may_exceed)) break;
    out->append(event);
    *next_seq = it->first + 1;
  }
}

}  // namespace streamfleet::live
