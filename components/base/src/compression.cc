#include "streamfleet/base/compression.h"

#include <zstd.h>

namespace streamfleet {

namespace {

// One context per thread, reused: ZSTD_compress/ZSTD_decompress create and free one per call, which on
// chunk-sized inputs (1-4 KiB) cost more than the compression itself (bench/storage_bench.cc measured it).
struct Contexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~Contexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
Contexts& ThreadContexts() {
  thread_local Contexts ctx;
  return ctx;
}

}  // namespace

std::string ZstdCompress(std::string_view plain, int level) {
  std::string out(ZSTD_compressBound(plain.size()), '\0');
  // Single-shot: the frame records its content size, which ZstdDecompress requires.
  size_t n = ZSTD_compressCCtx(ThreadContexts().c, out.data(), out.size(), plain.data(), plain.size(), level);
  // Only a destination below ZSTD_compressBound or a bad level can fail; both are programming errors here.
  if (ZSTD_isError(n)) return {};
  out.resize(n);
  return out;
}

std::optional<std::string> ZstdCompressIfSmaller(std::string_view plain, int level) {
  std::string z = ZstdCompress(plain, level);
  if (z.empty() || z.size() > plain.size() - plain.size() / 8) return std::nullopt;
  return z;
}

StatusOr<size_t> ZstdFrameContentSize(std::string_view frame, size_t max_plain_bytes) {
  unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) return Status::InvalidArgument("not a zstd frame");
  if (size == ZSTD_CONTENTSIZE_UNKNOWN) return Status::InvalidArgument("zstd frame without its content size");
  if (size > max_plain_bytes) {
    return Status::InvalidArgument("zstd frame of " + std::to_string(size) + " bytes exceeds the limit of " +
                                   std::to_string(max_plain_bytes));
  }
  // The frame must be the whole input: trailing bytes would be a second frame this reader ignored.
  if (ZSTD_findFrameCompressedSize(frame.data(), frame.size()) != frame.size()) {
    return Status::InvalidArgument("zstd data is not exactly one frame");
  }
  return static_cast<size_t>(size);
}

StatusOr<std::string> ZstdDecompress(std::string_view frame, size_t max_plain_bytes) {
  auto size = ZstdFrameContentSize(frame, max_plain_bytes);
  if (!size.ok()) return size.status();
  std::string out(*size, '\0');
  size_t n = ZSTD_decompressDCtx(ThreadContexts().d, out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) return Status::InvalidArgument(std::string("zstd: ") + ZSTD_getErrorName(n));
  if (n != *size) return Status::InvalidArgument("zstd frame shorter than its recorded size");
  return out;
}

}  // namespace streamfleet
