#include <curl/curl.h>

#include <fstream>
#include <sstream>

#include "streamfleet/artifacts/object_store.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/base/text.h"

namespace streamfleet {

namespace {

struct Credentials {
  std::string key_id, secret, token;
};

std::string TrimBlanks(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// The [default] profile of an AWS shared credentials file (aws_access_key_id, aws_secret_access_key,
// aws_session_token); other profiles are skipped.
Credentials ReadCredentialsFile(const std::string& path) {
  Credentials c;
  std::ifstream in(path);
  std::string line;
  bool in_default = true;  // keys before any [section] count as the default profile
  while (std::getline(in, line)) {
    line = TrimBlanks(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      in_default = line == "[default]";
      continue;
    }
    auto eq = line.find('=');
    if (!in_default || eq == std::string::npos) continue;
    std::string k = TrimBlanks(line.substr(0, eq)), v = TrimBlanks(line.substr(eq + 1));
    if (k == "aws_access_key_id") c.key_id = v;
    if (k == "aws_secret_access_key") c.secret = v;
    if (k == "aws_session_token") c.token = v;
  }
  return c;
}

struct Body {
  CURL* handle = nullptr;
  std::string data;
  size_t max = 0;
  bool too_large = false;
};

size_t Collect(char* p, size_t size, size_t n, void* user) {
  auto* b = static_cast<Body*>(user);
  long status = 0;
  curl_easy_getinfo(b->handle, CURLINFO_RESPONSE_CODE, &status);
  // The caller's limit is for objects; an error answer (S3's XML) is read up to 64 KiB for its code.
  size_t max = status >= 200 && status < 300 ? b->max : size_t{64} << 10;
  if (b->data.size() + size * n > max) {
    b->too_large = true;
    return 0;  // aborts the transfer
  }
  b->data.append(p, size * n);
  return size * n;
}

// The S3 error code of an error answer (<Code>NoSuchKey</Code>), for messages.
std::string ErrorCode(const std::string& xml) {
  auto a = xml.find("<Code>"), b = xml.find("</Code>");
  if (a == std::string::npos || b == std::string::npos || b < a) return "";
  return xml.substr(a + 6, b - a - 6);
}

class S3ObjectStore : public ObjectStore {
 public:
  explicit S3ObjectStore(const Config& c)
      : bucket_(c.artifact_bucket), prefix_(c.artifact_prefix), region_(c.artifact_store_region),
        endpoint_(c.artifact_store_endpoint.empty() ? "https://s3." + c.artifact_store_region + ".amazonaws.com"
                                                    : c.artifact_store_endpoint),
        credentials_file_(c.artifact_store_credentials_file), timeout_ms_(c.artifact_store_timeout_ms),
        env_{c.aws_access_key_id, c.aws_secret_access_key, c.aws_session_token} {
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
    curl_global_init(CURL_GLOBAL_DEFAULT);  // reference-counted; the webhook client calls it too
  }

  Status Put(const std::string& key, std::string_view body) override {
    Body sink;
    sink.max = 1 << 20;
    return Request("PUT", key, body, &sink).status();
  }

  StatusOr<std::string> Get(const std::string& key, size_t max_bytes) override {
    Body sink;
    sink.max = max_bytes;
    auto r = Request("GET", key, {}, &sink);
    if (!r.ok()) return r.status();
    return std::move(sink.data);
  }

  std::string Url(const std::string& key) const override { return "s3://" + bucket_ + "/" + FullKey(key); }

  StatusOr<std::string> KeyOf(const std::string& url) const override {
    std::string head = Url("");
    if (url.compare(0, head.size(), head) != 0 || url.size() == head.size()) {
      return Status::InvalidArgument("artifact " + url + " is not in this store (" + head + ")");
    }
    return url.substr(head.size());
  }

 private:
  std::string FullKey(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "/" + key; }

  Credentials CurrentCredentials() const {
    if (!env_.key_id.empty()) return env_;
    if (!credentials_file_.empty()) return ReadCredentialsFile(credentials_file_);
    return {};
  }

  // The HTTP status on 2xx; errors mapped to Status codes.
  StatusOr<long> Request(const char* method, const std::string& key, std::string_view body, Body* sink) {
    Credentials cred = CurrentCredentials();
    if (cred.key_id.empty() || cred.secret.empty()) {
      return Status::FailedPrecondition(
          "object store: no credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ARTIFACT_STORE_CREDENTIALS_FILE)");
    }
    std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
    if (!h) return Status::Internal("curl_easy_init failed");
    std::string url = endpoint_ + "/" + UrlEncodePath(bucket_ + "/" + FullKey(key));
    std::string sigv4 = "aws:amz:" + region_ + ":s3";
    CURL* c = h.get();
    sink->handle = c;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<int64_t>(timeout_ms_, 10000)));
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERNAME, cred.key_id.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, cred.secret.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    // S3 wants the payload's SHA-256 in a signed header (libcurl signs every x-amz-* header it is given).
    struct curl_slist* headers = nullptr;
    std::string content_sha = "x-amz-content-sha256: " + Sha256Hex(body);
    headers = curl_slist_append(headers, content_sha.c_str());
    std::string token = "x-amz-security-token: " + cred.token;
    if (!cred.token.empty()) headers = curl_slist_append(headers, token.c_str());
    if (std::string(method) == "PUT") {
      headers = curl_slist_append(headers, "Content-Type: application/zstd");
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    std::string what = std::string(method) + " " + Url(key);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
      // Over the object limit only when the object itself was coming: an error answer cut at 64 KiB (a proxy's
      // HTML page with a 502) is that error, not a too large object.
      if (sink->too_large && status >= 200 && status < 300) {
        return Status::ResourceExhausted(what + ": larger than " + std::to_string(sink->max) + " bytes");
      }
      if (!sink->too_large || status == 0) return Status::Unavailable(what + ": " + curl_easy_strerror(rc));
    }
    if (status >= 200 && status < 300) return status;
    std::string detail = what + ": HTTP " + std::to_string(status) + " " + ErrorCode(sink->data);
    // Answers a retry may get past, whatever their status (AWS sends RequestTimeTooSkewed with a 403, some
    // stores ExpiredToken with a 403): the request took too long on the wire, the clock was off, or temporary
    // credentials ran out (the credentials file is read again on the next request).
    const std::string code = ErrorCode(sink->data);
    if (code == "RequestTimeout" || code == "ExpiredToken" || code == "RequestTimeTooSkewed") {
      return Status::Unavailable(detail);
    }
    if (status == 404) return Status::NotFound(detail);
    if (status == 401 || status == 403) return Status::PermissionDenied(detail);
    if (status >= 500 || status == 429) return Status::Unavailable(detail);
    return Status::Internal(detail);
  }

  std::string bucket_, prefix_, region_, endpoint_, credentials_file_;
  int64_t timeout_ms_;
  Credentials env_;
};

}  // namespace

std::unique_ptr<ObjectStore> OpenObjectStore(const Config& config) {
  if (config.artifact_bucket.empty()) return nullptr;
  return std::make_unique<S3ObjectStore>(config);
}

}  // namespace streamfleet
