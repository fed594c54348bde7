#include "streamfleet/chunks/chunk_entry.h"

#include "streamfleet/base/compression.h"
#include "streamfleet/base/envelope_version.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/v1/chunk.pb.h"

namespace streamfleet {

namespace {

bool DecodeEnvelope(std::string_view raw, int64_t ingested_ms, bool in_batch, ChunkItem* item, std::string* why,
                    size_t max_plain_bytes) {
  v1::ChunkEnvelope env;
  if (!env.ParseFromArray(raw.data(), static_cast<int>(raw.size()))) {
    *why = "undecodable ChunkEnvelope";
    return false;
  }
  if (std::string v = UnknownVersionReason("ChunkEnvelope", env.version(), kChunkEnvelopeVersion); !v.empty()) {
    *why = v;
    return false;
  }
  if (env.version() == kChunkEnvelopeBatched && !in_batch) {
    // Its seq is its place in a batch: alone, it would land at whatever seq it carries.
    *why = "a ChunkEnvelope of version " + std::to_string(kChunkEnvelopeBatched) + " outside a ChunkBatch";
    return false;
  }
  item->gen = GenerationId{env.organization_id(), env.scenario_id(), env.generation_id()};
  item->finish = env.kind() == v1::ChunkEnvelope::FINISH;
  item->seq = env.seq();
  item->data = std::move(*env.mutable_data());
  item->compressed = env.data_encoding() == v1::ChunkEnvelope::DATA_ZSTD;
  item->plain_bytes = static_cast<int64_t>(item->data.size());
  if (item->compressed) {
    auto size = ZstdFrameContentSize(item->data, max_plain_bytes);
    if (!size.ok() || static_cast<int64_t>(*size) != env.data_size()) {
      *why = "compressed chunk data: " +
             (size.ok() ? "frame size " + std::to_string(*size) + " differs from data_size " +
                              std::to_string(env.data_size())
                        : size.status().message());
      return false;
    }
    item->plain_bytes = env.data_size();
  } else if (env.data_encoding() != v1::ChunkEnvelope::DATA_PLAIN) {
    *why = "unknown data_encoding " + std::to_string(env.data_encoding());
    return false;
  }
  item->final = env.final();
  item->total = env.total_chunks();
  item->attempt = env.attempt();
  item->ingested_ms = ingested_ms;
  return true;
}

}  // namespace

void AppendBatchEnvelope(std::string* batch, const v1::ChunkEnvelope& e) {
  const size_t size = e.ByteSizeLong();
  batch->push_back(static_cast<char>(0x0a));  // field 1, length-delimited
  for (uint64_t v = size; ; v >>= 7) {
    if (v < 0x80) {
      batch->push_back(static_cast<char>(v));
      break;
    }
    batch->push_back(static_cast<char>((v & 0x7f) | 0x80));
  }
  const size_t at = batch->size();
  batch->resize(at + size);
  e.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(batch->data() + at));
}

size_t ChunkEnvelopeCount(const StreamEntry& e) {
  size_t n = 0;
  for (const auto& [field, value] : e.fields) n += ChunkEnvelopeCount(field, value);
  return n;
}

bool DecodeChunkEntry(const StreamEntry& e, std::vector<ChunkItem>* items, std::string* why, size_t max_plain_bytes) {
  const size_t before = items->size();
  const int64_t ingested_ms = StreamIdMs(e.id);
  size_t n = 0;
  auto fail = [&] {
    if (n > 1) *why = "envelope " + std::to_string(n) + " of the entry: " + *why;
    items->resize(before);
    return false;
  };
  std::vector<std::string_view> batch;
  for (const auto& [field, raw] : e.fields) {
    if (field == "e") {
      ++n;
      if (!DecodeEnvelope(raw, ingested_ms, false, &items->emplace_back(), why, max_plain_bytes)) return fail();
    } else if (field == "b") {
      batch.clear();
      int64_t first_seq = 0;
      uint32_t attempt = 0;
      if (!ScanChunkBatch(raw, &batch, &first_seq, &attempt) || batch.empty() || first_seq < 0 ||
          first_seq > (int64_t{1} << 53)) {
        *why = "undecodable ChunkBatch";
        ++n;
        return fail();
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        ++n;
        ChunkItem& item = items->emplace_back();
        if (!DecodeEnvelope(batch[i], ingested_ms, true, &item, why, max_plain_bytes)) return fail();
        item.seq = first_seq + static_cast<int64_t>(i);
        if (attempt > 0) item.attempt = attempt;  // stamped on the batch, not on each envelope
      }
    }
  }
  if (n == 0) {
    *why = "entry has no \"e\" or \"b\" field (expected a streamfleet.v1.ChunkEnvelope or ChunkBatch)";
    return false;
  }
  return true;
}

StatusOr<std::string> ChunkItemText(const ChunkItem& item) {
  if (!item.compressed) return item.data;
  return ZstdDecompress(item.data, static_cast<size_t>(item.plain_bytes));
}

}  // namespace streamfleet
