#include "streamfleet/base/keys.h"

#include <charconv>

namespace streamfleet {

std::string KeySchema::Base(const GenerationId& g) const {
  std::string ident = "org:" + std::to_string(g.org);
  if (g.scenario > 0) ident += ":scenario:" + std::to_string(g.scenario);
  ident += ":generation:" + std::to_string(g.gen);
  if (cluster()) return key_prefix_ + ":" + ShardTag(ShardOf(g)) + ":" + ident;
  return key_prefix_ + ":" + ident;
}

std::string KeySchema::ChunkStream(int shard) const {
  if (cluster()) return ShardTag(shard) + ":chunks";
  return stream_prefix_ + ":chunks:" + std::to_string(shard);
}

std::string KeySchema::FinalizeStream(int control_shard) const {
  if (cluster()) return ShardTag(control_shard) + ":finalize";
  return stream_prefix_ + ":finalize";
}

std::string KeySchema::DeadlinesKey(int control_shard) const {
  if (cluster()) return ShardTag(control_shard) + ":deadlines";
  return stream_prefix_ + ":deadlines";
}

bool KeySchema::IsFinalizeStream(const std::string& stream) const {
  for (int i = 0; i < control_shards(); ++i) {
    if (stream == FinalizeStream(i)) return true;
  }
  return false;
}

namespace {

std::string GlobEscape(const std::string& s) {
  std::string p;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\' || c == '{' || c == '}') p += '\\';
    p += c;
  }
  return p;
}

}  // namespace

std::string KeySchema::BufferScanPattern(int64_t org, int64_t gen) const {
  // Ids are validated integers, so they carry no glob characters. The prefixes may; escape them.
  std::string o = std::to_string(org), g = std::to_string(gen);
  std::string head = key_prefix_ + ":";
  if (cluster()) head += ShardTag(ShardOf(GenerationId{org, 0, gen})) + ":";
  return GlobEscape(head) + "org:" + o + ":*generation:" + g + ":chunks*";
}


int KeySchema::ShardOf(const GenerationId& g) const {
  // Stable across processes and releases: a fixed mix of the ids, not std::hash.
  uint64_t x = static_cast<uint64_t>(g.org) * 0x9E3779B97F4A7C15ULL ^ static_cast<uint64_t>(g.gen);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return static_cast<int>(x % static_cast<uint64_t>(chunk_streams_));
}

std::string KeySchema::Member(const GenerationId& g) {
  return std::to_string(g.org) + ":" + std::to_string(g.scenario) + ":" + std::to_string(g.gen);
}

bool KeySchema::ParseMember(const std::string& s, GenerationId* out) {
  int64_t v[3];
  const char* p = s.data();
  const char* end = s.data() + s.size();
  for (int i = 0; i < 3; ++i) {
    auto [q, ec] = std::from_chars(p, end, v[i]);
    if (ec != std::errc()) return false;
    p = q;
    if (i < 2) {
      if (p == end || *p != ':') return false;
      ++p;
    }
  }
  if (p != end) return false;
  *out = GenerationId{v[0], v[1], v[2]};
  return true;
}

}  // namespace streamfleet
