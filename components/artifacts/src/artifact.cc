#include "streamfleet/artifacts/artifact.h"

#include <nlohmann/json.hpp>

#include "streamfleet/base/codec.h"
#include "streamfleet/base/compression.h"

namespace streamfleet {

namespace {

// Artifacts are written once and read rarely: a level that shrinks text well at a cost paid once per
// generation, off the chunk path.
constexpr int kArtifactZstdLevel = 6;

std::string ArtifactKey(const std::string& sha256) { return "artifacts/" + sha256 + ".zst"; }

}  // namespace

StatusOr<ArtifactRef> StoreArtifact(ObjectStore& store, const std::string& text) {
  ArtifactRef ref;
  ref.sha256 = Sha256Hex(text);
  ref.bytes = static_cast<int64_t>(text.size());
  std::string frame = ZstdCompress(text, kArtifactZstdLevel);
  if (frame.empty()) return Status::Internal("artifact: zstd failed");
  ref.stored_bytes = static_cast<int64_t>(frame.size());
  std::string key = ArtifactKey(ref.sha256);
  ref.url = store.Url(key);
  Status s = store.Put(key, frame);
  if (!s.ok()) return s;
  return ref;
}

StatusOr<std::string> LoadArtifact(ObjectStore& store, const ArtifactRef& ref) {
  auto key = store.KeyOf(ref.url);
  if (!key.ok()) return key.status();
  // The stored frame is never larger than zstd's bound of the text; more than that is not this artifact.
  auto frame = store.Get(*key, static_cast<size_t>(ref.bytes) + static_cast<size_t>(ref.bytes) / 8 + 1024);
  if (!frame.ok()) return frame.status();
  auto text = ZstdDecompress(*frame, static_cast<size_t>(ref.bytes));
  if (!text.ok()) return Status::DataLoss("artifact " + ref.url + ": " + text.status().message());
  if (Sha256Hex(*text) != ref.sha256) {
    return Status::DataLoss("artifact " + ref.url + ": content does not match its SHA-256 " + ref.sha256);
  }
  return text;
}

std::string ArtifactJson(const ArtifactRef& ref) {
  return nlohmann::json{{"url", ref.url}, {"sha256", ref.sha256}, {"bytes", ref.bytes}, {"stored_bytes", ref.stored_bytes}}
      .dump();
}

std::optional<ArtifactRef> ArtifactOfMetadata(const std::string& metadata) {
  auto j = nlohmann::json::parse(metadata, nullptr, false);
  if (!j.is_object() || !j.contains("artifact") || !j["artifact"].is_object()) return std::nullopt;
  const auto& a = j["artifact"];
  if (!a.contains("url") || !a["url"].is_string() || !a.contains("sha256") || !a["sha256"].is_string() ||
      !a.contains("bytes") || !a["bytes"].is_number_integer()) {
    return std::nullopt;
  }
  ArtifactRef ref;
  ref.url = a["url"].get<std::string>();
  ref.sha256 = a["sha256"].get<std::string>();
  ref.bytes = a["bytes"].get<int64_t>();
  ref.stored_bytes = a.value("stored_bytes", int64_t{0});
  if (ref.bytes < 0) return std::nullopt;
  return ref;
}

Status ResolveCompacted(ObjectStore* store, GenerationRow& row) {
  if (row.compacted) return Status::Ok();
  auto ref = ArtifactOfMetadata(row.metadata);
  if (!ref) return Status::Ok();  // no text at all (never compacted)
  if (store == nullptr) {
    return Status::FailedPrecondition("generation " + std::to_string(row.id) + " is in the object store (" +
                                      ref->url + ") but ARTIFACT_STORE is not set");
  }
  auto text = LoadArtifact(*store, *ref);
  if (!text.ok()) return text.status();
  row.compacted = Base64Encode(*text);
  return Status::Ok();
}

}  // namespace streamfleet
