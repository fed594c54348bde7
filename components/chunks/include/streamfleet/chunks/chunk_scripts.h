#pragma once
// The Lua scripts of the chunk path. Each runs atomically in Redis, which is what makes the effects
// idempotent under at-least-once delivery. Argument layouts are documented beside each script source in
// chunk_scripts.cc and wrapped by ChunkBuffer (components/chunks/include/streamfleet/chunks/chunk_buffer.h); nothing else builds their argv.
#include "streamfleet/redis/redis.h"

namespace streamfleet::scripts {

// Apply a batch of chunk/finish items of ONE generation: dedupe by seq (bitmap), append, update meta,
// set TTLs on creation, re-open a compacted generation, and either queue finalization (all seqs
// 0..total-1 present) or push the idle deadline.
const LuaScript& ApplyChunks();
// Turn due deadlines into finalize-stream entries, atomically and once.
const LuaScript& SweepDeadlines();
// After the row commit: mark compacted unless chunks arrived meanwhile; optionally shorten the TTLs.
const LuaScript& MarkCompacted();
// The finalizer's generation.compacted event, an XADD that runs when Redis is full (as MarkCompacted).
const LuaScript& PublishEvent();
// A producer that gave up before its attempt's first chunk: state "failed" unless one has appended since.
const LuaScript& MarkFailed();
// Ingest: bind scenario, count bytes against the per-generation limit, reserve seqs for the envelopes
// that have none, XADD the envelopes. Returns [last entry id, first reserved seq].
const LuaScript& IngestAppend();
// A producer restarting a generation from scratch: if every seq handed out was applied, delete the
// buffer, meta, seen bitmap and control hash (keeping its attempt and where the finalize stream stood) and
// drop the idle deadline. Returns 1 when reset, 0 when chunks are still on their way to the compactor.
const LuaScript& ResetGeneration();

}  // namespace streamfleet::scripts
