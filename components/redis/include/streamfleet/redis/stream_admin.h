#pragma once
// Consumer-group housekeeping shared by every consumer process and the CLI: idempotent group creation,
// taking over entries of dead consumers, safe trimming, removing dead consumers, and stream statistics.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "streamfleet/redis/redis.h"

namespace streamfleet {

// XGROUP CREATE stream group 0 MKSTREAM; an existing group (BUSYGROUP) is success.
Status EnsureGroup(RedisClient& redis, const std::string& stream, const std::string& group);

struct ClaimedEntry {
  StreamEntry entry;
  int64_t times_delivered = 0;
};

// XAUTOCLAIM entries idle longer than min_idle_ms to `consumer`, with their delivery counts (from the
// extended XPENDING form; XAUTOCLAIM reports none). Ids whose entries were trimmed away are XACKed and
// dropped. At most `count` entries.
// `cursor` (optional): where the scan starts ("0-0" when null or empty), set to where the next one goes on
// ("0-0" once the whole pending list was scanned). Redis scans at most 10 x count pending entries per call,
// so a caller claiming few at a time follows the cursor to reach them all.
StatusOr<std::vector<ClaimedEntry>> ClaimIdle(RedisClient& redis, const std::string& stream, const std::string& group,
                                              const std::string& consumer, int64_t min_idle_ms, int count,
                                              std::string* cursor = nullptr);

// Keeps an entry this consumer is working on from being claimed: if `consumer` still owns it, resets its
// idle time (XCLAIM ... JUSTID, which leaves the delivery count alone) and returns true; returns false when
// the entry is no longer pending on `consumer` (acked, or claimed by another consumer: the lease is lost).
// Check and claim are one script, so a lease is never taken back from a consumer that claimed it.
StatusOr<bool> ExtendLease(RedisClient& redis, const std::string& stream, const std::string& group,
                           const std::string& consumer, const std::string& id);

// Trims entries every group on the stream has both delivered and acknowledged: below the minimum over
// groups of min(oldest pending id, last-delivered-id), and with keep_ms also older than keep_ms by the
// server's clock (ids of XADD * are its milliseconds). The kept window is for readers outside the groups
// that follow the stream's end a little behind (ingest's live tail reads every chunk with XREAD): an entry
// trimmed before they read it would be skipped without a trace. Returns the number of entries removed.
StatusOr<int64_t> TrimAcknowledged(RedisClient& redis, const std::string& stream, int64_t keep_ms = 0);

// Removes consumers idle longer than idle_ms that hold nothing pending. Returns how many; 0 when the stream
// or the group does not exist (yet).
StatusOr<int64_t> RemoveDeadConsumers(RedisClient& redis, const std::string& stream, const std::string& group,
                                      int64_t idle_ms);

// Deletes `consumer` if, at that moment, it holds nothing pending (checked and deleted in one script: a
// consumer that read an entry since it was seen idle keeps it). Returns whether it was deleted.
StatusOr<bool> DeleteConsumerWithoutPending(RedisClient& redis, const std::string& stream, const std::string& group,
                                            const std::string& consumer);

struct ConsumerStats {
  std::string name;
  int64_t pending = 0;
  int64_t idle_ms = 0;
};
struct GroupStats {
  std::string name;
  int64_t consumers = 0;
  int64_t pending = 0;
  int64_t lag = -1;  // -1 when Redis cannot tell (NIL lag)
  std::string last_delivered_id;
  double oldest_pending_seconds = 0;
  std::vector<ConsumerStats> consumer_list;  // filled only when asked for (XINFO CONSUMERS per group)
};
struct StreamStats {
  std::string stream;
  int64_t length = 0;
  std::vector<GroupStats> groups;
};
// XLEN + XINFO GROUPS + oldest pending age (+ XINFO CONSUMERS of each group with `with_consumers`: the CLI
// wants it, the metrics samplers do not pay for it). A missing stream yields length 0 and no groups.
StatusOr<StreamStats> GetStreamStats(RedisClient& redis, const std::string& stream, bool with_consumers = false);

// XADD a dead letter: the original fields plus where it came from and why.
Status DeadLetter(RedisClient& redis, const std::string& dlq_stream, const StreamEntry& entry,
                  const std::string& group, const std::string& reason, int64_t times_delivered);

// Milliseconds part of a stream id ("1700000000000-3" -> 1700000000000); 0 if malformed.
int64_t StreamIdMs(const std::string& id);

// The Redis server's clock (TIME) in ms: the one "now" that processes on hosts with different clocks share.
StatusOr<int64_t> RedisTimeMs(RedisClient& redis);
// Compares two stream ids numerically.
int CompareStreamIds(const std::string& a, const std::string& b);
// Whether id is a complete stream id as XADD makes them: "<ms>-<seq>", each 1 to 20 digits and at most
// 18446744073709551615 (UINT64_MAX, the largest part Redis accepts).
bool ValidStreamId(std::string_view id);

}  // namespace streamfleet
