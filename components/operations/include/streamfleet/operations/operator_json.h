#pragma once
// The JSON forms of what operators look at, shared by `streamfleetctl --json` and the admin API, so a
// script reading either one finds the same fields under the same names. Where one of them shows more (the
// admin UI adds a group's last delivered id, a dead letter's decoded envelope), it adds to these.
#include <cstdint>

#include <nlohmann/json.hpp>

#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/operations/manual_compaction.h"
#include "streamfleet/redis/stream_admin.h"

namespace streamfleet {

// {"stream", "length", "groups": [{"group", "pending", "lag", "consumers", "oldest_pending_seconds",
//  "consumer_list": [{"name", "pending", "idle_seconds"}]}]}
nlohmann::json StreamStatsJson(const StreamStats& stats);

// {"key", "type", "ttl"}, plus "llen" for a list and "hash" (its fields) for a hash.
nlohmann::json BufferKeyJson(const BufferKeyInfo& key);

// {"dlq", "id"} and the entry's fields (source_stream, reason, ...) except the binary envelopes ("e", and a chunk entry's batches "b").
nlohmann::json DeadLetterJson(const DeadLetterEntry& dead_letter);

// {"generation_id", "chunk_count", "json_valid", "missing_seqs", "buffer_deleted"}
nlohmann::json ManualCompactionJson(int64_t generation_id, const ManualCompaction& result);

}  // namespace streamfleet
