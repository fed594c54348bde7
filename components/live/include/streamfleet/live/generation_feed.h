#pragma once
// What one ingest process knows of a generation that somebody watches: its chunks by seq, as they were
// read from the buffer list or seen on the chunk stream, and whether it is compacted. Readers each keep
// their own position (the next seq they need). Pure, no I/O, one thread.
//
// Order rule (docs/live.md): a reader gets seqs in order, without a gap: a chunk that arrived before the
// one in front of it waits. Once the generation is compacted nothing more can fill a gap (the compactor
// assembled it without the missing seqs), so the rest is released in seq order: every reader's text is the
// row's `compacted` text, byte for byte.
#include <cstdint>
#include <map>
#include <string>

#include "streamfleet/live/sse_events.h"

namespace streamfleet::live {

//
// Attempts: a producer that starts the text over (ChunkWriter::Reset) writes seqs from 0 again, stamped with
// the next attempt. The feed holds one attempt's chunks: a later one replaces them (Restart), an earlier
// one's are not taken.
class GenerationFeed {
 public:
  // A chunk of the feed's attempt; false when its seq is known already (the first copy wins, as in the
  // compactor's assembly).
  bool Add(int64_t seq, std::string data);
  // Drops every chunk, the total and the end: the text starts over as `attempt`.
  void Restart(uint32_t attempt);
  uint32_t attempt() const { return attempt_; }
  // What the producer said the total is (a final chunk, total_chunks, a finish); the largest wins.
  void NoteTotal(int64_t total);
  // Compacted: gaps are final from now on.
  void End(CompactedInfo info);

  bool ended() const { return ended_; }
  const CompactedInfo& compacted() const { return info_; }
  bool empty() const { return chunks_.empty(); }
  FeedProgress progress() const;
  // The bytes this feed holds: its chunks' rendered events (what a watched generation costs the process).
  int64_t held_bytes() const { return held_; }

  // Whether a reader at next_seq has something to take.
  bool HasMoreFor(int64_t next_seq) const;
  // Whether a reader at next_seq waits behind a gap (something after it is known, not next_seq itself).
  bool GapAt(int64_t next_seq) const;
  // Appends chunk events for a reader at *next_seq to *out while they fit in max_bytes and may go, and moves
  // *next_seq past them. The first event goes even when it alone is larger, if first_may_exceed (a chunk of
  // INGEST_MAX_CHUNK_BYTES escapes to several MiB: it must go some time, but only into an empty buffer).
  void Take(int64_t* next_seq, size_t max_bytes, std::string* out, bool first_may_exceed = true) const;

 private:
  struct Chunk {
    std::string event;  // its event text, rendered once for every reader
    int64_t bytes = 0;  // the chunk's own size (progress)
  };
  std::map<int64_t, Chunk> chunks_;
  int64_t bytes_ = 0;
  int64_t held_ = 0;
  int64_t total_ = 0;
  bool ended_ = false;
  CompactedInfo info_;
  uint32_t attempt_ = 0;
};

}  // namespace streamfleet::live
