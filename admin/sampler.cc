#include "admin/sampler.h"

#include <algorithm>
#include <chrono>

#include "streamfleet/base/time.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/taskqueue/task_queue.h"

namespace streamfleet::admin {
namespace {

struct StreamCounters {
  int64_t added = 0, read = 0, lag = 0;
};

// entries-added of the stream and entries-read + lag of one group (Redis 7 XINFO fields).
StatusOr<StreamCounters> ReadStream(RedisClient& redis, const std::string& stream, const std::string& group) {
  StreamCounters out;
  auto info = redis.Command({"XINFO", "STREAM", stream});
  if (!info.ok()) {
    if (info.status().code() == StatusCode::kInternal) return out;  // "ERR no such key": not created yet
    return info.status();
  }
  for (const auto& [k, v] : ParsePairs(*info)) {
    if (k == "entries-added") out.added = v.integer;
  }
  auto groups = redis.Command({"XINFO", "GROUPS", stream});
  if (!groups.ok()) return groups.status();
  for (const auto& g : groups->elements) {
    std::string name;
    int64_t read = 0, lag = 0;
    for (const auto& [k, v] : ParsePairs(g)) {
      if (k == "name") name = v.str;
      if (k == "entries-read") read = v.is_nil() ? 0 : v.integer;
      if (k == "lag") lag = v.is_nil() ? 0 : v.integer;
    }
    if (name == group) {
      out.read = read;
      out.lag = lag;
    }
  }
  return out;
}

double PerSecond(int64_t before, int64_t after, int64_t dt_ms) {
  if (dt_ms <= 0 || after < before) return 0;
  return static_cast<double>(after - before) * 1000.0 / static_cast<double>(dt_ms);
}

}  // namespace

StatusOr<Counters> ReadCounters(RedisClient& redis, const Config& config) {
  KeySchema keys = KeySchema::FromConfig(config);
  TaskKeys tkeys = TaskKeys::FromConfig(config);
  Counters c;
  auto oldest = [&](const std::string& stream) -> Status {
    auto st = GetStreamStats(redis, stream);
    if (!st.ok()) return st.status();
    for (const auto& g : st->groups) c.oldest_pending_s = std::max(c.oldest_pending_s, g.oldest_pending_seconds);
    return Status::Ok();
  };
  for (int i = 0; i < keys.chunk_streams(); ++i) {
    auto s = ReadStream(redis, keys.ChunkStream(i), keys.CompactorGroup());
    if (!s.ok()) return s.status();
    c.chunks_added += s->added;
    c.chunks_read += s->read;
    c.chunk_lag += s->lag;
    if (Status st = oldest(keys.ChunkStream(i)); !st.ok()) return st;
  }
  std::vector<std::string> queues;
  for (const auto& [q, w] : config.queues) queues.push_back(q);
  for (const auto& stream : tkeys.QueueStreams(queues)) {  // every shard in cluster mode
    auto s = ReadStream(redis, stream, TaskKeys::Group());
    if (!s.ok()) return s.status();
    c.tasks_added += s->added;
    c.tasks_read += s->read;
    c.task_lag += s->lag;
    if (Status st = oldest(stream); !st.ok()) return st;
  }
  return c;
}

Sample RateBetween(const Counters& before, const Counters& after, int64_t dt_ms) {
  Sample s;
  s.chunks_in_per_s = PerSecond(before.chunks_added, after.chunks_added, dt_ms);
  s.chunks_out_per_s = PerSecond(before.chunks_read, after.chunks_read, dt_ms);
  s.tasks_in_per_s = PerSecond(before.tasks_added, after.tasks_added, dt_ms);
  s.tasks_out_per_s = PerSecond(before.tasks_read, after.tasks_read, dt_ms);
  s.chunk_lag = after.chunk_lag;
  s.task_lag = after.task_lag;
  s.oldest_pending_s = after.oldest_pending_s;
  return s;
}

Sampler::Sampler(const Config& config, size_t capacity) : config_(config), capacity_(capacity) {}

Sampler::~Sampler() { Stop(); }

void Sampler::Start() { thread_ = std::thread([this] { Run(); }); }

void Sampler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<Sample> Sampler::Samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {samples_.begin(), samples_.end()};
}

Status Sampler::SampleOnce(RedisClient& redis) {
  auto t0 = std::chrono::steady_clock::now();
  auto ping = redis.Command({"PING"});
  if (!ping.ok()) return ping.status();
  double rtt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto c = ReadCounters(redis, config_);
  if (!c.ok()) return c.status();
  int64_t now = WallClockMs();
  if (have_last_) {
    Sample s = RateBetween(last_, *c, now - last_ms_);
    s.at_ms = now;
    s.redis_rtt_ms = rtt;
    std::lock_guard<std::mutex> lock(mu_);
    samples_.push_back(s);
    while (samples_.size() > capacity_) samples_.pop_front();
  }
  last_ = *c;
  last_ms_ = now;
  have_last_ = true;
  return Status::Ok();
}

void Sampler::Run() {
  auto redis = RedisClient::Lazy(config_.redis);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    (void)SampleOnce(*redis);  // Redis down: a gap in the chart; the overview reports the error itself
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(config_.admin_sample_interval_ms), [this] { return stop_; });
  }
}

}  // namespace streamfleet::admin
