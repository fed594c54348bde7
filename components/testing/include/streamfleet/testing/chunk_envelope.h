#pragma once
// The chunk envelope as the chunk streams carry it (field "e" of an entry, or inside a ChunkBatch "b"; proto/streamfleet/v1/chunk.proto),
// built the way any producer would: for tests and benchmarks that XADD chunks directly instead of going
// through ingest. Header-only so the benchmarks can use it without the test support library.
#include <cstdint>
#include <string>
#include <vector>

#include "streamfleet/base/keys.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/v1/chunk.pb.h"

namespace streamfleet::testing {

// finish: a FINISH marker (carrying total_chunks) instead of a chunk; version 0 = the current envelope
// version; source: who produced it (ingest sets "json"/"ndjson"/"sse").
inline std::string ChunkEnvelopeBytes(const GenerationId& g, int64_t seq, const std::string& data,
                                      bool final = false, int64_t total_chunks = 0, bool finish = false,
                                      uint32_t version = 0, const std::string& source = "") {
  v1::ChunkEnvelope e;
  e.set_kind(finish ? v1::ChunkEnvelope::FINISH : v1::ChunkEnvelope::CHUNK);
  e.set_organization_id(g.org);
  e.set_scenario_id(g.scenario);
  e.set_generation_id(g.gen);
  e.set_seq(seq);
  e.set_data(data);
  e.set_final(final);
  e.set_total_chunks(total_chunks);
  e.set_version(version);
  e.set_source(source);
  return e.SerializeAsString();
}

// Every chunk envelope of the entries, in order: ingest writes a request's chunks as one entry, one field "e"
// each, or a ChunkBatch (field "b"), whose envelopes get their seqs from its first_seq here. Parsed with
// protobuf's own parser, not the product's (chunk_entry.h), so tests cross-check it. An envelope or batch
// that does not parse is counted in *undecodable (and left out).
inline std::vector<v1::ChunkEnvelope> ChunkEnvelopesOf(const std::vector<StreamEntry>& entries,
                                                       int* undecodable = nullptr) {
  std::vector<v1::ChunkEnvelope> out;
  for (const auto& e : entries) {
    for (const auto& [field, raw] : e.fields) {
      if (field == "b") {
        v1::ChunkBatch batch;
        if (!batch.ParseFromString(raw)) {
          if (undecodable) ++*undecodable;
          continue;
        }
        for (int i = 0; i < batch.envelopes_size(); ++i) {
          if (!out.emplace_back().ParseFromString(batch.envelopes(i))) {
            out.pop_back();
            if (undecodable) ++*undecodable;
            continue;
          }
          out.back().set_seq(batch.first_seq() + i);
        }
        continue;
      }
      if (field != "e") continue;
      if (!out.emplace_back().ParseFromString(raw)) {
        out.pop_back();
        if (undecodable) ++*undecodable;
      }
    }
  }
  return out;
}

// The chunk envelopes a chunk stream holds now (XRANGE of all of it: for tests).
inline std::vector<v1::ChunkEnvelope> ChunksInStream(RedisCommands& redis, const std::string& stream,
                                                     int* undecodable = nullptr) {
  auto r = redis.Command({"XRANGE", stream, "-", "+"});
  if (!r.ok()) return {};
  return ChunkEnvelopesOf(ParseEntries(stream, *r), undecodable);
}

}  // namespace streamfleet::testing
