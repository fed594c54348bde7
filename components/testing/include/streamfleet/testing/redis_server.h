#pragma once
// Test support: a real redis-server started on a free loopback port, owned by the test.
#include <cstdint>
#include <string>
#include <vector>

#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet::testing {

// Returns a TCP port that was free a moment ago (bound to 0, then released).
int FreePort();

// Starts argv[0] (found on PATH) with these arguments as a child process; returns its pid (the caller
// kills and reaps it).
int SpawnProcess(const std::vector<std::string>& argv);

class RedisServer {
 public:
  // extra_args are appended to the redis-server command line (e.g. "--maxmemory 2mb").
  explicit RedisServer(std::string extra_args = "");
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  void Start();       // on the same port as before, if it ran already
  // Starts without waiting for PING to succeed: for a server that answers LOADING while it reads its RDB.
  void StartLoading();
  void Kill();        // SIGKILL, as a crash
  void Stop();        // SIGTERM and wait
  void Pause();       // SIGSTOP: a stalled server (connections stay open, nothing is answered)
  void Resume();      // SIGCONT
  int port() const { return port_; }
  RedisConfig config() const;
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string extra_;
  std::string dir_;
  int port_ = 0;
  int pid_ = -1;
};

// A counter of INFO stats (e.g. "total_connections_received", "rejected_connections") as `client`'s
// server reports it, or -1 when it cannot be read.
int64_t ServerStat(RedisClient& client, const std::string& field);

// Unique temp path for a SQLite file (removed by the caller or left in /tmp).
std::string TempPath(const std::string& stem);

// PostgreSQL URL from STREAMFLEET_TEST_PG_URL (set by scripts/test.sh), or "" when not configured.
std::string PostgresUrl();

}  // namespace streamfleet::testing
