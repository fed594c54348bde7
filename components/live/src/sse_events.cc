#include "streamfleet/live/sse_events.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace streamfleet::live {

namespace {

// Text that is not UTF-8 (only an envelope written by hand can carry it: ingest checks) becomes U+FFFD
// instead of throwing on the hub's thread.
std::string Dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

constexpr int64_t kMaxSeq = int64_t{1} << 53;

std::optional<int64_t> ParseSeq(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0 || v > kMaxSeq) return std::nullopt;
  return v;
}

}  // namespace

std::optional<uint32_t> ParseAttempt(std::string_view s) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string SseEvent(std::string_view event, std::string_view id, std::string_view data) {
  std::string out;
  out.reserve(event.size() + id.size() + data.size() + 24);
  if (!id.empty()) out.append("id: ").append(id).append("\n");
  out.append("event: ").append(event).append("\ndata: ").append(data).append("\n\n");
  return out;
}

std::string ChunkEvent(int64_t seq, std::string_view text, uint32_t attempt) {
  if (attempt == 0) return SseEvent("chunk", std::to_string(seq), Dump({{"seq", seq}, {"text", text}}));
  return SseEvent("chunk", std::to_string(attempt) + "." + std::to_string(seq),
                  Dump({{"seq", seq}, {"text", text}, {"attempt", attempt}}));
}

std::string ResetEvent(uint32_t attempt) { return SseEvent("reset", "", Dump({{"attempt", attempt}})); }

std::string ProgressEvent(const FeedProgress& p) {
  nlohmann::json j = {{"received_chunks", p.received_chunks},
                      {"received_bytes", p.received_bytes},
                      {"total_chunks", nullptr},
                      {"percent", nullptr}};
  if (p.total_chunks > 0) {
    j["total_chunks"] = p.total_chunks;
    j["percent"] = std::min<int64_t>(100, 100 * p.received_chunks / p.total_chunks);
  }
  return SseEvent("progress", "", Dump(j));
}

std::string CompactedEvent(const CompactedInfo& c) {
  nlohmann::json j = {{"chunk_count", c.chunk_count}, {"json_valid", c.json_valid}, {"trigger", nullptr}};
  if (!c.trigger.empty()) j["trigger"] = c.trigger;
  return SseEvent("compacted", kEndId, Dump(j));
}

std::string RowTextEvent(std::string_view text, bool replaces) {
  return SseEvent("text", "", Dump({{"text", text}, {"replaces", replaces}}));
}

size_t TextPieceLength(std::string_view text, size_t from, size_t max_bytes) {
  if (from >= text.size()) return 0;
  size_t n = std::min(text.size() - from, std::max<size_t>(max_bytes, 1));
  if (from + n == text.size()) return n;
  // Back over at most three continuation bytes (10xxxxxx) to the start of the sequence the cut is in. Text
  // that is not UTF-8 there is cut where it is (it becomes U+FFFD whatever the cut).
  size_t cut = n;
  for (int i = 0; i < 3 && cut > 1 && (static_cast<unsigned char>(text[from + cut]) & 0xC0) == 0x80; ++i) --cut;
  return (static_cast<unsigned char>(text[from + cut]) & 0xC0) == 0x80 ? n : cut;
}

std::string ClosingEvent(std::string_view reason, std::string_view detail) {
  return SseEvent("closing", "", Dump({{"reason", reason}, {"detail", detail}}));
}

StatusOr<Resume> ParseResume(const std::optional<std::string>& last_event_id,
                             const std::optional<std::string>& from_seq,
                             const std::optional<std::string>& attempt_param) {
  Resume r;
  if (last_event_id && !last_event_id->empty()) {
    if (*last_event_id == kEndId) {
      r.ended = true;
      return r;
    }
    std::string_view id = *last_event_id;
    std::optional<uint32_t> attempt = 0;
    if (auto dot = id.find('.'); dot != std::string_view::npos) {
      attempt = ParseAttempt(id.substr(0, dot));
      id = id.substr(dot + 1);
    }
    auto seq = ParseSeq(id);
    if (!seq || !attempt) return Status::InvalidArgument("Last-Event-ID must be a chunk event's id or \"end\"");
    r.after_seq = *seq;
    r.attempt = *attempt;
    r.attempt_known = true;
    return r;
  }
  if (from_seq && !from_seq->empty()) {
    auto seq = ParseSeq(*from_seq);
    if (!seq) return Status::InvalidArgument("from_seq must be a non-negative integer");
    r.after_seq = *seq - 1;
    if (attempt_param && !attempt_param->empty()) {
      auto a = ParseAttempt(*attempt_param);
      if (!a) return Status::InvalidArgument("attempt must be an integer from 0 to 4294967295");
      r.attempt = *a;
      r.attempt_known = true;
    }
  }
  return r;
}

}  // namespace streamfleet::live
