#include "queue-worker/watchdog.h"

#include <algorithm>

#include "streamfleet/base/log.h"
#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_limits.h"
#include "streamfleet/redis/stream_admin.h"

namespace streamfleet::worker {

namespace {
std::atomic<int64_t> g_abandoned{0};
}  // namespace

int64_t Watchdog::AbandonedNow() { return g_abandoned.load(); }
void Watchdog::AbandonedThreadEnded() { g_abandoned.fetch_sub(1); }

Watchdog::Watchdog(const RedisConfig& redis, Options opts, Hooks hooks)
    : redis_config_(redis), opts_(std::move(opts)), hooks_(std::move(hooks)) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> l(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::Watch(const std::shared_ptr<SlotWatch>& slot) {
  std::lock_guard<std::mutex> l(mu_);
  slots_.push_back(slot);
  if (!thread_.joinable()) {
    redis_ = RedisClient::Lazy(redis_config_);
    thread_ = std::thread([this] { Loop(); });
  }
}

std::vector<std::shared_ptr<SlotWatch>> Watchdog::Slots() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::shared_ptr<SlotWatch>> out;
  for (auto& w : slots_) {
    if (auto s = w.lock()) out.push_back(std::move(s));
  }
  return out;
}

void Watchdog::Loop() {
  const auto tick = std::chrono::milliseconds(std::max<int64_t>(1, opts_.tick_ms));
  std::unique_lock<std::mutex> l(mu_);
  while (!quit_) {
    std::vector<std::shared_ptr<SlotWatch>> slots;
    slots_.erase(std::remove_if(slots_.begin(), slots_.end(),
                                [&](const std::weak_ptr<SlotWatch>& w) {
                                  auto s = w.lock();
                                  if (s == nullptr) return true;
                                  slots.push_back(std::move(s));
                                  return false;
                                }),
                 slots_.end());
    l.unlock();
    std::vector<Beat> beats;
    for (const auto& s : slots) {
      Beat beat;
      std::optional<Handoff> handoff;
      Check(s, WatchClock::now(), beat, handoff);
      // The replacement starts before any heartbeat round trip: concurrency comes back at once.
      if (handoff) handoff->replace(std::move(handoff->attempt));
      if (beat.slot) beats.push_back(std::move(beat));
    }
    for (const Beat& b : beats) SendBeat(b);
    slots.clear();  // not kept alive while sleeping: a slot that ends is pruned next tick
    l.lock();
    cv_.wait_for(l, tick, [&] { return quit_; });
  }
}

void Watchdog::Check(const std::shared_ptr<SlotWatch>& s, WatchClock::time_point now, Beat& beat,
                     std::optional<Handoff>& handoff) {
  std::lock_guard<std::mutex> l(s->mu);
  RunningAttempt* a = s->running;
  if (a != nullptr) {
    if (!a->timed_out && now >= a->deadline) a->timed_out = true;
    if ((a->timed_out || a->lease_lost) && !a->cancelled.load()) {
      a->cancelled.store(true);
      a->give_up = now + std::chrono::milliseconds(opts_.grace_ms);
    } else if (a->cancelled.load() && now >= a->give_up && s->replace) {
      // The handler ignored cancellation for the whole grace: give its task and its slot to a new thread.
      a->abandoned = true;
      g_abandoned.fetch_add(1);
      handoff.emplace();
      handoff->replace = s->replace;
      AbandonedAttempt& h = handoff->attempt;
      h.stream = a->entry->stream;
      h.id = a->entry->id;
      h.task = *a->task;
      h.times_delivered = a->times_delivered;
      h.timeout_ms = a->timeout_ms;
      h.grace_ms = opts_.grace_ms;
      h.started = a->started;
      h.abandoned_at = now;
      h.timed_out = a->timed_out;
      h.lease_lost = a->lease_lost;
      s->running = nullptr;
      a = nullptr;
    }
  }
  const bool holds = a != nullptr || !s->held.empty();
  if (!holds || now - s->leases_fresh_at < std::chrono::milliseconds(opts_.heartbeat_ms)) return;
  s->leases_fresh_at = now;
  beat.slot = s;
  if (a != nullptr && !a->lease_lost) {  // a lost lease is not renewed again
    beat.attempt = s->attempts;
    beat.leases.push_back({a->entry->stream, a->entry->id});
    beat.permit_key = a->permit_key;
    beat.permit_token = a->permit_token;
    beat.permit_lease_ms = a->permit_lease_ms;
  }
  for (const StreamEntry& e : s->held) beat.leases.push_back({e.stream, e.id});
}

void LogReadAheadTakenOver(const std::string& stream, const std::string& id) {
  SF_LOG_WARN("task entry {} of {} was taken over by another worker while read ahead here: not run here", id,
              stream);
}

void Watchdog::DropHeld(SlotWatch& s, const Lease& lease) {
  std::lock_guard<std::mutex> l(s.mu);
  auto it = std::find_if(s.held.begin(), s.held.end(),
                         [&](const StreamEntry& e) { return e.id == lease.id && e.stream == lease.stream; });
  if (it == s.held.end()) return;  // started meanwhile (its attempt's own lease check decides) or gone
  LogReadAheadTakenOver(lease.stream, lease.id);
  s.held.erase(it);
}

void Watchdog::SendBeat(const Beat& b) {
  const WatchClock::time_point sent = WatchClock::now();
  bool answered = true;  // every renewal got an answer (owned or not): the held leases are known from `sent`
  for (size_t i = 0; i < b.leases.size(); ++i) {
    auto owned = ExtendLease(*redis_, b.leases[i].stream, opts_.group, b.slot->consumer, b.leases[i].id);
    answered = answered && owned.ok();
    if (i != 0 || b.attempt == 0) {
      // A read-ahead task whose lease ran out (Redis away for longer than VISIBILITY_TIMEOUT: no renewal got
      // through) and that another worker's housekeeper claimed since, or that is no longer pending: it is not
      // run here as well. A Redis error says nothing: the next period tries again.
      if (owned.ok() && !*owned) DropHeld(*b.slot, b.leases[i]);
      continue;
    }
    if (owned.ok() && *owned && hooks_.lease_extended) hooks_.lease_extended();
    if (owned.ok() && *owned && !b.permit_key.empty()) {
      // The permit lives as long as the task keeps its lease: without this, one running past the permit's lease
      // (TASK_LIMITS without a TASK_TIMEOUT: 10 minutes) lost its place and another task of the type started.
      // XX: a permit already released (the task just ended) is not taken again. An error: the next beat.
      (void)ExtendTaskPermit(*redis_, b.permit_key, b.permit_token,
                             WallClockMs() + b.permit_lease_ms);
    }
    // A Redis error is not a lost lease: the next heartbeat tries again within the visibility timeout.
    if (!owned.ok() || *owned) continue;
    std::lock_guard<std::mutex> l(b.slot->mu);
    RunningAttempt* a = b.slot->running;
    if (a == nullptr || b.slot->attempts != b.attempt || a->lease_lost) continue;  // that attempt ended
    // Another worker owns the task now: cancel the attempt; the slot will neither ack nor retry it.
    a->lease_lost = true;
    if (!a->cancelled.load()) {
      a->cancelled.store(true);
      a->give_up = WatchClock::now() + std::chrono::milliseconds(opts_.grace_ms);
    }
  }
  if (answered && !b.leases.empty()) {
    std::lock_guard<std::mutex> l(b.slot->mu);
    b.slot->leases_confirmed_at = std::max(b.slot->leases_confirmed_at, sent);
  }
}

}  // namespace streamfleet::worker
