#pragma once
// Compacted artifacts in the object store (docs/storage.md, "Object storage"): a generation's assembled text,
// zstd-compressed and content-addressed by the SHA-256 of the text, under {prefix}/artifacts/{sha256}.zst.
// The row then keeps metadata.artifact = {url, sha256, bytes, stored_bytes} and compacted = NULL; readers put
// the base64 of the text back in its place (ResolveCompacted), so `compacted` consumers see the same bytes.
#include <cstdint>
#include <optional>
#include <string>

#include "streamfleet/artifacts/object_store.h"
#include "streamfleet/sql/sql_store.h"

namespace streamfleet {

struct ArtifactRef {
  std::string url;     // s3://bucket/prefix/artifacts/<sha256>.zst
  std::string sha256;  // of the text (hex)
  int64_t bytes = 0;   // the text's size
  int64_t stored_bytes = 0;
};

// Writes the text (idempotent: the same text is the same object). The reference is returned only after the
// store acknowledged the whole object.
StatusOr<ArtifactRef> StoreArtifact(ObjectStore& store, const std::string& text);

// The text, checked against its digest: kDataLoss when the object's bytes are not the text that was stored.
StatusOr<std::string> LoadArtifact(ObjectStore& store, const ArtifactRef& ref);

std::string ArtifactJson(const ArtifactRef& ref);  // the metadata.artifact object, serialized
// metadata.artifact of a row's metadata JSON, when it holds one.
std::optional<ArtifactRef> ArtifactOfMetadata(const std::string& metadata);

// Fills row.compacted (base64) from the artifact its metadata names, when compacted is NULL. Without a store
// (ARTIFACT_STORE unset) such a row is kFailedPrecondition; a store error or digest mismatch is returned as is.
Status ResolveCompacted(ObjectStore* store, GenerationRow& row);

}  // namespace streamfleet
