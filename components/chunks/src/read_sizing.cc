#include "streamfleet/chunks/read_sizing.h"

#include <algorithm>
#include <cmath>

namespace streamfleet {

ReadSizer::ReadSizer(int min_entries, int max_entries, int target_chunks, int64_t budget_bytes)
    : min_entries_(std::max(1, min_entries)),
      max_entries_(std::max(min_entries_, max_entries)),
      target_chunks_(std::max(1, target_chunks)),
      budget_bytes_(static_cast<double>(std::max<int64_t>(1, budget_bytes))),
      count_(std::clamp(kFirstCount, min_entries_, max_entries_)) {}

void ReadSizer::Observe(size_t entries, size_t envelopes, size_t bytes) {
  if (entries == 0) return;
  const double n = static_cast<double>(entries);
  const double chunks = std::max(1.0, static_cast<double>(envelopes) / n);
  const double size = std::max(1.0, static_cast<double>(bytes) / n);
  // Half the weight on the newest read: a change of traffic (one-chunk requests after NDJSON ones) is
  // followed within a few reads, and one odd read does not swing the count all the way.
  chunks_per_entry_ = chunks_per_entry_ == 0 ? chunks : (chunks_per_entry_ + chunks) / 2;
  bytes_per_entry_ = bytes_per_entry_ == 0 ? size : (bytes_per_entry_ + size) / 2;
  const double fit = std::min(target_chunks_ / chunks_per_entry_, budget_bytes_ / bytes_per_entry_);
  count_ = static_cast<int>(
      std::clamp(std::floor(fit), static_cast<double>(min_entries_), static_cast<double>(max_entries_)));
}

}  // namespace streamfleet
