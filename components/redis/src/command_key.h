#pragma once
// Internal to common: which key of a command decides its cluster slot.
#include <optional>
#include <string>
#include <vector>

namespace streamfleet {

// The first key of `argv` by command (EVAL/EVALSHA/FCALL: after numkeys; XREAD/XREADGROUP: the first stream
// after STREAMS; XINFO/XGROUP/OBJECT/MEMORY USAGE: argv[2]; most others argv[1]), or nullopt for a keyless
// command (PING, INFO, SCRIPT, SCAN, DBSIZE, ...), which any master can serve. Multi-key commands are routed
// by their first key: the key schema puts the keys of one command in one slot, and a command that spans
// slots gets Redis's CROSSSLOT error back, never a silent partial effect.
std::optional<std::string> CommandKey(const std::vector<std::string>& argv);

}  // namespace streamfleet
