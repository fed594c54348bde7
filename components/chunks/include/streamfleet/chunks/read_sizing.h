#pragma once
// How many chunk entries one read asks each chunk stream for: the compactor's reads, and ingest's live tail.
//
// An entry of ingest holds a whole request's chunks (up to 1000 envelopes and 64 KiB, docs/ARCHITECTURE.md
// "Chunk entries"), one written by another producer a single chunk. A COUNT sized for one-chunk entries would,
// on a backlog of NDJSON entries, bring up to COUNT x 64 KiB per stream into one reply, and the process holds
// that several times over while it decodes and applies it: 541 MB of RSS measured draining 1 KiB NDJSON chunks
// at COUNT 500 (docs/performance.md). So the count follows what recent reads held: about `target_chunks`
// envelopes and at most `budget_bytes` per stream and read, within [min_entries, max_entries]. One reader
// thread only.
#include <cstddef>
#include <cstdint>

namespace streamfleet {

class ReadSizer {
 public:
  // min_entries > 1 for a reader whose COUNT also paces a stream of small entries read in the same command.
  ReadSizer(int min_entries, int max_entries, int target_chunks, int64_t budget_bytes);

  // The COUNT of the next read of a chunk stream. Until a read has shown what entries hold, a small one:
  // the first read after a start, which on a backlog of large entries would otherwise be the largest.
  int Count() const { return count_; }

  // What the chunk-stream entries of one read held, summed over its streams (entries without fields, trimmed
  // while pending, are left out). A read without such entries changes nothing.
  void Observe(size_t entries, size_t envelopes, size_t bytes);

  static constexpr int kFirstCount = 16;

 private:
  int min_entries_;
  int max_entries_;
  double target_chunks_;
  double budget_bytes_;
  double chunks_per_entry_ = 0;  // moving averages over recent reads; 0 = nothing seen yet
  double bytes_per_entry_ = 0;
  int count_;
};

}  // namespace streamfleet
