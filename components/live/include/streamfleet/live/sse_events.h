#pragma once
// The text of the live streams' server-sent events (docs/live.md), and what a reconnecting client sends
// back. Pure, no I/O.
//
// Every event's data is one line of JSON: chunk text can hold any character, and "\r" or "\n" in an SSE
// data line would be split or rewritten by the client's parser; JSON keeps the text byte-exact.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "streamfleet/base/status.h"

namespace streamfleet::live {

// "id: <id>\nevent: <event>\ndata: <data>\n\n" (no id line when id is empty). data must be one line.
std::string SseEvent(std::string_view event, std::string_view id, std::string_view data);

inline constexpr std::string_view kKeepAlive = ": keep-alive\n\n";
// The first bytes of every stream: how long EventSource waits before it reconnects.
inline constexpr std::string_view kStreamPreamble = "retry: 1000\n\n";
// The id of a generation stream's last event. A client reconnecting with it is answered 204 (an
// EventSource then stops reconnecting): it has everything.
inline constexpr std::string_view kEndId = "end";

// event: chunk, id: seq, data {"seq":..,"text":..}. A chunk of a later attempt (the producer started the text
// over) has id "<attempt>.<seq>" and "attempt" in its data: a client resuming with it is not taken for one
// that has the earlier attempt's chunks of the same seqs.
std::string ChunkEvent(int64_t seq, std::string_view text, uint32_t attempt = 0);
// event: reset (no id), data {"attempt":..}: the producer started the text over; drop what was shown, the chunks
// that follow start again at seq 0.
std::string ResetEvent(uint32_t attempt);

struct FeedProgress {
  int64_t received_chunks = 0;
  int64_t received_bytes = 0;
  int64_t total_chunks = 0;  // 0 = not known yet
};
// event: progress, no id (a reconnect resumes from the last chunk): received chunks and bytes, total and
// percent when the total is known.
std::string ProgressEvent(const FeedProgress& p);

struct CompactedInfo {
  int64_t chunk_count = 0;
  bool json_valid = false;
  std::string trigger;  // "complete" | "idle_timeout" | "manual" | "" (not known)
};
// event: compacted, id: end.
std::string CompactedEvent(const CompactedInfo& c);
// event: text (no id): a piece of the compacted text of a generation whose buffer is gone (served from its
// row). replaces: the first piece, which replaces whatever the client has; the others are appended.
std::string RowTextEvent(std::string_view text, bool replaces);
// How many bytes of text from `from` make the next piece: at most max_bytes, and never ending inside a UTF-8
// sequence (a split one would reach the client as two U+FFFD). The rest of the text when it is shorter.
size_t TextPieceLength(std::string_view text, size_t from, size_t max_bytes);
// event: closing: why the server ends the stream early ("slow_reader", "not_found", ...).
std::string ClosingEvent(std::string_view reason, std::string_view detail);

// An attempt number as a chunk id or the attempt parameter carries it (0 ... 2^32-1, digits only).
std::optional<uint32_t> ParseAttempt(std::string_view s);

// Where a generation stream resumes. Last-Event-ID (what EventSource sends on reconnect) wins over the
// from_seq query parameter (the first seq wanted; for clients that keep their own position).
struct Resume {
  bool ended = false;    // Last-Event-ID: end
  int64_t after_seq = -1;  // the last seq the client has (-1: none)
  uint32_t attempt = 0;    // the attempt that seq is of
  // Whether the client said which attempt (a chunk id always does; from_seq only with attempt). A client that
  // did not (one written before attempts existed) is taken to be in the generation's current attempt.
  bool attempt_known = false;
};
// kInvalidArgument for anything else than "end", a seq (0 ... 2^53), "<attempt>.<seq>" (attempt 1 ... 2^32-1),
// or a from_seq (0 ... 2^53) with an optional attempt (0 ... 2^32-1).
StatusOr<Resume> ParseResume(const std::optional<std::string>& last_event_id,
                             const std::optional<std::string>& from_seq,
                             const std::optional<std::string>& attempt = std::nullopt);

}  // namespace streamfleet::live
