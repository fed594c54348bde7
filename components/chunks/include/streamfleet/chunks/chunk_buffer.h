#pragma once
// Redis side of the compactor: applying chunks to generation buffers, snapshots for finalization, and
// the deadline / finalize-queue transitions. Every write goes through a script in chunk_scripts.h, so
// each is atomic and idempotent. Stateless apart from configuration; share one per process.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "streamfleet/base/clock.h"
#include "streamfleet/base/config.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/chunks/chunk_entry.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

struct ApplyResult {
  std::vector<bool> applied;   // per input item: changed the buffer (false = duplicate or superseded)
  // per input item: of an attempt older than the generation's current one (ChunkItem::attempt), not applied
  std::vector<bool> superseded;
  int64_t finalize_queued = 0; // generations whose last missing chunk arrived in this batch
  int64_t max_llen = 0;
  std::vector<std::pair<GenerationId, int64_t>> llens;  // per generation touched
};

struct BufferSnapshot {
  bool exists = false;
  std::vector<std::string> elements;            // "seq:data"
  std::map<std::string, std::string> meta;      // the :meta hash
  std::map<std::string, std::string> control;   // the :ctl hash
  int64_t MetaInt(const std::string& k) const;
};

class ChunkBuffer {
 public:
  ChunkBuffer(const Config& config, Clock& clock)
      : keys_(KeySchema::FromConfig(config)), config_(config), clock_(clock) {}

  const KeySchema& keys() const { return keys_; }

  // Checks an item against the limits before it reaches Redis. kInvalidArgument = dead-letter it.
  Status Validate(const ChunkItem& item) const;

  // Applies validated items in one round trip (one script call per generation, in arrival order).
  StatusOr<ApplyResult> Apply(RedisCommands& redis, const std::vector<ChunkItem>& items);

  StatusOr<BufferSnapshot> Snapshot(RedisCommands& redis, const GenerationId& gen);
  // Many generations' snapshots in one round trip, in input order.
  StatusOr<std::vector<BufferSnapshot>> Snapshots(RedisCommands& redis, const std::vector<GenerationId>& gens);

  // After the row committed: the MarkCompacted script call as a command, for pipelines (registers the script
  // on `redis` for NOSCRIPT repair). Its reply is integer 1 when marked, 0 when more chunks arrived or the
  // generation started over (`attempt`: the control hash's when the buffer was read) since. keep_buffer: no
  // GENERATION_DELETE_AFTER_COMPACT grace (a row that was kept: the buffer may hold chunks it lacks).
  std::vector<std::string> MarkCompactedCommand(RedisCommands& redis, const GenerationId& gen, int64_t received_chunks,
                                                const std::string& finalize_id, uint32_t attempt,
                                                bool keep_buffer = false);

  // Moves due idle deadlines to the finalize stream: those past both now and the compactor group's
  // consumed watermark (components/chunks/include/streamfleet/chunks/consumed_watermark.h). Returns how many.
  StatusOr<int64_t> SweepDeadlines(RedisCommands& redis, int limit);

  // Queues a finalization now (operators, the generation.compact task).
  Status QueueFinalize(RedisCommands& redis, const GenerationId& gen, const std::string& reason);

 private:
  KeySchema keys_;
  const Config& config_;
  Clock& clock_;
};

}  // namespace streamfleet
