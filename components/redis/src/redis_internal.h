#pragma once
// Internal to common: what the sync (redis.cc) and async (async_redis.cc) clients share at the hiredis level.
#include <hiredis/hiredis.h>

#include <string>
#include <vector>

#include "streamfleet/base/shutdown.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

// Threads this component owns (the async client's loop, the Sentinel watcher) block SIGPIPE for good
// (BlockSigpipeOnThisThread, streamfleet/base/shutdown.h); threads it does not own get SigpipeGuard around
// each call instead (redis.cc).

// A deep copy: hiredis frees its reply when the (sync) call or the (async) callback returns.
RedisValue OwnReply(const redisReply* r);

// The error a server at maxclients writes to a connection it accepted, before it closes it. Both clients
// treat it as a failed connect: backing off, not reconnecting at once (each new connection is refused too).
bool IsMaxClientsError(const std::string& error_reply);
// The error a replica answers a write with: the server was demoted under a client (a failover). Both clients
// leave the connection and back off; it is not a working reply (it does not reset the backoff).
bool IsReadonlyError(const std::string& error_reply);

// The argv/argvlen arrays hiredis's *CommandArgv functions take, pointing into `argv` (binary-safe: lengths
// are explicit). Valid while `argv` is alive and unchanged.
struct ArgvView {
  explicit ArgvView(const std::vector<std::string>& argv) {
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  int argc() const { return static_cast<int>(ptrs.size()); }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
};

}  // namespace streamfleet
