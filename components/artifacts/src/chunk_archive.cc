#include "streamfleet/artifacts/chunk_archive.h"

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>

#include "streamfleet/base/codec.h"
#include "streamfleet/base/compression.h"

namespace streamfleet {

namespace {

// Written once per generation by a periodic task, read rarely: a level that shrinks well (base64 of text
// compresses to about the text's own compressed size).
constexpr int kArchiveZstdLevel = 6;
// A line's fields besides the data: ids, seq and the JSON around them.
constexpr size_t kLineOverhead = 160;

StatusOr<ChunkRow> ParseLine(std::string_view line, int64_t generation_id) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  auto integer = [&](const char* k) { return j.contains(k) && j[k].is_number_integer(); };
  if (!j.is_object() || !integer("generation_id") || !integer("organization_id") || !integer("seq") ||
      !j.contains("data_base64") || !j["data_base64"].is_string() ||
      (j.contains("scenario_id") && !j["scenario_id"].is_null() && !integer("scenario_id"))) {
    return Status::DataLoss("not an archive line");
  }
  ChunkRow r;
  r.generation_id = j["generation_id"].get<int64_t>();
  r.organization_id = j["organization_id"].get<int64_t>();
  r.scenario_id = j.contains("scenario_id") && !j["scenario_id"].is_null() ? j["scenario_id"].get<int64_t>() : 0;
  r.seq = j["seq"].get<int64_t>();
  if (r.generation_id != generation_id || r.seq < 0) return Status::DataLoss("a line of another generation");
  auto data = Base64Decode(j["data_base64"].get<std::string>());
  if (!data) return Status::DataLoss("data_base64 is not base64");
  r.data = std::move(*data);
  return r;
}

std::string Line(const ChunkRow& r) {
  nlohmann::json j{{"generation_id", r.generation_id},
                   {"organization_id", r.organization_id},
                   {"scenario_id", r.scenario_id > 0 ? nlohmann::json(r.scenario_id) : nlohmann::json(nullptr)},
                   {"seq", r.seq},
                   {"data_base64", Base64Encode(r.data)}};
  return j.dump() + "\n";
}

}  // namespace

std::string ChunkArchiveKey(int64_t generation_id) {
  return "chunk-archive/" + std::to_string(generation_id) + ".ndjson.zst";
}

size_t ChunkArchiveMaxBytes(const Config& config) {
  return static_cast<size_t>(config.max_generation_bytes) / 3 * 4 + 4 +
         static_cast<size_t>(config.max_chunks_per_generation) * kLineOverhead;
}

StatusOr<std::vector<ChunkRow>> LoadChunkArchive(ObjectStore& store, int64_t generation_id, size_t max_bytes) {
  const std::string key = ChunkArchiveKey(generation_id);
  // A frame is never much larger than its content (zstd's bound); more than that is not an archive.
  auto frame = store.Get(key, max_bytes + max_bytes / 8 + 1024);
  if (!frame.ok() && frame.status().code() == StatusCode::kResourceExhausted) {
    return Status::ResourceExhausted("chunk archive " + store.Url(key) + " is larger than this configuration's " +
                                     "limits allow (INGEST_MAX_GENERATION_BYTES, GENERATION_MAX_CHUNKS)");
  }
  if (!frame.ok()) return frame.status();
  // A valid frame recording more than the limit is an archive of larger limits, not a corrupt one.
  if (auto size = ZstdFrameContentSize(*frame, SIZE_MAX); size.ok() && *size > max_bytes) {
    return Status::ResourceExhausted("chunk archive " + store.Url(key) + " holds " + std::to_string(*size) +
                                     " bytes, more than this configuration's limits allow (" +
                                     std::to_string(max_bytes) + "; INGEST_MAX_GENERATION_BYTES, GENERATION_MAX_CHUNKS)");
  }
  auto text = ZstdDecompress(*frame, max_bytes);
  if (!text.ok()) return Status::DataLoss("chunk archive " + store.Url(key) + ": " + text.status().message());
  std::map<int64_t, ChunkRow> by_seq;
  size_t start = 0;
  int64_t line_no = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    ++line_no;
    auto row = ParseLine(std::string_view(*text).substr(start, end - start), generation_id);
    if (!row.ok()) {
      return Status::DataLoss("chunk archive " + store.Url(key) + " line " + std::to_string(line_no) + ": " +
                              row.status().message());
    }
    by_seq.emplace(row->seq, std::move(*row));
    start = end + 1;
  }
  std::vector<ChunkRow> out;
  out.reserve(by_seq.size());
  for (auto& [seq, r] : by_seq) out.push_back(std::move(r));
  return out;
}

StatusOr<int64_t> ArchiveChunks(ObjectStore& store, const std::vector<ChunkRow>& rows, size_t max_bytes) {
  if (rows.empty()) return int64_t{0};
  const int64_t gen = rows.front().generation_id;
  std::map<int64_t, ChunkRow> by_seq;
  auto existing = LoadChunkArchive(store, gen, max_bytes);
  if (existing.ok()) {
    for (auto& r : *existing) by_seq.emplace(r.seq, std::move(r));
  } else if (existing.status().code() != StatusCode::kNotFound) {
    // A store outage, or an object that is not an archive: never overwrite what cannot be read.
    return existing.status();
  }
  for (const ChunkRow& r : rows) {
    if (r.generation_id != gen) return Status::InvalidArgument("ArchiveChunks: rows of more than one generation");
    by_seq.emplace(r.seq, r);
  }
  std::string text;
  for (const auto& [seq, r] : by_seq) text += Line(r);
  if (text.size() > max_bytes) {
    return Status::ResourceExhausted("chunk archive of generation " + std::to_string(gen) + " would be " +
                                     std::to_string(text.size()) + " bytes, over the limit of " +
                                     std::to_string(max_bytes));
  }
  std::string frame = ZstdCompress(text, kArchiveZstdLevel);
  if (frame.empty()) return Status::Internal("chunk archive of generation " + std::to_string(gen) + ": zstd failed");
  // S3 makes the object visible only once the whole PUT completed: a cut upload leaves the previous archive.
  SF_RETURN_IF_ERROR(store.Put(ChunkArchiveKey(gen), frame));
  return static_cast<int64_t>(by_seq.size());
}

}  // namespace streamfleet
