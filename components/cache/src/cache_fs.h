#pragma once
// The filesystem tier of Cache (private to common): one JSON file per key under {root}/{prefix}/, written
// atomically (temp file + rename, so a reader sees the old or the new file, never half of one). No fsync:
// a cache entry lost or truncated by a power cut is detected on read (checksum) and recomputed.
//
// File format ({name}_{hash8}.json):
//   {"key": "ir_cache:generation_1a2b3c4d", "value": "...", "length": 123, "sha256": "<hex of value>",
//    "written_at_ms": ..., "expires_at_ms": ..., "ver": "<token>", "epoch": "<token>"}
//   (a marker is "" while the key was never invalidated, or the cache never flushed)
// "value_b64" replaces "value" when the value is not valid UTF-8 (JSON strings must be).
#include <cstdint>
#include <string>
#include <string_view>

#include "streamfleet/base/status.h"

namespace streamfleet {

// Hex SHA-256 of bytes (OpenSSL).

struct FsCacheEntry {
  std::string key;
  std::string value;
  int64_t written_at_ms = 0;
  int64_t expires_at_ms = 0;
  std::string ver;    // the key's invalidation marker when the value was computed ("" = never invalidated)
  std::string epoch;  // the cache's flush epoch when the value was computed
};

class FsCacheTier {
 public:
  // dir: {root}/{prefix}; created on first write.
  FsCacheTier(std::string dir, std::string prefix) : dir_(std::move(dir)), prefix_(std::move(prefix)) {}

  // The entry stored for key ({prefix}:{stem}). kNotFound when there is none; kDataLoss when the file is
  // unreadable, truncated, for another key or fails its checksum (the file is removed).
  StatusOr<FsCacheEntry> Read(const std::string& key) const;
  Status Write(const FsCacheEntry& entry) const;
  void Remove(const std::string& key) const;
  // Removes the files whose key matches a Redis-style glob (fnmatch); returns how many.
  int64_t RemoveMatching(const std::string& pattern) const;
  void Usage(int64_t* files, int64_t* bytes) const;
  // Removes entries last written longer than max_age_ms ago (by their files' modification time: a sweep reads
  // no file) and temp files a crashed writer left for an hour; returns how many. Without it every key ever
  // computed stayed on disk for good.
  int64_t Sweep(int64_t max_age_ms) const;

 private:
  std::string PathOf(const std::string& key) const;

  std::string dir_;
  std::string prefix_;
};

}  // namespace streamfleet
