#include "queue-worker/attempt_runner.h"

#include <condition_variable>
#include <mutex>
#include <thread>

namespace streamfleet::worker {

namespace {

using Clk = std::chrono::steady_clock;

std::atomic<int64_t> g_abandoned{0};

// Everything an attempt's thread touches. Shared with the slot, and owned by the thread alone once
// abandoned, so nothing it uses can die under it.
struct Attempt {
  Attempt(const Handler& h, const v1::TaskEnvelope& t, std::shared_ptr<const Config> c)
      : handler(h), task(t), config(std::move(c)) {}
  Handler handler;
  v1::TaskEnvelope task;
  std::shared_ptr<const Config> config;  // one copy per runner, shared by its attempts
  std::unique_ptr<RedisClient> redis;
  std::atomic<bool> cancelled{false};
  Clk::time_point deadline = Clk::time_point::max();

  std::mutex mu;
  std::condition_variable cv;
  bool done = false;         // guarded by mu
  bool abandoned = false;    // guarded by mu
  Status status;             // guarded by mu
  std::string result;        // guarded by mu
};

void RunAttempt(const std::shared_ptr<Attempt>& a) {
  TaskContext ctx{a->task, *a->redis, *a->config, ""};
  ctx.cancelled = &a->cancelled;
  ctx.deadline = a->deadline;
  Status s;
  // No exception leaves a handler: it is the attempt's error.
  try {
    s = a->handler(ctx);
  } catch (const std::exception& e) {
    s = Status::Internal(std::string("handler threw: ") + e.what());
  } catch (...) {
    s = Status::Internal("handler threw a non-exception");
  }
  std::lock_guard<std::mutex> l(a->mu);
  a->done = true;
  a->status = std::move(s);
  a->result = std::move(ctx.result);
  if (a->abandoned) g_abandoned.fetch_sub(1);
  a->cv.notify_all();
}

}  // namespace

// The slot's attempt thread, kept from attempt to attempt: creating a thread per task cost more than a
// no-op task itself. Shared with the thread, so an abandoned executor outlives its runner.
struct AttemptRunner::Executor {
  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<Attempt> job;  // guarded by mu
  bool quit = false;             // guarded by mu
  std::thread thread;

  static void Loop(const std::shared_ptr<Executor>& e) {
    while (true) {
      std::shared_ptr<Attempt> a;
      {
        std::unique_lock<std::mutex> l(e->mu);
        e->cv.wait(l, [&] { return e->quit || e->job != nullptr; });
        if (e->job == nullptr) return;  // quit with nothing to run
        a = std::move(e->job);
      }
      RunAttempt(a);
      std::lock_guard<std::mutex> l(e->mu);
      if (e->quit) return;  // abandoned while running: this thread ends with its attempt
    }
  }
};

AttemptRunner::~AttemptRunner() {
  if (!executor_) return;
  {
    std::lock_guard<std::mutex> l(executor_->mu);
    executor_->quit = true;
  }
  executor_->cv.notify_all();
  executor_->thread.join();
}

int64_t AttemptRunner::AbandonedNow() { return g_abandoned.load(); }

AttemptRunner::Outcome AttemptRunner::Run(const Handler& handler, const v1::TaskEnvelope& task, const Config& config,
                                          const Options& opts, const std::function<bool()>& heartbeat) {
  if (!config_) config_ = std::make_shared<const Config>(config);
  auto a = std::make_shared<Attempt>(handler, task, config_);
  a->redis = spare_ ? std::move(spare_) : RedisClient::Lazy(redis_config_);
  const Clk::time_point start = Clk::now();
  if (opts.timeout_ms > 0) a->deadline = start + std::chrono::milliseconds(opts.timeout_ms);
  const auto beat = std::chrono::milliseconds(std::max<int64_t>(1, opts.heartbeat_ms));
  if (!executor_) {
    executor_ = std::make_shared<Executor>();
    executor_->thread = std::thread([e = executor_] { Executor::Loop(e); });
  }
  {
    std::lock_guard<std::mutex> el(executor_->mu);
    executor_->job = a;
  }
  executor_->cv.notify_one();

  Outcome out;
  Clk::time_point next_beat = start + beat;
  Clk::time_point give_up = Clk::time_point::max();  // set once the attempt is cancelled
  std::unique_lock<std::mutex> l(a->mu);
  while (!a->done) {
    Clk::time_point wake = std::min(next_beat, a->cancelled.load() ? give_up : a->deadline);
    if (a->cv.wait_until(l, wake, [&] { return a->done; })) break;
    Clk::time_point now = Clk::now();
    if (now >= next_beat && !out.lease_lost) {
      l.unlock();
      out.lease_lost = !heartbeat();
      l.lock();
      next_beat = now + beat;
    }
    if (!out.timed_out && now >= a->deadline) out.timed_out = true;
    if ((out.timed_out || out.lease_lost) && !a->cancelled.load()) {
      a->cancelled.store(true);
      give_up = now + std::chrono::milliseconds(opts.grace_ms);
    } else if (a->cancelled.load() && now >= give_up && !a->done) {
      a->abandoned = true;
      g_abandoned.fetch_add(1);
      l.unlock();
      {
        std::lock_guard<std::mutex> el(executor_->mu);
        executor_->quit = true;  // its thread ends when the handler finally returns
      }
      executor_->thread.detach();
      executor_.reset();
      out.abandoned = true;
      out.status = Status::DeadlineExceeded("timeout: still running " + std::to_string(opts.grace_ms) +
                                            "ms after it was cancelled; handler abandoned");
      return out;
    }
  }
  l.unlock();
  spare_ = std::move(a->redis);
  if (out.timed_out) {
    out.status = Status::DeadlineExceeded("timeout: ran longer than " + std::to_string(opts.timeout_ms) + "ms");
  } else {
    out.status = std::move(a->status);
    out.result = std::move(a->result);
  }
  return out;
}

}  // namespace streamfleet::worker
