#pragma once
// The compactor's main loop: one consumer in the "compactor" group reading every chunk stream and the
// finalize stream with one XREADGROUP. Per batch: apply chunks (one script call per generation, one round
// trip), then XACK; finalize entries are finalized, then XACKed. Between reads: sweep idle deadlines,
// take over entries of dead consumers, trim acknowledged entries, drop dead consumers.
//
// Threading: Run/RunOnce on one thread. Ready() and SampleGauges() may be called from the metrics thread.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "streamfleet/chunks/chunk_buffer.h"
#include "streamfleet/chunks/finalizer.h"
#include "streamfleet/chunks/read_sizing.h"
#include "compactor/metrics.h"
#include "streamfleet/base/clock.h"
#include "streamfleet/base/config.h"
#include "streamfleet/observability/dependency_health.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/observability/redis_info_metrics.h"
#include "streamfleet/sql/sql_store.h"
#include "streamfleet/observability/stream_gauges.h"

namespace streamfleet::compactor {

struct LoopOptions {
  // Entries per stream and read. Each generation in a read batch costs the buffer script a fixed number of
  // Redis calls, so under load a larger batch (more chunks of each generation per call) is what keeps Redis'
  // cost per chunk down: 500 measured +15-20% end to end over 200 (docs/performance.md). 1000 was no faster
  // and raised the binary's peak RSS draining a backlog from 45 to 61 MB (the target is 64). It also bounds
  // how long a finalize entry waits behind chunk batches; at a steady 500 generations/s batches stay small.
  int read_count = 500;
  // A chunk stream's entries may hold many chunks each (an NDJSON request's): its reads ask for as many
  // entries as hold about read_chunks envelopes and read_bytes bytes, as recent reads measured (ReadSizer,
  // streamfleet/chunks/read_sizing.h), at most read_count. The finalize stream is read read_count at a time.
  int read_chunks = 500;
  int64_t read_bytes = 1 << 20;
  // A finalization holds its generation's whole buffer, text and row at once, and a generation may be up to
  // INGEST_MAX_GENERATION_BYTES: a read's finalizations are done in groups of about this much buffered text
  // (a generation larger than it alone), not all at once. Each group is one database transaction.
  int64_t finalize_bytes = 8 << 20;
  // GENERATION_CHUNK_STORAGE db|both: a batch's chunk rows are written in transactions of about this much
  // text. Reads are sized by what the stream entries hold, and compressed frames may inflate a hundredfold.
  int64_t chunk_rows_bytes = 8 << 20;
  int block_ms = 500;
  int sweep_interval_ms = 200;
  int trim_interval_ms = 10000;
  // Acknowledged chunk entries younger than this (by Redis' clock) survive a trim:
  // ingest's live tail reads the chunk streams a few ms behind their end, outside the group, and would skip
  // what a trim removed first (its subscribers then wait for the hub's once-a-second buffer read).
  int64_t trim_keep_ms = 2000;
  // After a blocking read returned fewer than min_batch chunks, wait linger_ms before the next read (see
  // RunOnce). 0 = never.
  int min_batch = 100;
  int linger_ms = 2;
};

// Shared reachability trackers (see the CompactorService constructor).
struct CompactorHealth {
  DependencyHealth* redis = nullptr;
  DependencyHealth* db = nullptr;
};

class CompactorService {
 public:
  // Outages are tracked in `health` (CompactorLoops shares one pair among its loops, so an outage counts
  // once per process); where null, the service tracks its own.
  CompactorService(const Config& config, Clock& clock, SqlStore& store, prometheus::Registry& registry,
                   LoopOptions options = {}, CompactorHealth health = {});

  // Loops until stop is set (or SIGTERM). In-flight work is finished or left pending (never half-acked).
  void Run(const std::atomic<bool>& stop);
  // One read-process-maintain cycle. Returns the number of entries handled. The acks of what it handled
  // go out with the next cycle's read (one round trip fewer per batch); FlushAcks sends them at once.
  StatusOr<int> RunOnce(const std::atomic<bool>& stop);
  Status FlushAcks();
  // Housekeeping now (tests call it after moving the clock).
  Status SweepNow();
  Status ClaimNow(const std::atomic<bool>& stop);
  Status TrimNow();

  // Redis reachable and the database writable, as last seen.
  Status Ready() const;
  Cache& cache() { return cache_; }
  // Refresh sampled gauges (buffers via SCAN, stream stats). Bounded cost; called per scrape.
  void SampleGauges();

  CompactorMetrics& metrics() { return metrics_; }
  const DependencyHealth& redis_health() const { return redis_health_; }
  const DependencyHealth& db_health() const { return db_health_; }
  ChunkBuffer& buffer() { return buffer_; }

 private:
  Status EnsureGroups();
  std::vector<std::string> Streams() const;
  // The XREADGROUP(s) of one round: one blocking read of every stream (standard mode), or one non-blocking
  // read per stream (cluster mode: each stream in its own slot). history re-reads this consumer's pending.
  // Chunk streams are asked for read_sizer_'s count; when that is below read_count, a non-blocking read of
  // the finalize stream follows in the same round trip, so finalizations never wait behind large entries.
  std::vector<std::vector<std::string>> ReadCommands(bool history) const;
  void IdlePoll(const std::atomic<bool>& stop);
  void Process(std::vector<StreamEntry> entries, const std::atomic<bool>& stop);
  void ProcessChunks(const std::vector<StreamEntry>& entries, const std::atomic<bool>& stop);
  void ProcessFinalizes(const std::vector<StreamEntry>& entries, const std::atomic<bool>& stop);
  // Where a read's finalizations are cut into groups of about LoopOptions::finalize_bytes of buffered text
  // (the buffers' received_bytes, one round trip): the end index of each group, the last reqs.size().
  std::vector<size_t> FinalizeGroupEnds(const std::vector<FinalizeRequest>& reqs);
  // One group: finalized together (FinalizeBatch), then each acked; on a permanent failure one by one.
  void FinalizeGroup(const std::vector<FinalizeRequest>& reqs, const std::vector<StreamEntry>& owners,
                     const std::atomic<bool>& stop);
  Status RetryFinalize(const std::vector<FinalizeRequest>& reqs, const std::vector<StreamEntry>& owners,
                       std::vector<FinalizeOutcome>* out,
                       const std::atomic<bool>& stop);
  void RecordFinalized(const FinalizeRequest& req, const StreamEntry& e, const FinalizeOutcome& outcome);
  // Queues XACKs; they go out ahead of the next XREADGROUP in the same round trip (FlushAcks otherwise).
  void Ack(const std::vector<StreamEntry>& entries);
  std::vector<std::vector<std::string>> TakeAckCommands();
  void RequeueAck(const std::vector<std::string>& xack);  // an XACK that was not sent: queue its ids again
  // Dead-letters (and takes out of `entries`) this consumer's pending entries read again after a restart that
  // were delivered more than MAX_DELIVERIES times.
  void DeadLetterOverDelivered(std::vector<StreamEntry>& entries);
  void DeadLetterEntry(const StreamEntry& e, const std::string& reason, int64_t times_delivered);
  // The items of a batch whose DB chunk rows are written (GENERATION_CHUNK_STORAGE db|both): not those of
  // ids another organization owns, nor finish markers. Their indexes in `items`.
  StatusOr<std::vector<size_t>> OwnChunkItems(const std::vector<ChunkItem>& items);
  // Writes those rows, decompressed a group of about options_.chunk_rows_bytes at a time; false when a group
  // could not be written (stopped, or a permanent database error): nothing is acked then, the batch is
  // redelivered, and the rows already written are kept (ON CONFLICT DO NOTHING).
  bool StoreChunkRows(const std::vector<ChunkItem>& items, const std::vector<size_t>& own,
                      const std::vector<StreamEntry>& good, const std::atomic<bool>& stop);
  // A finalization of a generation id that belongs to another organization: dead-lettered and counted.
  void RefuseForeignGeneration(const FinalizeRequest& req, const StreamEntry& e);
  // Retries f while it fails with a retryable status, with jittered backoff, until stop.
  template <typename F>
  // `held`: the entries being worked on. Their leases are renewed while f is retried through an outage, so
  // the other consumers' claim passes do not take them (each claim counts a delivery: a long database
  // outage otherwise dead-lettered in-flight finalizations after MAX_DELIVERIES claims by idle loops).
  Status Retry(const std::atomic<bool>& stop, F&& f, const std::vector<StreamEntry>* held = nullptr);
  void RenewLeases(const std::vector<StreamEntry>& held);
  void NoteLlen(const GenerationId& g, int64_t llen);

  const Config& config_;
  Clock& clock_;
  SqlStore& store_;
  LoopOptions options_;
  CompactorMetrics metrics_;
  ReadSizer read_sizer_;  // the COUNT of chunk-stream reads and takeovers
  std::unique_ptr<DependencyHealth> own_redis_health_, own_db_health_;  // unless shared (Health)
  DependencyHealth& redis_health_;  // logs and counts outages; Ready() reads it
  DependencyHealth& db_health_;
  ChunkBuffer buffer_;
  Cache cache_;  // invalidated by finalizer_ (declared before it)
  Finalizer finalizer_;
  std::unique_ptr<RedisClient> read_;   // parked in XREADGROUP BLOCK
  std::unique_ptr<RedisClient> write_;  // applies, acks, housekeeping
  std::mutex sample_mu_;
  std::unique_ptr<RedisClient> sample_;  // metrics thread, guarded by sample_mu_
  RedisInfoMetrics redis_info_;           // guarded by sample_mu_
  StreamGauges stream_gauges_;            // guarded by sample_mu_
  std::map<std::string, std::vector<std::string>> acks_;  // stream -> ids processed, not acked yet
  bool groups_ready_ = false;
  bool own_pending_recovered_ = false;
  // The recovery's place in each stream's own pending entries: each is read once, after the last one read.
  // Read from "0" each round, an entry whose finalization the database refuses came back every round (its
  // idle time reset each time, so the claim path never counted it toward MAX_DELIVERIES) and new entries were
  // never read; what the recovery leaves pending is the claim path's, as any failure's.
  std::map<std::string, std::string> recovered_up_to_;
  int64_t idle_poll_ms_ = 0;  // cluster mode: the current wait after an empty round
  bool finalize_queued_ = false;  // the current batch completed a generation (no linger before the next read)
  std::chrono::steady_clock::time_point next_sweep_{}, next_claim_{}, next_trim_{};
  std::unordered_set<std::string> over_threshold_logged_;
  // Entry id -> error of a finalization that failed permanently here; the dead-letter reason once it has
  // been delivered MAX_DELIVERIES times. Loop thread only; bounded.
  std::unordered_map<std::string, std::string> last_failure_;
};

}  // namespace streamfleet::compactor
