#pragma once
// Operator actions and read models shared by `streamfleetctl` and the admin web UI (streamfleet-admin), so
// both do exactly the same thing to Redis: listing the fleet's streams, dead letters (browse, requeue,
// delete), pausing queues, scheduled tasks and task status, generation buffers. Not thread-safe: each call
// uses the RedisClient it is given (one per thread).
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "streamfleet/base/config.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet {

// Every key matching a glob, with SCAN ... COUNT 100 on every master (never KEYS), each key once.
StatusOr<std::vector<std::string>> ScanKeys(RedisClient& redis, const std::string& pattern);

// The configured task queues' names (QUEUES), in config order.
std::vector<std::string> QueueNames(const Config& config);

// The fleet's streams in display order: chunk shards, finalize, events, the dead-letter streams, the
// configured task queues (every shard stream in cluster mode).
std::vector<std::string> FleetStreams(const Config& config);

// A stream the fleet reads in a consumer group, with the group and the process that reads it.
struct ConsumedStream {
  std::string stream;
  std::string group;
  std::string process;  // streamfleet-compactor | streamfleet-queue-worker
};
// Every stream a consumer group reads under this configuration, computed offline (no Redis): chunk shards
// and finalize streams (compactor), the events stream and every task-queue shard (queue-worker). What an
// autoscaler must watch; scripts/check-deploy.sh checks the KEDA triggers against it.
std::vector<ConsumedStream> ConsumedStreams(const Config& config);

// --- dead letters -------------------------------------------------------------------------------------
// The dead-letter streams: chunks first, then tasks (one per queue shard of the configured queues in
// cluster mode).
std::vector<std::string> DeadLetterStreams(const Config& config);

struct DeadLetterEntry {
  std::string dlq;    // the dead-letter stream it sits in
  StreamEntry entry;  // its fields: source_stream, source_id, group, reason, times_delivered, ..., "e" (or "b")
};
// Up to `limit` entries of every dead-letter stream, oldest first.
StatusOr<std::vector<DeadLetterEntry>> ListDeadLetters(RedisClient& redis, const Config& config, int limit);
// The dead letter with this id, wherever it is (nullopt: none).
StatusOr<std::optional<DeadLetterEntry>> GetDeadLetter(RedisClient& redis, const Config& config, const std::string& id);

// Which dead letters a purge removes, or a requeue of all puts back; the default (no filter) selects every one.
struct DeadLetterFilter {
  int64_t older_than_ms = 0;   // only entries dead-lettered more than this long before now_ms (0 = any age)
  int64_t now_ms = 0;
  std::string task_type;       // only task dead letters of this type ("" = any; chunk dead letters never match)
  std::string source_stream;   // only entries that came from this stream ("" = any)
  bool empty() const { return older_than_ms == 0 && task_type.empty() && source_stream.empty(); }
};
// Requeues entries back onto their source stream (XADD of the original envelope(s) "e" and batches "b", in order, then XDEL from the
// dead-letter stream). `id` empty = every entry. progress(stream, done, total) is called per entry.
// Entries without source_stream or envelope are left in place. Returns how many were requeued; kNotFound
// when `id` names no entry that could be requeued (none, or one without a source to go back to).
using RequeueProgress = std::function<void(const std::string& dlq, int64_t done, int64_t total)>;
// With an empty `id`, `filter` narrows the entries put back (e.g. one task type's, once its handler is fixed).
StatusOr<int64_t> RequeueDeadLetters(RedisClient& redis, const Config& config, const std::string& id,
                                     const RequeueProgress& progress = nullptr, const DeadLetterFilter& filter = {});

// Deletes one dead letter (any dead-letter stream) by id; returns how many entries were removed, kNotFound
// when none was.
StatusOr<int64_t> DeleteDeadLetter(RedisClient& redis, const Config& config, const std::string& id);

// Deletes the dead letters the filter selects (dry_run: only counts them). Returns how many.
StatusOr<int64_t> PurgeDeadLetters(RedisClient& redis, const Config& config, const DeadLetterFilter& filter = {},
                                   bool dry_run = false);

// --- task queues --------------------------------------------------------------------------------------
// Pauses (SADD) or resumes (SREM) a queue; kInvalidArgument for a bad queue name. Cluster mode also sets
// (deletes) the pause flag of every shard, which is what the workers read. PausedQueues reads the set.
Status SetQueuePaused(RedisClient& redis, const TaskKeys& keys, const std::string& queue, bool paused);
StatusOr<std::vector<std::string>> PausedQueues(RedisClient& redis, const TaskKeys& keys);

struct ScheduledTask {
  v1::TaskEnvelope task;
  int64_t run_at_ms = 0;
};
// The first `limit` tasks of the scheduled sets (delayed tasks and retries), earliest first. Cluster mode
// reads every shard's set of `queues`; standard mode the one set (queues ignored).
StatusOr<std::vector<ScheduledTask>> ListScheduled(RedisClient& redis, const TaskKeys& keys, int limit,
                                                   const std::vector<std::string>& queues = {});
// A task's status hash (state, type, attempts, error, result, ...); empty when unknown or expired.
StatusOr<std::map<std::string, std::string>> TaskStatus(RedisClient& redis, const TaskKeys& keys,
                                                        const std::string& id);

// --- generation buffers -------------------------------------------------------------------------------
struct BufferKeyInfo {
  std::string key;
  std::string type;  // "list", "hash", "string" (the seen bitmap), ...
  int64_t ttl = -2;
  int64_t llen = -1;                          // lists only
  std::map<std::string, std::string> hash;    // hashes only (the :meta hash)
  // Lists only (the buffer), when its elements were read (elements_read, with_elements): decoded
  // (buffer_element.h), compressed ones decompressed, in seq order.
  std::string text;
  int64_t compressed_elements = 0;
  int64_t stored_bytes = 0;  // what the elements' data takes in Redis (compressed frames as stored)
  bool elements_read = false;
};
// Every key of a generation's buffer (both key forms; with scenario > 0 only that scenario's keys).
// with_elements false: a list's length only (LLEN), not its elements (LRANGE of a buffer of up to 100 000
// chunks, decompressed and assembled): for a page that refreshes every few seconds.
StatusOr<std::vector<BufferKeyInfo>> InspectGenerationBuffer(RedisClient& redis, const KeySchema& keys, int64_t org,
                                                             int64_t gen, int64_t scenario, bool with_elements = true);

struct LiveBuffer {
  std::string key;
  int64_t llen = 0;
  std::map<std::string, std::string> meta;  // the buffer's :meta hash (received_chunks, total_chunks, ...)
};
struct BufferSummary {
  int64_t count = 0, total_chunks = 0, max_llen = 0;
  std::vector<LiveBuffer> over_threshold;
  std::vector<LiveBuffer> buffers;  // filled only with with_meta: every live buffer with its meta
};
// Every live buffer (still receiving: live_buffers.h): count, chunk sum, largest LLEN, and those over
// `threshold`. with_meta also reads the :meta hash of the first `max_buffers` by key (the admin overview's
// progress bars).
StatusOr<BufferSummary> SummarizeBuffers(RedisClient& redis, const KeySchema& keys, int64_t threshold,
                                         bool with_meta = false, size_t max_buffers = 200);

}  // namespace streamfleet
