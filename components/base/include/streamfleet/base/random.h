#pragma once
// The fleet's one source of randomness for ids, lock tokens, retry jitter and shard or queue picks: a
// 64-bit engine per thread, seeded once from std::random_device (seeding costs more than many draws, and
// a per-thread engine needs no lock). Not for secrets: tokens that guard access come from OpenSSL.
#include <cstdint>

namespace streamfleet {

uint64_t RandomU64();

}  // namespace streamfleet
