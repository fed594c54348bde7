#include "streamfleet/live/live_hub.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "chunk_tail.h"
#include "row_read_budget.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/time.h"
#include "streamfleet/chunks/buffer_element.h"
#include "streamfleet/live/generation_feed.h"
#include "streamfleet/live/sse_events.h"
#include "streamfleet/redis/stream_admin.h"

namespace streamfleet::live {

LiveOptions LiveOptions::FromConfig(const Config& c) {
  LiveOptions o;
  o.keepalive_ms = c.live_keepalive_ms;
  o.progress_ms = c.live_progress_ms;
  o.max_buffered_bytes = c.live_max_buffered_bytes;
  o.slow_reader_ms = c.live_slow_reader_ms;
  o.start_wait_ms = c.live_start_wait_ms;
  o.restart_wait_ms = c.live_restart_wait_ms;
  o.max_stream_age_ms = c.live_max_stream_age_ms;
  o.max_element_bytes = c.max_generation_bytes;
  o.org_max_held_bytes = c.live_org_max_held_bytes;
  return o;
}

namespace {

constexpr int64_t kTickMs = 20;
// Streams with nothing new are looked at only this often (keep-alives, clients gone, start waits): with
// thousands of idle streams, walking them all every tick cost a sixth of a core (docs/performance.md).
constexpr int64_t kFullPassMs = 250;
// A generation just opened, or a reader held at a gap, re-reads its buffer this often instead of every
// resync_ms: what the tail may have missed (read before the generation was watched, or before the tail
// started) arrives in a tenth of a second.
constexpr int64_t kFastResyncMs = 100;
constexpr int64_t kYoungMs = 2000;
// Failed row reads (one per resync) after which a compacted stream whose text is all here ends without the row's
// facts (chunk count, json_valid, trigger).
constexpr int kRowTriesForInfo = 3;
constexpr size_t kRecentEvents = 10000;  // events kept in memory for the events route; older ones: XRANGE
constexpr int kEventsPage = 500;
// Pages of the events stream read for readers behind the tail's window, per tick and for all of them: each
// read waits on Redis on the hub's thread, and thousands of readers resuming from far back (one organization's
// `?after=0`) would otherwise stall every organization's streams for as long as they catch up.
constexpr int kCatchUpPagesPerTick = 4;
// The failure's reason when only the control hash says the generation failed (the row would say why).
constexpr const char* kFailedBeforeFirstChunk = "its producer gave up (no reason recorded)";


// One open stream and what it was last sent.
struct Reader {
  std::shared_ptr<HttpStream> stream;
  std::shared_ptr<void> hold;  // what the route holds for the stream's life (its organization's share)
  int64_t opened_ms = 0;
  int64_t last_write_ms = 0;
  int64_t behind_since_ms = 0;  // 0: not behind
  bool done = false;
};

struct GenReader : Reader {
  int64_t next_seq = 0;
  uint32_t attempt = 0;      // the attempt next_seq is of (a reader of an earlier one is sent a reset)
  bool attempt_known = false;  // false: the client did not say (from_seq alone): it takes the current one
  size_t row_sent = 0;       // bytes of the row's text sent (a generation served from its row)
  bool row_started = false;  // its first text event went out
  // Not yet sent the generation's progress. Progress goes to every reader when it changes, so a reader that
  // joins while it does not (a second tab, a reconnect) would see none until the next chunk, or ever.
  bool progress_due = true;
};

struct EventsReader : Reader {
  int64_t org = 0;
  std::string last_id;  // "" until placed (from now on)
};

// A watched generation.
struct Watched {
  GenerationFeed feed;
  std::vector<GenReader> readers;
  std::string scenario;        // from the control hash ("" unknown, "0" none)
  int64_t list_read = 0;       // buffer list elements read so far (the list only grows until it expires or is reset)
  int64_t next_resync_ms = 0;
  int64_t ctl_read_ms = -1;    // when the control hash (and its attempt) was last read
  bool ctl_wanted = false;     // a reader waits for that read (it may be on a later attempt than the feed)
  int64_t since_ms = 0;        // when it was first watched (the start wait)
  bool exists = false;         // something of its current attempt was seen in Redis
  int64_t restarted_ms = 0;    // when the feed learned of its current attempt or of a reset since (the start wait)
  std::string resets;          // the control hash's reset count when last read ("" before the first read)
  bool compacted = false;      // the control hash says so, or a generation.compacted event
  bool have_info = false;
  CompactedInfo info;
  bool row_checked = false;
  bool failure_seen = false;   // a generation.failed came: the row is read whatever attempt the feed is on
  bool row_error_logged = false;
  int row_failures = 0;  // reads of the row that failed while only its facts were wanted
  std::optional<CompactedRow> row;  // served whole: the buffer is gone
  std::optional<std::string> failed;  // failed before its first chunk (its row says so): why
  int64_t last_progress_ms = 0;  // 0: no progress event sent yet
  FeedProgress progress_sent;
  bool dirty = true;   // something changed: pump its readers this tick
  bool behind = false; // a reader is held back by its buffer: pump every tick until it catches up
};

// The producer started over (a later attempt) and has written nothing of it yet: a retry's backoff.
bool Restarting(const Watched& w) { return !w.exists && w.feed.attempt() > 0; }

struct Inbox {
  std::vector<std::pair<GenerationKey, GenReader>> gen_readers;
  std::vector<EventsReader> event_readers;
  std::vector<TailBatch> batches;
};

}  // namespace

struct LiveHub::Impl {
  Impl(const Config& c, LiveOptions o, RowReader r, prometheus::Registry* registry)
      : config(c), options(o), rows(std::move(r)), keys(KeySchema::FromConfig(c)), redis(RedisClient::Lazy(c.redis)) {
    if (registry != nullptr) {
      auto& streams = prometheus::BuildGauge()
                          .Name("streamfleet_ingest_live_streams")
                          .Help("Open live streams (server-sent events), by route")
                          .Register(*registry);
      gen_streams = &streams.Add({{"route", "generation"}});
      event_streams = &streams.Add({{"route", "events"}});
      sent = &prometheus::BuildCounter()
                  .Name("streamfleet_ingest_live_events_total")
                  .Help("Server-sent events written to live streams (chunks, progress, lifecycle events)")
                  .Register(*registry)
                  .Add({});
      closed = &prometheus::BuildCounter()
                    .Name("streamfleet_ingest_live_closed_total")
                    .Help("Live streams the server ended, by reason")
                    .Register(*registry);
    }
    tail = std::make_unique<ChunkTail>(config, options.tail_block_ms, [this](TailBatch b) {
      {
        std::lock_guard<std::mutex> lock(mu);
        inbox.batches.push_back(std::move(b));
      }
      cv.notify_one();
    });
    thread = std::thread([this] { Run(); });
  }

  void Run();
  void TakeInbox(int64_t now);
  void ApplyBatch(TailBatch& b);
  // The producer started the text over: what the feed and the buffer reads held is the earlier attempt's.
  void RestartAttempt(Watched& w, uint32_t attempt);
  void Resync(int64_t now);
  void PumpGeneration(Watched& w, GenReader& r, int64_t now);
  void PumpRow(Watched& w, GenReader& r, int64_t now);
  // A reader that still has more than its buffer budget to take: fine for a while, closed after
  // LIVE_SLOW_READER_TIMEOUT (it resumes from its last id).
  void HoldBack(Watched& w, GenReader& r, int64_t now);
  void PumpEvents(EventsReader& r, int64_t now);
  void Housekeep(int64_t now, bool full);
  bool Send(Reader& r, std::string bytes, int64_t now);
  void Close(Reader& r, const char* reason, const std::string& detail, int64_t now);
  void Finish(Reader& r, std::string last, const char* reason, int64_t now);
  void CapHeldText(int64_t now);
  // LIVE_MAX_STREAM_AGE: a plain end; the client reconnects from its last id (to any replica).
  void EndIfOld(Reader& r, int64_t now) {
    if (options.max_stream_age_ms > 0 && now - r.opened_ms >= options.max_stream_age_ms) Finish(r, "", "max_age", now);
  }
  void EndAll();

  const Config& config;
  const LiveOptions options;
  RowReader rows;
  KeySchema keys;
  std::unique_ptr<RedisClient> redis;  // the hub thread's reads
  std::unique_ptr<ChunkTail> tail;

  std::mutex mu;
  std::condition_variable cv;
  Inbox inbox;
  bool stop = false;
  std::thread thread;

  // Hub thread only.
  std::map<GenerationKey, Watched> watched;
  std::vector<EventsReader> event_readers;
  std::deque<TailEvent> recent;  // every event with an id after covered_from, in order
  std::string covered_from;      // "" until the tail is positioned
  uint64_t epoch = 0;
  bool watch_set_dirty = false;
  bool events_dirty = true;      // new events (or readers): pump the events readers this tick
  int catch_up_pages_left = 0;   // this tick's (kCatchUpPagesPerTick)
  size_t events_first = 0;       // the event reader pumped first this tick: turns, so catching up is shared
  int64_t next_full_pass_ms = 0;

  prometheus::Gauge* gen_streams = nullptr;
  prometheus::Gauge* event_streams = nullptr;
  prometheus::Counter* sent = nullptr;
  prometheus::Family<prometheus::Counter>* closed = nullptr;
};

bool LiveHub::Impl::Send(Reader& r, std::string bytes, int64_t now) {
  if (r.done) return false;
  if (!r.stream->Write(std::move(bytes))) {
    r.done = true;  // the client left
    return false;
  }
  r.last_write_ms = now;
  return true;
}

void LiveHub::Impl::Finish(Reader& r, std::string last, const char* reason, int64_t now) {
  if (r.done) return;
  if (!last.empty()) Send(r, std::move(last), now);
  r.stream->End();
  r.done = true;
  if (closed) closed->Add({{"reason", reason}}).Increment();
}

void LiveHub::Impl::Close(Reader& r, const char* reason, const std::string& detail, int64_t now) {
  Finish(r, ClosingEvent(reason, detail), reason, now);
}

void LiveHub::Impl::TakeInbox(int64_t now) {
  Inbox in;
  {
    std::lock_guard<std::mutex> lock(mu);
    std::swap(in, inbox);
  }
  for (auto& [key, reader] : in.gen_readers) {
    auto [it, fresh] = watched.try_emplace(key);
    if (fresh) {
      it->second.since_ms = now;
      watch_set_dirty = true;
    }
    it->second.next_resync_ms = 0;  // read the buffer now: the replay
    it->second.dirty = true;
    reader.last_write_ms = reader.opened_ms = now;
    it->second.readers.push_back(std::move(reader));
  }
  if (watch_set_dirty) {
    // At once, not at the end of the tick: every chunk the tail reads from now on is kept.
    std::set<GenerationKey> set;
    for (const auto& [key, w] : watched) set.insert(key);
    tail->SetWatched(std::move(set));
    watch_set_dirty = false;
  }
  if (!in.event_readers.empty()) events_dirty = true;
  if (!in.gen_readers.empty() || !in.event_readers.empty()) tail->SetActive(true);  // now, not at the next pass
  for (auto& r : in.event_readers) {
    r.last_write_ms = r.opened_ms = now;
    event_readers.push_back(std::move(r));
  }
  for (auto& b : in.batches) ApplyBatch(b);
}

void LiveHub::Impl::ApplyBatch(TailBatch& b) {
  if (b.epoch != tail->epoch()) return;  // read before the tail was restarted
  if (b.positioned) {
    epoch = b.epoch;
    recent.clear();
    covered_from = b.events_from;
    events_dirty = true;
  }
  for (auto& e : b.events) {
    if (e.event.type == "generation.compacted") {
      auto it = watched.find({e.event.org, e.event.gen});
      // An earlier attempt's compaction (read late, the events stream being behind the chunk streams) does
      // not end the attempt the feed follows; a later attempt's starts the feed over first.
      if (it != watched.end() && e.event.attempt >= it->second.feed.attempt()) {
        Watched& w = it->second;
        if (e.event.attempt > w.feed.attempt()) {
          RestartAttempt(w, e.event.attempt);
          w.row_checked = false;  // its buffer may be gone already: then the row is the text
        }
        w.compacted = true;
        w.have_info = true;
        w.info = CompactedInfo{e.event.chunk_count, e.event.json_valid, e.event.trigger};
        w.next_resync_ms = 0;  // the final read of the buffer
      }
    }
    if (e.event.type == "generation.failed") {
      // The event does not say whether chunks were written before the failure (then they are finalized and
      // the text comes): the row does (provider_chunks, written before the event). Read it now.
      auto it = watched.find({e.event.org, e.event.gen});
      if (it != watched.end()) {
        it->second.row_checked = false;
        it->second.failure_seen = true;
        it->second.next_resync_ms = 0;
      }
    }
    recent.push_back(std::move(e));
    events_dirty = true;
  }
  // After the events: a generation.compacted of an earlier attempt read in the same batch as the next
  // attempt's first chunks must not end the next attempt's feed (RestartAttempt clears it; the control hash
  // says when the new attempt is compacted).
  for (auto& c : b.chunks) {
    auto it = watched.find({c.org, c.gen});
    if (it == watched.end()) continue;
    Watched& w = it->second;
    if (c.attempt < w.feed.attempt()) continue;  // the earlier attempt's, read late
    if (c.attempt > w.feed.attempt()) RestartAttempt(w, c.attempt);
    if (c.has_data) w.feed.Add(c.seq, std::move(c.data));
    if (c.total > 0) w.feed.NoteTotal(c.total);
    w.exists = true;
    w.dirty = true;
  }
  while (recent.size() > kRecentEvents) {
    covered_from = recent.front().id;
    recent.pop_front();
  }
}

void LiveHub::Impl::RestartAttempt(Watched& w, uint32_t attempt) {
  w.feed.Restart(attempt);
  w.list_read = 0;  // the list was deleted and is written again from seq 0
  w.scenario.clear();  // the next append binds it again
  w.exists = false;
  w.restarted_ms = SteadyClockMs();
  w.compacted = false;
  w.have_info = false;
  w.info = CompactedInfo{};
  w.row.reset();
  // The row, if any, is an earlier attempt's text: not served while this one is coming. A generation.failed
  // (no chunk of this attempt, for good; it may have come before this restart) or this attempt's compaction
  // reads it again.
  w.row_checked = !w.failure_seen;
  w.failed.reset();
  w.progress_sent = FeedProgress{};
  w.next_resync_ms = 0;
  w.dirty = true;
}

void LiveHub::Impl::Resync(int64_t now) {
  std::vector<Watched*> due;
  std::vector<GenerationKey> due_keys;
  for (auto& [key, w] : watched) {
    // An ended feed is read again only for a reader that may be on a later attempt.
    if (w.next_resync_ms <= now && (!w.feed.ended() || w.ctl_wanted) && !w.row) {
      due.push_back(&w);
      due_keys.push_back(key);
    }
  }
  if (due.empty()) return;
  // Round 1: the control hash (scenario: where the buffer is; state: compacted yet?; attempt: started over?).
  std::vector<std::vector<std::string>> cmds;
  for (const auto& [org, gen] : due_keys) {
    cmds.push_back({"HMGET", keys.ControlKey(GenerationId{org, 0, gen}), "scenario", "state", "attempt", "resets"});
  }
  auto ctl = redis->Pipeline(cmds);
  if (!ctl.ok()) {
    for (Watched* w : due) w->next_resync_ms = now + 200;  // Redis is down: the streams wait, with keep-alives
    return;
  }
  // Round 2: what the buffer list has beyond what was read of it, and the attempt again after it: when it is
  // still the one of round 1, no reset came in between, so the list read is that attempt's (a reset deletes
  // the list and counts the attempt up in one step). The keys share a slot, so a cluster keeps the order too.
  cmds.clear();
  std::vector<size_t> listed;
  std::vector<std::string> attempt_read(due.size());
  std::vector<bool> reread(due.size(), false);
  std::vector<bool> failed_ctl(due.size(), false);
  for (size_t i = 0; i < due.size(); ++i) {
    Watched& w = *due[i];
    const RedisValue& v = (*ctl)[i];
    if (v.is_array() && v.elements.size() == 4) {
      attempt_read[i] = v.elements[2].str;
      auto parsed = attempt_read[i].empty() ? std::optional<uint32_t>(0) : ParseAttempt(attempt_read[i]);
      if (!parsed) continue;
      const uint32_t attempt = *parsed;
      const bool bound = !v.elements[0].is_nil();
      // This read is newer than every tail batch applied so far, so it decides: a later attempt, or a lower
      // one in a new life of the control hash (it expired and the id started again; not a hash that is
      // merely gone, which says nothing).
      if (attempt > w.feed.attempt() || (attempt < w.feed.attempt() && bound)) RestartAttempt(w, attempt);
      // A reset that was no new attempt (nothing appended since the last): a retry that failed before its
      // first chunk, and another one coming after a backoff. The wait for the first chunk starts again.
      const std::string& resets = v.elements[3].str;
      if (!w.resets.empty() && resets != w.resets && Restarting(w)) w.restarted_ms = now;
      w.resets = resets;
      w.ctl_read_ms = now;
      w.ctl_wanted = false;
      if (attempt < w.feed.attempt()) continue;
      if (bound) {
        w.scenario = v.elements[0].str;
        w.exists = true;
      }
      if (v.elements[1].str == "compacted") w.compacted = true;
      if (v.elements[1].str == "failed" && !bound && !w.failed) {
        // generation.run gave up before this attempt's first chunk (ChunkWriter::MarkFailed). A viewer that
        // came after its generation.failed event went by learns it here: the row says why (read below), and
        // where there is no row to say it the hash is enough.
        failed_ctl[i] = true;
        w.failure_seen = true;
        w.row_checked = false;
        if (!rows) w.failed = kFailedBeforeFirstChunk;
      }
    }
    if (w.scenario.empty()) continue;
    int64_t scenario = 0;
    try {
      scenario = std::stoll(w.scenario);
    } catch (const std::exception&) {
      continue;
    }
    auto [org, gen] = due_keys[i];
    cmds.push_back({"LRANGE", keys.BufferKey(GenerationId{org, scenario, gen}), std::to_string(w.list_read), "-1"});
    cmds.push_back({"HGET", keys.ControlKey(GenerationId{org, 0, gen}), "attempt"});
    listed.push_back(i);
  }
  if (!cmds.empty()) {
    auto lists = redis->Pipeline(cmds);
    if (!lists.ok()) {
      for (Watched* w : due) w->next_resync_ms = now + 200;
      return;
    }
    for (size_t j = 0; j < listed.size(); ++j) {
      Watched& w = *due[listed[j]];
      const RedisValue& v = (*lists)[2 * j];
      const RedisValue& after = (*lists)[2 * j + 1];
      if (!v.is_array() || after.is_error() || after.str != attempt_read[listed[j]]) {
        reread[listed[j]] = true;  // reset meanwhile: read again next tick
        continue;
      }
      if (v.elements.empty() && w.list_read == 0 && w.compacted && w.feed.progress().received_chunks == 0) {
        // Compacted, and its buffer gone while the control hash lives on (GENERATION_DELETE_AFTER_COMPACT's
        // grace is shorter than the hash's TTL): the row is the text, as for a generation that has no hash.
        w.exists = false;
        w.row_checked = false;
        continue;
      }
      for (const RedisValue& e : v.elements) {
        ++w.list_read;
        BufferElementView element;
        if (!ParseBufferElement(e.str, &element)) continue;
        // The generation byte limit bounds a compressed element (a corrupt one is skipped: the compactor
        // counts it, and the feed holds its seq as a gap until compaction).
        auto text = BufferElementText(element, static_cast<size_t>(options.max_element_bytes));
        if (!text.ok()) continue;
        w.feed.Add(element.seq, std::move(*text));
        w.exists = true;
      }
    }
  }
  RowReadBudget row_reads;
  for (size_t i = 0; i < due.size(); ++i) {
    Watched& w = *due[i];
    w.dirty = true;
    bool waiting = now - w.since_ms < kYoungMs;
    for (const auto& r : w.readers) waiting = waiting || w.feed.GapAt(r.next_seq);
    w.next_resync_ms = now + (waiting ? std::min<int64_t>(kFastResyncMs, options.resync_ms) : options.resync_ms);
    if (reread[i]) {
      w.next_resync_ms = 0;
      continue;  // nothing of this read is to be trusted, compacted or not
    }
    auto [org, gen] = due_keys[i];
    bool need_row = (w.compacted && !w.have_info) || (!w.exists && !w.row_checked);
    if (need_row && rows && !row_reads.Take(org)) {
      w.next_resync_ms = now;  // this pass read its share of rows: the next pass, a tick later
      continue;
    }
    if (need_row && rows) {
      auto row = rows(org, gen, /*with_text=*/!w.exists);
      if (!row.ok()) {
        // Retried at the next resync; said once per watched generation (a database that is down, or has
        // no table yet, is not news every second).
        if (!w.row_error_logged) {
          SF_LOG_WARN("live stream of generation {}: reading its row: {}", gen, row.status().ToString());
          w.row_error_logged = true;
        }
        // The text is all here and only the row's facts were wanted: after a few tries it ends without them,
        // as without a database. A row that cannot be read (its artifact's store not configured here, a
        // corrupt column) kept the stream open for ever, re-read every second.
        if (w.compacted && w.exists && ++w.row_failures >= kRowTriesForInfo) w.feed.End(w.info);
        continue;
      }
      w.row_checked = true;
      if (row->has_value() && (*row)->failed) {
        if (!w.exists) w.failed = (*row)->error;
        continue;
      }
      if (failed_ctl[i] && !w.exists) {
        w.failed = kFailedBeforeFirstChunk;  // the row's write did not make it (best effort, like the event)
        continue;
      }
      if (row->has_value()) {
        w.have_info = true;
        w.info = CompactedInfo{(*row)->chunk_count, (*row)->json_valid, (*row)->trigger};
        if (!w.exists) {
          w.row = std::move(*row);  // compacted and its buffer gone: the row is all there is
          continue;
        }
      }
    }
    if (w.compacted) w.feed.End(w.info);
  }
}

void LiveHub::Impl::PumpGeneration(Watched& w, GenReader& r, int64_t now) {
  if (r.done) return;
  if (r.stream->closed()) {
    r.done = true;
    return;
  }
  if (w.row) {
    PumpRow(w, r, now);
    return;
  }
  if (r.attempt != w.feed.attempt() || !r.attempt_known) {
    // Which attempt is current is known once the control hash was read after the reader came (an ended feed
    // is not read again by itself: the reader asks). A client that did not say its attempt takes that one; a
    // client on an earlier attempt (or on one this generation never had) drops its chunks: they start again
    // at seq 0. One that has nothing is placed without the event.
    if (w.ctl_read_ms < r.opened_ms) {
      if (!w.ctl_wanted) w.next_resync_ms = 0;
      w.ctl_wanted = true;
      return;
    }
    if (!r.attempt_known) r.attempt = w.feed.attempt();
    r.attempt_known = true;
  }
  if (r.attempt != w.feed.attempt()) {
    if ((r.next_seq > 0 || r.row_started) && !Send(r, ResetEvent(w.feed.attempt()), now)) return;
    r.row_started = false;
    r.row_sent = 0;
    r.attempt = w.feed.attempt();
    r.next_seq = 0;
    r.progress_due = true;
  }
  if (w.failed && !w.exists) {
    // Failed before its first chunk: nothing will ever be compacted. Said now rather than after
    // LIVE_START_WAIT, with a reason the client can tell from a slow start (it should not reconnect).
    Close(r, "failed", "the generation failed before its first chunk: " + *w.failed, now);
    return;
  }
  const int64_t budget = options.max_buffered_bytes / 2;
  while (!r.done && w.feed.HasMoreFor(r.next_seq) && r.stream->buffered() < budget) {
    std::string out;
    // What fits what is left of the budget; an event larger than that only into an empty buffer, so a reader
    // holds at most the budget or one event, never both (a 1 MiB chunk of control characters is ~6 MiB of
    // JSON, per reader).
    w.feed.Take(&r.next_seq, static_cast<size_t>(budget - r.stream->buffered()), &out, r.stream->buffered() == 0);
    if (out.empty()) break;  // the next event waits for the buffer to drain
    if (sent) sent->Increment();
    Send(r, std::move(out), now);
  }
  if (r.done) return;
  if (w.feed.HasMoreFor(r.next_seq)) {
    HoldBack(w, r, now);  // behind by more than the buffer: a replay, a hiccup
    return;
  }
  r.behind_since_ms = 0;
  if (r.progress_due && !w.feed.ended()) {
    // Right after its replay: the value the other readers were last sent (a newer one goes to all readers
    // at the next progress interval, this one included).
    r.progress_due = false;
    if (w.last_progress_ms > 0) Send(r, ProgressEvent(w.progress_sent), now);
  }
  if (w.feed.ended()) {
    Finish(r, CompactedEvent(w.feed.compacted()), "compacted", now);
  } else if (!w.exists && options.start_wait_ms >= 0 &&
             now - std::max(r.opened_ms, Restarting(w) ? w.restarted_ms + options.restart_wait_ms : w.since_ms) >
                 options.start_wait_ms) {
    // From the later of the reader's arrival and the generation's watch (or restart): a reader that came 28 s
    // into another's wait is given its own LIVE_START_WAIT, not the 2 s left of that one.
    Close(r, "not_found",
          "no chunk of this generation within " + std::to_string(options.start_wait_ms) + " ms (LIVE_START_WAIT)", now);
  }
}

void LiveHub::Impl::HoldBack(Watched& w, GenReader& r, int64_t now) {
  w.behind = true;
  if (r.behind_since_ms == 0) r.behind_since_ms = now;
  if (now - r.behind_since_ms > options.slow_reader_ms) {
    Close(r, "slow_reader",
          "more than " + std::to_string(options.max_buffered_bytes / 2) + " bytes waited for this client for " +
              std::to_string(options.slow_reader_ms) + " ms; reconnect with Last-Event-ID",
          now);
  }
}

void LiveHub::Impl::PumpRow(Watched& w, GenReader& r, int64_t now) {
  // The text of a row (up to INGEST_MAX_GENERATION_BYTES) in pieces, within the reader's buffer like chunk
  // events: in one event, every reader of a large row held a copy of it, escaped, past LIVE_MAX_BUFFERED_BYTES.
  // A piece is at most a sixth of the budget, since JSON escaping can make one byte six.
  const std::string& text = w.row->text;
  const int64_t budget = options.max_buffered_bytes / 2;
  const size_t piece = static_cast<size_t>(std::max<int64_t>(256, budget / 6));
  bool took = false;
  while (!r.done && (!r.row_started || r.row_sent < text.size()) && r.stream->buffered() < budget) {
    took = true;
    size_t n = TextPieceLength(text, r.row_sent, piece);
    // The first piece replaces whatever the client has: it may have resumed with part of the text (chunk
    // boundaries are gone from a row), or reconnected without an id after some pieces (they carry none).
    if (sent) sent->Increment();
    Send(r, RowTextEvent(std::string_view(text).substr(r.row_sent, n), !r.row_started), now);
    r.row_started = true;
    r.row_sent += n;
  }
  if (r.done) return;
  if (r.row_sent < text.size()) {
    // A row cannot be resumed part way (its pieces carry no id: a reconnect starts it again), so only a
    // reader that took nothing for LIVE_SLOW_READER_TIMEOUT is closed, not one still reading a large row.
    if (took) r.behind_since_ms = 0;
    HoldBack(w, r, now);
    return;
  }
  r.behind_since_ms = 0;
  Finish(r, CompactedEvent(w.info), "compacted", now);
}

void LiveHub::Impl::PumpEvents(EventsReader& r, int64_t now) {
  if (r.done) return;
  if (r.stream->closed()) {
    r.done = true;
    return;
  }
  if (covered_from.empty()) return;  // the tail is not positioned yet
  if (r.last_id.empty()) r.last_id = recent.empty() ? covered_from : recent.back().id;  // from now on
  const int64_t budget = options.max_buffered_bytes / 2;
  if (r.stream->buffered() >= budget) {
    events_dirty = true;  // look again next tick
    if (r.behind_since_ms == 0) r.behind_since_ms = now;
    if (now - r.behind_since_ms > options.slow_reader_ms) {
      Close(r, "slow_reader", "this client did not read its events for " + std::to_string(options.slow_reader_ms) + " ms", now);
    }
    return;
  }
  r.behind_since_ms = 0;
  std::string out;
  if (CompareStreamIds(r.last_id, covered_from) < 0) {
    // Older than what the tail saw: a page of the stream itself, if this tick has one left.
    if (catch_up_pages_left <= 0) {
      events_dirty = true;
      return;
    }
    --catch_up_pages_left;
    auto page = redis->Command({"XRANGE", keys.EventsStream(), "(" + r.last_id, "+", "COUNT", std::to_string(kEventsPage)});
    if (!page.ok()) return;  // next tick
    auto entries = ParseEntries(keys.EventsStream(), *page);
    for (const auto& e : entries) {
      r.last_id = e.id;
      auto ev = DecodeFleetEvent(e);
      if (ev.ok() && ev->org == r.org) out += SseEvent(ev->type, e.id, ev->json);
    }
    if (static_cast<int>(entries.size()) < kEventsPage && CompareStreamIds(r.last_id, covered_from) < 0) {
      r.last_id = covered_from;  // read to the end: nothing lies between
    }
    events_dirty = true;  // the rest (from memory) next tick
  } else {
    auto it = std::upper_bound(recent.begin(), recent.end(), r.last_id, [](const std::string& id, const TailEvent& e) {
      return CompareStreamIds(id, e.id) < 0;
    });
    for (; it != recent.end() && static_cast<int64_t>(out.size()) < budget; ++it) {
      r.last_id = it->id;
      if (it->event.org == r.org) out += SseEvent(it->event.type, it->id, it->event.json);
    }
  }
  if (!out.empty()) {
    if (sent) sent->Increment();
    Send(r, std::move(out), now);
  }
}

// A watched generation holds its text in this process (its feed's events, or its row served whole), once for
// all its readers. Past LIVE_ORG_MAX_HELD_BYTES for one organization, the streams of its most recently watched
// generations are closed (org_text_limit; they resume later) until it is under again or down to one
// generation, which is always served (one generation is bounded by INGEST_MAX_GENERATION_BYTES). Without it
// one organization's streams of many large generations could take all of ingest's memory, and every other
// organization's requests with it. Closed readers are erased, and their generations unwatched, by Housekeep.
void LiveHub::Impl::CapHeldText(int64_t now) {
  struct Held {
    int64_t since_ms;
    int64_t bytes;
    Watched* w;
  };
  std::map<int64_t, std::vector<Held>> by_org;
  for (auto& [key, w] : watched) {
    if (w.readers.empty()) continue;
    const int64_t bytes = w.feed.held_bytes() + (w.row ? static_cast<int64_t>(w.row->text.size()) : 0);
    by_org[key.first].push_back({w.since_ms, bytes, &w});
  }
  for (auto& [org, gens] : by_org) {
    int64_t total = 0;
    for (const auto& g : gens) total += g.bytes;
    if (total <= options.org_max_held_bytes || gens.size() < 2) continue;
    std::sort(gens.begin(), gens.end(), [](const Held& a, const Held& b) { return a.since_ms > b.since_ms; });
    for (size_t i = 0; i + 1 < gens.size() && total > options.org_max_held_bytes; ++i) {
      for (auto& r : gens[i].w->readers) {
        Close(r, "org_text_limit",
              "this organization's live streams hold more than " + std::to_string(options.org_max_held_bytes) +
                  " bytes of text on this server (LIVE_ORG_MAX_HELD_BYTES); reconnect later with Last-Event-ID",
              now);
      }
      total -= gens[i].bytes;
    }
  }
}

void LiveHub::Impl::Housekeep(int64_t now, bool full) {
  if (full) CapHeldText(now);
  for (auto& [key, w] : watched) {
    if (!full && !w.dirty) continue;
    FeedProgress p = w.feed.progress();
    bool changed = p.received_chunks != w.progress_sent.received_chunks || p.total_chunks != w.progress_sent.total_chunks;
    if (changed && now - w.last_progress_ms >= options.progress_ms && !w.feed.ended()) {
      w.progress_sent = p;
      w.last_progress_ms = now;
      std::string ev = ProgressEvent(p);
      for (auto& r : w.readers) Send(r, ev, now);
    }
    if (full) {
      for (auto& r : w.readers) {
        if (!r.done && now - r.last_write_ms >= options.keepalive_ms) Send(r, std::string(kKeepAlive), now);
        EndIfOld(r, now);
      }
    }
    std::erase_if(w.readers, [](const GenReader& r) { return r.done; });
    w.dirty = false;
  }
  if (!full) return;
  for (auto it = watched.begin(); it != watched.end();) {
    if (it->second.readers.empty()) {
      it = watched.erase(it);
      watch_set_dirty = true;
    } else {
      ++it;
    }
  }
  for (auto& r : event_readers) {
    if (!r.done && now - r.last_write_ms >= options.keepalive_ms) Send(r, std::string(kKeepAlive), now);
    EndIfOld(r, now);
  }
  std::erase_if(event_readers, [](const EventsReader& r) { return r.done; });
  if (watch_set_dirty) {
    std::set<GenerationKey> set;
    for (const auto& [key, w] : watched) set.insert(key);
    tail->SetWatched(std::move(set));
    watch_set_dirty = false;
  }
  bool active = !watched.empty() || !event_readers.empty();
  if (!active) covered_from.clear();  // a restarted tail starts from the streams' ends again
  tail->SetActive(active);
  if (gen_streams) {
    size_t n = 0;
    for (const auto& [key, w] : watched) n += w.readers.size();
    gen_streams->Set(static_cast<double>(n));
    event_streams->Set(static_cast<double>(event_readers.size()));
  }
}

void LiveHub::Impl::EndAll() {
  TakeInbox(SteadyClockMs());
  for (auto& [key, w] : watched) {
    for (auto& r : w.readers) Finish(r, "", "server_stopping", SteadyClockMs());
  }
  for (auto& r : event_readers) Finish(r, "", "server_stopping", SteadyClockMs());
  watched.clear();
  event_readers.clear();
}

void LiveHub::Impl::Run() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(kTickMs), [&] {
        return stop || !inbox.gen_readers.empty() || !inbox.event_readers.empty() || !inbox.batches.empty();
      });
      if (stop) break;
    }
    int64_t now = SteadyClockMs();
    TakeInbox(now);
    Resync(now);
    bool full = now >= next_full_pass_ms;
    if (full) next_full_pass_ms = now + kFullPassMs;
    {
      // This pass's events to every reader reach the HTTP loop at once: one wake-up, not up to one per
      // event, since the loop empties its queue between our writes. Nothing in here waits on Redis;
      // PumpEvents, which may read a page of events, runs outside any batch.
      HttpWriteBatch batch;
      for (auto& [key, w] : watched) {
        if (!full && !w.dirty && !w.behind) continue;
        w.behind = false;
        for (auto& r : w.readers) PumpGeneration(w, r, now);
        w.dirty = true;  // for Housekeep: progress, finished readers
      }
    }
    if (full || events_dirty) {
      events_dirty = false;
      catch_up_pages_left = kCatchUpPagesPerTick;
      const size_t n = event_readers.size();
      for (size_t k = 0; k < n; ++k) PumpEvents(event_readers[(events_first + k) % n], now);
      events_first = n == 0 ? 0 : (events_first + 1) % n;
    }
    HttpWriteBatch batch;  // progress events and keep-alives, as above
    Housekeep(now, full);
  }
  tail->Stop();
  EndAll();
}

LiveHub::LiveHub(const Config& config, LiveOptions options, RowReader rows, prometheus::Registry* registry)
    : impl_(std::make_unique<Impl>(config, options, std::move(rows), registry)) {}

LiveHub::~LiveHub() { Stop(); }

void LiveHub::WatchGeneration(std::shared_ptr<HttpStream> stream, int64_t org, int64_t gen, Resume from,
                              std::shared_ptr<void> hold) {
  GenReader r;
  r.stream = std::move(stream);
  r.hold = std::move(hold);
  r.next_seq = from.after_seq + 1;
  r.attempt = from.attempt;
  r.attempt_known = from.attempt_known;
  r.stream->Write(std::string(kStreamPreamble));
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stop) {
      r.stream->End();
      return;
    }
    impl_->inbox.gen_readers.emplace_back(GenerationKey{org, gen}, std::move(r));
  }
  impl_->cv.notify_one();
}

void LiveHub::WatchEvents(std::shared_ptr<HttpStream> stream, int64_t org, std::string after_id,
                          std::shared_ptr<void> hold) {
  EventsReader r;
  r.stream = std::move(stream);
  r.hold = std::move(hold);
  r.org = org;
  r.last_id = std::move(after_id);
  r.stream->Write(std::string(kStreamPreamble));
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stop) {
      r.stream->End();
      return;
    }
    impl_->inbox.event_readers.push_back(std::move(r));
  }
  impl_->cv.notify_one();
}

void LiveHub::Stop() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_one();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace streamfleet::live
