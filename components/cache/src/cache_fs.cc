#include "cache_fs.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "streamfleet/base/codec.h"
#include "streamfleet/base/json_input.h"

namespace streamfleet {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSuffix = ".json";

// Whether a directory entry's name is an entry's file ({stem}.json), not a temp file or anything else.
bool IsEntryFile(const std::string& file) {
  const size_t n = std::strlen(kSuffix);
  return file.size() > n && file.compare(file.size() - n, n, kSuffix) == 0;
}

// Unique per process and call, so concurrent writers of one key never share a temp file.
std::string TempSuffix() {
  static std::atomic<uint64_t> n{0};
  return ".tmp." + std::to_string(getpid()) + "." + std::to_string(n.fetch_add(1));
}

Status WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = ::write(fd, data.data() + off, data.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable(std::string("cache file write: ") + std::strerror(errno));
    }
    off += static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

std::string FsCacheTier::PathOf(const std::string& key) const {
  // key = {prefix}:{stem}; the stem ([A-Za-z0-9._-]+_hash8) is a safe file name.
  return dir_ + "/" + key.substr(prefix_.size() + 1) + kSuffix;
}

namespace {
// A marker as written: a token string. Files of builds before tokens hold counters (numbers); they get a
// marker no token equals, so they are recomputed rather than trusted (counters restarted from 0 when Redis
// lost them, and matched files they should not).
std::string Marker(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  return "counter:" + v.dump();
}
}  // namespace

StatusOr<FsCacheEntry> FsCacheTier::Read(const std::string& key) const {
  std::string path = PathOf(key);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("no cache file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto corrupt = [&](const std::string& why) -> Status {
    Remove(key);
    return Status::DataLoss("cache file " + path + ": " + why);
  };
  auto parsed = ParseJsonInput(text);
  if (!parsed.ok() || !parsed->is_object()) return corrupt("not a JSON object (truncated?)");
  const nlohmann::json& j = *parsed;
  FsCacheEntry e;
  try {
    e.key = j.at("key").get<std::string>();
    if (j.contains("value")) {
      e.value = j.at("value").get<std::string>();
    } else {
      auto v = Base64Decode(j.at("value_b64").get<std::string>());
      if (!v) return corrupt("bad value_b64");
      e.value = std::move(*v);
    }
    // Integers only: get<int64_t> of a float (1e300 in a hand-edited file) is an out-of-range conversion.
    if (!j.at("written_at_ms").is_number_integer() || !j.at("expires_at_ms").is_number_integer()) {
      return corrupt("times are not integers");
    }
    e.written_at_ms = j.at("written_at_ms").get<int64_t>();
    e.expires_at_ms = j.at("expires_at_ms").get<int64_t>();
    e.ver = Marker(j.at("ver"));
    e.epoch = Marker(j.at("epoch"));
    if (j.at("length").get<int64_t>() != static_cast<int64_t>(e.value.size())) return corrupt("length mismatch");
    if (j.at("sha256").get<std::string>() != Sha256Hex(e.value)) return corrupt("checksum mismatch");
  } catch (const nlohmann::json::exception& ex) {
    return corrupt(std::string("missing or mistyped field: ") + ex.what());
  }
  if (e.key != key) return corrupt("holds key " + e.key);
  return e;
}

Status FsCacheTier::Write(const FsCacheEntry& e) const {
  nlohmann::json j = {{"key", e.key},
                      {"length", e.value.size()},
                      {"sha256", Sha256Hex(e.value)},
                      {"written_at_ms", e.written_at_ms},
                      {"expires_at_ms", e.expires_at_ms},
                      {"ver", e.ver},
                      {"epoch", e.epoch}};
  std::string text;
  try {
    j["value"] = e.value;
    text = j.dump();  // throws on invalid UTF-8
  } catch (const nlohmann::json::exception&) {
    j.erase("value");
    j["value_b64"] = Base64Encode(e.value);
    text = j.dump();
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status::Unavailable("cache dir " + dir_ + ": " + ec.message());
  std::string path = PathOf(e.key);
  std::string tmp = path + TempSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Unavailable("cache file " + tmp + ": " + std::strerror(errno));
  Status s = WriteAll(fd, text);
  if (::close(fd) != 0 && s.ok()) s = Status::Unavailable("cache file close: " + std::string(std::strerror(errno)));
  if (s.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    s = Status::Unavailable("cache file rename: " + std::string(std::strerror(errno)));
  }
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

void FsCacheTier::Remove(const std::string& key) const { ::unlink(PathOf(key).c_str()); }

int64_t FsCacheTier::RemoveMatching(const std::string& pattern) const {
  int64_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string file = it->path().filename().string();
    if (!IsEntryFile(file)) continue;
    std::string key = prefix_ + ":" + file.substr(0, file.size() - 5);
    if (fnmatch(pattern.c_str(), key.c_str(), 0) == 0 && ::unlink(it->path().c_str()) == 0) ++n;
  }
  return n;
}

int64_t FsCacheTier::Sweep(int64_t max_age_ms) const {
  constexpr int64_t kTempMaxAgeMs = 3600 * 1000;  // no write takes this long: its writer is gone
  const auto now = fs::file_time_type::clock::now();
  int64_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const auto written = it->last_write_time(fec);
    if (fec) continue;
    const int64_t age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - written).count();
    const std::string file = it->path().filename().string();
    const bool temp = file.find(".tmp.") != std::string::npos;
    const bool entry = IsEntryFile(file);  // temp files end ".json.tmp.<pid>.<n>"
    if (((temp && age_ms > kTempMaxAgeMs) || (entry && age_ms > max_age_ms)) && ::unlink(it->path().c_str()) == 0) {
      ++n;
    }
  }
  return n;
}

void FsCacheTier::Usage(int64_t* files, int64_t* bytes) const {
  *files = 0;
  *bytes = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    ++*files;
    *bytes += static_cast<int64_t>(it->file_size(fec));
  }
}

}  // namespace streamfleet
