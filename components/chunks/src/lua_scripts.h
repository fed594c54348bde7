#pragma once
// The chunk path's Lua scripts, from components/chunks/lua/*.lua (embedded at build time by embed_lua.cmake).
// chunk_scripts.cc wraps each in a LuaScript and documents its KEYS and ARGV.

namespace streamfleet::lua {

extern const char kApplyChunks[];
extern const char kSweepDeadlines[];
extern const char kMarkCompacted[];
extern const char kIngestAppend[];
extern const char kResetGeneration[];
extern const char kMarkFailed[];
extern const char kPublishEvent[];

}  // namespace streamfleet::lua
