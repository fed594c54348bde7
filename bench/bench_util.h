#pragma once
// Small helpers shared by the benchmark drivers: configuration from a map, /proc readings, quantiles,
// and the "key=value" result lines bench/run.sh turns into the table.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <spawn.h>
#include <strings.h>
#include <unistd.h>

#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet::bench {

using Clk = std::chrono::steady_clock;

inline double Seconds(Clk::duration d) { return std::chrono::duration<double>(d).count(); }

// Takes one whole "HTTP/1.1 NNN" answer (head + Content-Length body) off the front of `in`; true with *status
// once one has arrived, false while it is incomplete (the drivers' keep-alive clients read into `in`).
inline bool TakeResponse(std::string& in, int* status) {
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  size_t length = 0;
  for (size_t p = 0; p < head_end;) {
    size_t eol = in.find("\r\n", p);
    if (eol - p > 15 && strncasecmp(in.data() + p, "content-length:", 15) == 0) {
      length = std::strtoul(in.data() + p + 15, nullptr, 10);
    }
    p = eol + 2;
  }
  if (in.size() < head_end + 4 + length) return false;
  *status = std::atoi(in.data() + 9);
  in.erase(0, head_end + 4 + length);
  return true;
}

// Command-line flags of the form --name=value (or --name value).
class Flags {
 public:
  Flags(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) continue;
      a = a.substr(2);
      auto eq = a.find('=');
      if (eq != std::string::npos) {
        v_[a.substr(0, eq)] = a.substr(eq + 1);
      } else if (i + 1 < argc) {
        v_[a] = argv[++i];
      }
    }
  }
  std::string Str(const std::string& k, const std::string& def) const {
    auto it = v_.find(k);
    return it == v_.end() ? def : it->second;
  }
  long long Int(const std::string& k, long long def) const {
    auto it = v_.find(k);
    return it == v_.end() ? def : std::atoll(it->second.c_str());
  }
  double Double(const std::string& k, double def) const {
    auto it = v_.find(k);
    return it == v_.end() ? def : std::atof(it->second.c_str());
  }

 private:
  std::map<std::string, std::string> v_;
};

inline Config MakeConfig(const std::map<std::string, std::string>& env) {
  auto c = LoadConfig(
      [env](const std::string& k) -> std::optional<std::string> {
        auto it = env.find(k);
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      "127.0.0.1:0");
  if (!c.ok()) {
    std::cerr << "bench: configuration error: " << c.status().ToString() << "\n";
    std::exit(2);
  }
  return *c;
}

// One result line for bench/run.sh.
inline void Emit(const std::string& key, double value) {
  std::printf("%s=%.6g\n", key.c_str(), value);
  std::fflush(stdout);
}

// A field of /proc/<pid>/status in kB ("VmRSS", "VmHWM"); -1 if unreadable. pid 0 = self.
inline long long ProcStatusKb(int pid, const std::string& field) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/status") : "/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atoll(line.c_str() + field.size() + 1);
  }
  return -1;
}

// utime + stime of a process in seconds; -1 if unreadable.
inline double ProcCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto p = s.rfind(')');
  if (p == std::string::npos) return -1;
  std::istringstream rest(s.substr(p + 2));
  std::string tok;
  std::vector<std::string> f;
  while (rest >> tok) f.push_back(tok);
  // After "(comm) ": field 3 (state) is f[0]; utime is field 14 -> f[11], stime field 15 -> f[12].
  if (f.size() < 13) return -1;
  return (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Nearest-rank quantile of unsorted samples (sorted in place).
inline double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  if (idx > 0) --idx;
  return v[std::min(idx, v.size() - 1)];
}

// A field of INFO (e.g. "used_memory", "used_cpu_user"); NaN when absent.
inline double RedisInfoField(RedisClient& r, const std::string& section, const std::string& field) {
  auto info = r.Command({"INFO", section});
  if (!info.ok()) return std::nan("");
  std::istringstream in(info->str);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atof(line.c_str() + field.size() + 1);
  }
  return std::nan("");
}

inline double RedisCpuSeconds(RedisClient& r) {
  return RedisInfoField(r, "cpu", "used_cpu_user") + RedisInfoField(r, "cpu", "used_cpu_sys");
}

inline std::unique_ptr<RedisClient> ConnectOrDie(int port) {
  RedisConfig rc;
  rc.port = port;
  rc.command_timeout_ms = 60000;
  auto c = RedisClient::Connect(rc);
  if (!c.ok()) {
    std::cerr << "bench: cannot connect to redis on port " << port << ": " << c.status().ToString() << "\n";
    std::exit(2);
  }
  return std::move(*c);
}

inline void MustOk(const Status& s, const char* what) {
  if (!s.ok()) {
    std::cerr << "bench: " << what << ": " << s.ToString() << "\n";
    std::exit(1);
  }
}

// The raw ceilings' consumer step: one XREADGROUP COUNT 100 of `stream` as consumer "c" of group "g"
// (blocking up to block_ms when > 0), then one XACK of what it returned. Returns how many entries that was.
inline int64_t ReadAndAckBatch(RedisClient& r, const std::string& stream, int block_ms = 0) {
  std::vector<std::string> read = {"XREADGROUP", "GROUP", "g", "c", "COUNT", "100"};
  if (block_ms > 0) read.insert(read.end(), {"BLOCK", std::to_string(block_ms)});
  read.insert(read.end(), {"STREAMS", stream, ">"});
  auto reply = r.Command(read, block_ms);
  MustOk(reply.status(), "XREADGROUP");
  auto entries = ParseStreamReply(*reply);
  if (entries.empty()) return 0;
  std::vector<std::string> ack = {"XACK", stream, "g"};
  for (const auto& e : entries) ack.push_back(e.id);
  MustOk(r.Command(ack).status(), "XACK");
  return static_cast<int64_t>(entries.size());
}

// Starts a service binary (no arguments) with exactly `env` ("NAME=value" each); exits the benchmark if it
// cannot. Callers that want the parent's environment too pass it in `env`.
inline pid_t SpawnBinary(const std::string& bin, std::vector<std::string> env) {
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string path = bin;
  char* argv[] = {path.data(), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, path.c_str(), nullptr, nullptr, argv, envp.data()) != 0) {
    std::cerr << "bench: cannot start " << bin << "\n";
    std::exit(1);
  }
  return pid;
}

}  // namespace streamfleet::bench
