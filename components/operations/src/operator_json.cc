#include "streamfleet/operations/operator_json.h"

#include "streamfleet/base/text.h"
#include "streamfleet/chunks/chunk_wire_format.h"

namespace streamfleet {

using nlohmann::json;

json StreamStatsJson(const StreamStats& stats) {
  json groups = json::array();
  for (const auto& g : stats.groups) {
    json consumers = json::array();
    for (const auto& c : g.consumer_list) {
      consumers.push_back({{"name", c.name}, {"pending", c.pending}, {"idle_seconds", c.idle_ms / 1000.0}});
    }
    groups.push_back({{"group", g.name}, {"pending", g.pending}, {"lag", g.lag}, {"consumers", g.consumers},
                      {"oldest_pending_seconds", g.oldest_pending_seconds}, {"consumer_list", consumers}});
  }
  return {{"stream", stats.stream}, {"length", stats.length}, {"groups", groups}};
}

json BufferKeyJson(const BufferKeyInfo& key) {
  json j = {{"key", key.key}, {"type", key.type}, {"ttl", key.ttl}};
  if (key.type == "list") {
    j["llen"] = key.llen;
    if (key.elements_read) {
      j["text"] = ToValidUtf8(key.text);
      j["text_bytes"] = key.text.size();
      j["stored_bytes"] = key.stored_bytes;
      j["compressed_elements"] = key.compressed_elements;
    }
  }
  if (key.type == "hash") j["hash"] = key.hash;
  return j;
}

json DeadLetterJson(const DeadLetterEntry& dead_letter) {
  json j = {{"dlq", dead_letter.dlq}, {"id", dead_letter.entry.id}};
  for (const auto& [k, v] : dead_letter.entry.fields) {
    if (!IsChunkEnvelopeField(k)) j[k] = v;  // envelopes ("e" of tasks and chunks, "b") are protobuf bytes, not JSON text
  }
  return j;
}

json ManualCompactionJson(int64_t generation_id, const ManualCompaction& result) {
  const FinalizeOutcome& o = result.outcome;
  // row_kept: the stored row outdid this text (it holds chunks this one lacks, or a later attempt), and stays.
  // marked_compacted false: chunks arrived while it ran (a later finalization takes them; the buffer is kept).
  return {{"generation_id", generation_id}, {"chunk_count", o.chunk_count}, {"json_valid", o.json_valid},
          {"missing_seqs", o.missing}, {"row_kept", o.kept_row}, {"marked_compacted", o.marked_compacted},
          {"buffer_deleted", result.buffer_deleted}};
}

}  // namespace streamfleet
