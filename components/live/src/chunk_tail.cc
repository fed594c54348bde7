#include "chunk_tail.h"

#include <chrono>

#include "streamfleet/base/log.h"
#include "streamfleet/chunks/chunk_entry.h"

namespace streamfleet::live {

ChunkTail::ChunkTail(const Config& config, int64_t block_ms, std::function<void(TailBatch)> deliver)
    : config_(config), block_ms_(block_ms), deliver_(std::move(deliver)), redis_(RedisClient::Lazy(config.redis)) {
  KeySchema keys = KeySchema::FromConfig(config);
  for (int i = 0; i < keys.chunk_streams(); ++i) streams_.push_back(keys.ChunkStream(i));
  streams_.push_back(keys.EventsStream());
  thread_ = std::thread([this] { Run(); });
}

ChunkTail::~ChunkTail() { Stop(); }

void ChunkTail::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ChunkTail::SetWatched(std::set<GenerationKey> watched) {
  auto next = std::make_shared<const std::set<GenerationKey>>(std::move(watched));
  std::lock_guard<std::mutex> lock(mu_);
  watched_ = std::move(next);
}

void ChunkTail::SetActive(bool active) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (active_ == active) return;
    active_ = active;
    if (active) epoch_.fetch_add(1);
  }
  cv_.notify_all();
}

bool ChunkTail::Position(std::vector<std::string>& ids) {
  std::vector<std::vector<std::string>> cmds;
  for (const auto& s : streams_) cmds.push_back({"XREVRANGE", s, "+", "-", "COUNT", "1"});
  auto r = redis_->Pipeline(cmds);
  if (!r.ok()) return false;
  ids.assign(streams_.size(), "0-0");
  for (size_t i = 0; i < r->size(); ++i) {
    const RedisValue& v = (*r)[i];
    if (v.is_array() && !v.elements.empty() && v.elements[0].is_array() && !v.elements[0].elements.empty()) {
      ids[i] = v.elements[0].elements[0].str;
    }
  }
  return true;
}

namespace {

// One pass over a chunk entry's fields ([field, value, ...]): adds what it holds to *envelopes and *bytes (the
// next read's size) and says whether it may hold a watched generation's chunk: false only when it has no
// envelope or each scans as another generation's (ingest's entries hold one request's envelopes; other
// producers may mix generations). Envelopes that do not scan count as watched: the full decode decides.
bool ScanChunkFields(const std::vector<RedisValue>& kv, const std::set<GenerationKey>& watched,
                     std::vector<std::string_view>& batch, size_t* envelopes, size_t* bytes) {
  bool may = false;
  auto consider = [&](std::string_view raw) {
    int64_t org = 0, gen = 0;
    may = may || !PeekEnvelopeGeneration(raw, &org, &gen) || watched.count({org, gen}) > 0;
  };
  for (size_t k = 0; k + 1 < kv.size(); k += 2) {
    *bytes += kv[k].str.size() + kv[k + 1].str.size();
    if (kv[k].str == "e") {
      ++*envelopes;
      consider(kv[k + 1].str);
    } else if (kv[k].str == "b") {
      batch.clear();
      int64_t first_seq = 0;
      if (!ScanChunkBatch(kv[k + 1].str, &batch, &first_seq)) {
        may = true;
        continue;
      }
      *envelopes += batch.size();
      for (std::string_view raw : batch) {
        if (may) break;
        consider(raw);
      }
    }
  }
  return may;
}

}  // namespace

void ChunkTail::Decode(const StreamEntry& e, bool events, const std::set<GenerationKey>& watched, TailBatch& batch) {
  if (events) {
    auto ev = DecodeFleetEvent(e);
    if (ev.ok()) batch.events.push_back(TailEvent{e.id, std::move(*ev)});
    return;
  }
  std::vector<ChunkItem> items;
  std::string why;
  if (!DecodeChunkEntry(e, &items, &why)) return;
  for (const ChunkItem& item : items) {
    if (!watched.count({item.gen.org, item.gen.gen})) continue;
    TailChunk c;
    c.org = item.gen.org;
    c.gen = item.gen.gen;
    c.seq = item.seq;
    c.attempt = item.attempt;
    if (item.finish) {
      c.total = item.total;
    } else {
      auto text = ChunkItemText(item);
      if (!text.ok()) continue;  // a corrupt frame: the compactor dead-letters or counts it; the feed waits on the gap
      c.has_data = true;
      c.data = std::move(*text);
      c.total = item.total > 0 ? item.total : (item.final ? item.seq + 1 : 0);
    }
    batch.chunks.push_back(std::move(c));
  }
}

bool ChunkTail::ReadOnce(std::vector<std::string>& ids, TailBatch& batch, bool* got_any) {
  std::shared_ptr<const std::set<GenerationKey>> watched;  // a snapshot: the pointer, not the set, is copied
  {
    std::lock_guard<std::mutex> lock(mu_);
    watched = watched_;
  }
  std::vector<RedisValue> replies;
  const std::string count = std::to_string(read_sizer_.Count());
  if (!config_.redis.cluster) {
    // One blocking read over every stream: they all live on the one server.
    std::vector<std::string> cmd = {"XREAD", "COUNT", count, "BLOCK", std::to_string(block_ms_), "STREAMS"};
    cmd.insert(cmd.end(), streams_.begin(), streams_.end());
    cmd.insert(cmd.end(), ids.begin(), ids.end());
    auto r = redis_->Command(cmd, static_cast<int>(block_ms_));
    if (!r.ok()) return false;
    replies.push_back(std::move(*r));
  } else {
    // A cluster spreads the streams over its masters: one non-blocking read per stream, pipelined per
    // master by the client, and a short sleep when nothing came.
    std::vector<std::vector<std::string>> cmds;
    for (size_t i = 0; i < streams_.size(); ++i) {
      cmds.push_back({"XREAD", "COUNT", count, "STREAMS", streams_[i], ids[i]});
    }
    auto r = redis_->Pipeline(cmds);
    if (!r.ok()) return false;
    replies = std::move(*r);
  }
  // The replies ([[stream, [[id, [field, value, ...]], ...]], ...]) are walked in place, and only the entries
  // that may be watched become StreamEntry copies: the tail sees every chunk of the fleet and keeps few, and
  // copying each one first was most of its work.
  bool any = false;
  size_t chunk_entries = 0, envelopes = 0, bytes = 0;  // what the chunk streams' entries held: the next COUNT
  std::vector<std::string_view> batch_views;  // ScanChunkFields' scratch, reused across entries
  for (const RedisValue& reply : replies) {
    if (!reply.is_array()) continue;
    for (const RedisValue& s : reply.elements) {
      if (!s.is_array() || s.elements.size() < 2 || !s.elements[1].is_array()) continue;
      size_t i = 0;
      while (i < streams_.size() && streams_[i] != s.elements[0].str) ++i;
      if (i == streams_.size()) continue;
      const bool events = i + 1 == streams_.size();
      for (const RedisValue& e : s.elements[1].elements) {
        if (!e.is_array() || e.elements.empty()) continue;
        any = true;
        ids[i] = e.elements[0].str;  // every entry moves the read on, also one without fields
        if (e.elements.size() < 2 || !e.elements[1].is_array()) continue;
        if (!events) {
          const auto& fields = e.elements[1].elements;
          ++chunk_entries;
          if (!ScanChunkFields(fields, *watched, batch_views, &envelopes, &bytes)) continue;
        }
        Decode(ParseEntry(streams_[i], e), events, *watched, batch);
      }
    }
  }
  read_sizer_.Observe(chunk_entries, envelopes, bytes);
  *got_any = any;
  if (!any && config_.redis.cluster) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::max<int64_t>(1, block_ms_ / 10)));
  }
  return true;
}

void ChunkTail::Run() {
  uint64_t positioned_epoch = 0;
  std::vector<std::string> ids;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || active_; });
      if (stop_) return;
    }
    uint64_t epoch = epoch_.load();
    TailBatch batch;
    batch.epoch = epoch;
    if (positioned_epoch != epoch) {
      if (!Position(ids)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // Redis is down: the hub's resync says so
        continue;
      }
      positioned_epoch = epoch;
      TailBatch start;
      start.epoch = epoch;
      start.positioned = true;
      start.events_from = ids.back();
      deliver_(std::move(start));
    }
    bool got_any = false;
    if (!ReadOnce(ids, batch, &got_any)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (!batch.chunks.empty() || !batch.events.empty()) deliver_(std::move(batch));
    // A read that found entries is followed by a short pause, so the next one takes a batch instead of the
    // one or two entries that came meanwhile: a tenth of the reads under load for a few ms of latency.
    if (got_any && !config_.redis.cluster) std::this_thread::sleep_for(std::chrono::milliseconds(kBatchPauseMs));
  }
}

}  // namespace streamfleet::live
