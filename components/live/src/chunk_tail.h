#pragma once
// The live hub's tail: XREADs the chunk streams and the events stream from where they stood when somebody
// started watching, and hands over the chunks of watched generations and every event. Its own thread and
// Redis connection (the reads block). Idle (no reads at all) while nobody watches.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "streamfleet/base/config.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/chunks/fleet_events.h"
#include "streamfleet/chunks/read_sizing.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet::live {

struct TailChunk {
  int64_t org = 0;
  int64_t gen = 0;
  int64_t seq = 0;
  std::string data;
  bool has_data = false;  // false: a FINISH (only a total)
  int64_t total = 0;      // what it says of the total (0: nothing)
  uint32_t attempt = 0;   // which start of the generation's text (ChunkEnvelope.attempt)
};

struct TailEvent {
  std::string id;  // events-stream entry id
  FleetEvent event;
};

struct TailBatch {
  uint64_t epoch = 0;
  // Set on the first batch of an epoch: the events stream's last id when the tail started (every later
  // event comes through the tail).
  bool positioned = false;
  std::string events_from;
  std::vector<TailChunk> chunks;
  std::vector<TailEvent> events;
};

using GenerationKey = std::pair<int64_t, int64_t>;  // org, gen

class ChunkTail {
 public:
  ChunkTail(const Config& config, int64_t block_ms, std::function<void(TailBatch)> deliver);
  ~ChunkTail();  // Stop()

  // Which generations' chunks to hand over (the hub's thread).
  void SetWatched(std::set<GenerationKey> watched);
  // Starts reading from the streams' current ends (a new epoch), or stops reading.
  void SetActive(bool active);
  uint64_t epoch() const { return epoch_.load(); }
  void Stop();

 private:
  void Run();
  bool Position(std::vector<std::string>& ids);  // the streams' last ids now
  bool ReadOnce(std::vector<std::string>& ids, TailBatch& batch, bool* got_any);
  static constexpr int64_t kBatchPauseMs = 5;
  void Decode(const StreamEntry& e, bool events, const std::set<GenerationKey>& watched, TailBatch& batch);

  const Config& config_;
  const int64_t block_ms_;
  std::function<void(TailBatch)> deliver_;
  std::vector<std::string> streams_;  // the chunk streams, then the events stream
  std::unique_ptr<RedisClient> redis_;
  // The COUNT of each read: a tail that fell behind NDJSON producers would otherwise bring up to 1000 entries
  // of up to 64 KiB per stream into one reply. At least 50, since the events stream is read in the same one.
  ReadSizer read_sizer_{50, 1000, 1000, 1 << 20};  // tail thread only
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const std::set<GenerationKey>> watched_ = std::make_shared<const std::set<GenerationKey>>();
  bool active_ = false;
  bool stop_ = false;
  std::atomic<uint64_t> epoch_{0};
  std::thread thread_;
};

}  // namespace streamfleet::live
