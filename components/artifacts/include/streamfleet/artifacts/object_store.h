#pragma once
// Object storage for what does not belong in a SQL row: an S3-compatible bucket (AWS S3, MinIO, GCS's XML API
// with HMAC keys), spoken to over HTTPS with libcurl, requests signed by libcurl's own AWS Signature V4
// (CURLOPT_AWS_SIGV4). Path-style URLs ({endpoint}/{bucket}/{key}), which every S3-compatible server takes.
// Thread-safe: each call uses its own curl handle.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "streamfleet/base/config.h"
#include "streamfleet/base/status.h"

namespace streamfleet {

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Stores `body` under `key` (relative to the store's prefix). S3 makes an object visible only once its PUT
  // completed: a cut upload leaves nothing behind under the key. kUnavailable when the store cannot be reached
  // or answers 5xx (retry), kPermissionDenied for refused credentials.
  virtual Status Put(const std::string& key, std::string_view body) = 0;
  // kNotFound when there is no such object; kResourceExhausted when it is larger than max_bytes.
  virtual StatusOr<std::string> Get(const std::string& key, size_t max_bytes) = 0;
  // "s3://bucket/prefix/key": how rows and logs name an object.
  virtual std::string Url(const std::string& key) const = 0;
  // The key of a Url of this store; kInvalidArgument for another bucket or prefix.
  virtual StatusOr<std::string> KeyOf(const std::string& url) const = 0;
};

// The store ARTIFACT_STORE names (nullptr when it is empty). Credentials: AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), else ARTIFACT_STORE_CREDENTIALS_FILE (the AWS shared
// credentials format, [default] profile), read at every request so a rotated Secret is picked up.
std::unique_ptr<ObjectStore> OpenObjectStore(const Config& config);

}  // namespace streamfleet
