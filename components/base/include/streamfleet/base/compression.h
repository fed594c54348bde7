#pragma once
// zstd (Debian's libzstd) for chunk data and cache values: one-shot frames that always carry their content
// size, so a reader knows the size before it allocates and a frame that claims more than the caller's limit
// (a corrupt entry, or one crafted to expand) is refused instead of exhausting memory.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "streamfleet/base/status.h"

namespace streamfleet {

// Fast levels: chunk data is compressed on ingest's request path, where level 1 already takes most of the gain
// on text (bench/compression_bench.cc measures it).
inline constexpr int kDefaultZstdLevel = 1;

std::string ZstdCompress(std::string_view plain, int level = kDefaultZstdLevel);

// The compressed form when it saves at least an eighth of the bytes, else nullopt (store plain: short or
// already-dense data would cost a decompression on every read for nothing).
std::optional<std::string> ZstdCompressIfSmaller(std::string_view plain, int level = kDefaultZstdLevel);

// The text size `frame` records, after the checks ZstdDecompress makes before it allocates (one complete frame,
// a recorded size within max_plain_bytes); for readers that keep the frame compressed.
StatusOr<size_t> ZstdFrameContentSize(std::string_view frame, size_t max_plain_bytes);

// kInvalidArgument when `frame` is not one complete zstd frame, does not record its content size, or records
// more than max_plain_bytes.
StatusOr<std::string> ZstdDecompress(std::string_view frame, size_t max_plain_bytes);

}  // namespace streamfleet
