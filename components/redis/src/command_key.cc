#include "command_key.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace streamfleet {

namespace {

std::string Upper(const std::string& s) {
  std::string u = s;
  std::transform(u.begin(), u.end(), u.begin(), [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  return u;
}

bool IsKeyless(const std::string& cmd) {
  static const std::set<std::string> keyless = {
      "PING",   "ECHO",    "INFO",     "SCRIPT", "DBSIZE",  "SCAN",     "CONFIG",  "CLIENT",   "ACL",
      "AUTH",   "SELECT",  "TIME",     "FLUSHALL", "FLUSHDB", "CLUSTER", "COMMAND", "RANDOMKEY", "KEYS",
      "LASTSAVE", "SAVE",  "BGSAVE",   "BGREWRITEAOF", "SLOWLOG", "LATENCY", "WAIT", "READONLY", "READWRITE",
      "ASKING", "FUNCTION", "HELLO",   "ROLE",   "SHUTDOWN", "MONITOR", "PUBLISH", "PUBSUB", "SWAPDB",
      "LOLWUT", "DEBUG",   "MULTI",    "EXEC",   "DISCARD", "UNWATCH", "QUIT",    "RESET"};
  return keyless.count(cmd) > 0;
}

}  // namespace

std::optional<std::string> CommandKey(const std::vector<std::string>& argv) {
  if (argv.empty()) return std::nullopt;
  std::string cmd = Upper(argv[0]);
  if (cmd == "EVAL" || cmd == "EVALSHA" || cmd == "EVAL_RO" || cmd == "EVALSHA_RO" || cmd == "FCALL" ||
      cmd == "FCALL_RO") {
    // Keyless scripts (numkeys 0) may run anywhere.
    if (argv.size() < 4 || argv[2] == "0") return std::nullopt;
    return argv[3];
  }
  if (cmd == "XREAD" || cmd == "XREADGROUP") {
    // XREADGROUP GROUP <group> <consumer>: names that may be "streams" themselves (CONSUMER_NAME=streams
    // routed by the word after it, and every read was redirected).
    size_t from = cmd == "XREADGROUP" && argv.size() > 4 && Upper(argv[1]) == "GROUP" ? 4 : 1;
    for (size_t i = from; i + 1 < argv.size(); ++i) {
      if (Upper(argv[i]) == "STREAMS") return argv[i + 1];
    }
    return std::nullopt;
  }
  if (cmd == "XINFO" || cmd == "XGROUP" || cmd == "OBJECT") {
    if (argv.size() < 3) return std::nullopt;  // "XINFO HELP" and the like
    return argv[2];
  }
  if (cmd == "MEMORY") {
    if (argv.size() >= 3 && Upper(argv[1]) == "USAGE") return argv[2];
    return std::nullopt;  // MEMORY STATS, DOCTOR, ...
  }
  if (IsKeyless(cmd) || argv.size() < 2) return std::nullopt;
  return argv[1];
}

}  // namespace streamfleet
