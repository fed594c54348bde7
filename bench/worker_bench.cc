// Queue-worker benchmark: no-op tasks through the real streamfleet-queue-worker binary, against the raw
// stream ceiling, on one Redis. Prints key=value result lines (bench/run.sh makes the table; BullMQ runs
// beside it through ../shared/anchors/03_bullmq.cjs, Sidekiq through 06_sidekiq.py).
//
//   worker_bench --redis-port P --worker-bin PATH [--tasks 50000] [--concurrency 8] [--producers 2]
//                [--latency-batch 50] [--latency-seconds 5] [--latency-rate R]
//                [--worker-redis-url rediss://...] [--process-only 1]
//
// Phases:
//   raw      a producer thread pipelines XADD (batches of 100) while a consumer does XREADGROUP COUNT 100 +
//            XACK: the XADD -> XREADGROUP -> XACK ceiling of this Redis on this machine.
//   enqueue  EnqueueTasks in batches of 1000 (the bulk API) and EnqueueTask one at a time.
//   process  the queue is paused, N tasks are enqueued, 1 or 2 worker processes start and report ready, the
//            queue is resumed and the clock runs until the group has read and acknowledged all N. Result
//            retention off (TASK_RESULT_TTL=0), then on (1 h) for the cost of keeping status hashes.
//   latency  one worker, tasks enqueued at half the measured peak rate for a few seconds by --producers
//            threads in paced batches; the p50/p99 of enqueue-to-start come from the worker's own histogram
//            (streamfleet_worker_task_wait_seconds on /metrics), with the CPU of producers, worker and Redis.
//            --latency-rate R skips raw/process and runs enqueue and latency at target R (to compare builds
//            at one rate, back to back).
// --process-only 1 runs only `process` with one worker (records off, then on); with --worker-redis-url the
// workers connect there (e.g. over TLS) while the bench enqueues and waits over the plain port.
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <thread>

#include "bench/bench_util.h"
#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_queue.h"

extern char** environ;

using namespace streamfleet;
using namespace streamfleet::bench;

namespace {

struct Options {
  int redis_port = 0;
  std::string worker_bin;
  int64_t tasks = 50000;
  int concurrency = 8;
  double latency_s = 5;
  int producers = 2;
  int64_t latency_batch = 50;
  // The workers' REDIS_URL (default redis://127.0.0.1:redis-port): e.g. the same server's TLS port, with
  // REDIS_TLS_CA in the environment, while the bench itself enqueues and watches over the plain port.
  std::string worker_redis_url;
};

int FreePort() {
  // Ask the kernel for a port by binding a socket to port 0 (released at once; good enough for a bench).
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

struct Worker {
  pid_t pid = -1;
  int metrics_port = 0;
};

Worker StartWorker(const Options& o, int index, const std::map<std::string, std::string>& extra) {
  Worker w;
  w.metrics_port = FreePort();
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env["REDIS_URL"] = o.worker_redis_url.empty() ? "redis://127.0.0.1:" + std::to_string(o.redis_port) : o.worker_redis_url;
  env["METRICS_LISTEN"] = "127.0.0.1:" + std::to_string(w.metrics_port);
  env["QUEUES"] = "default:1";
  env["WORKER_CONCURRENCY"] = std::to_string(o.concurrency);
  env["CONSUMER_NAME"] = "bench-" + std::to_string(index);
  env["LOG_LEVEL"] = "warn";
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> strings;
  for (const auto& [k, v] : env) strings.push_back(k + "=" + v);
  w.pid = SpawnBinary(o.worker_bin, std::move(strings));
  return w;
}

// GET http://127.0.0.1:port/path over a plain socket; "" on failure. Enough for /readyz and /metrics.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

void WaitReady(const Worker& w) {
  for (int i = 0; i < 500; ++i) {
    if (HttpGet(w.metrics_port, "/readyz").find(" 200 ") != std::string::npos) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cerr << "worker_bench: worker " << w.pid << " did not become ready\n";
  std::exit(1);
}

void StopWorker(const Worker& w) {
  kill(w.pid, SIGTERM);
  int st = 0;
  waitpid(w.pid, &st, 0);
}

// entries-read and pending of the worker group on the default queue.
std::pair<int64_t, int64_t> GroupProgress(RedisClient& r, const std::string& stream) {
  auto g = r.Command({"XINFO", "GROUPS", stream});
  if (!g.ok()) return {0, 0};
  for (const auto& grp : g->elements) {
    int64_t read = 0, pending = 0;
    bool ours = false;
    for (const auto& [k, v] : ParsePairs(grp)) {
      if (k == "name") ours = v.str == TaskKeys::Group();
      if (k == "entries-read") read = v.is_nil() ? 0 : v.integer;
      if (k == "pending") pending = v.integer;
    }
    if (ours) return {read, pending};
  }
  return {0, 0};
}

// The producers' enqueue options for workers running with TASK_RESULT_TTL=result_ttl_s, as a fleet sharing
// one configuration enqueues: with retention off no status record is written (docs/performance.md).
EnqueueOptions ProducerOptions(int64_t result_ttl_s) {
  EnqueueOptions o;
  o.status_ttl_s = result_ttl_s;
  return o;
}

void EnqueueBulk(RedisClient& r, const TaskKeys& keys, int64_t n, int64_t result_ttl_s,
                 const std::string& type = "noop") {
  for (int64_t i = 0; i < n; i += 1000) {
    std::vector<TaskToEnqueue> batch(static_cast<size_t>(std::min<int64_t>(1000, n - i)),
                                     {type, "{}", ProducerOptions(result_ttl_s)});
    MustOk(EnqueueTasks(r, keys, batch, WallClockMs()).status(), "EnqueueTasks");
  }
}

void Raw(const Options& o) {
  auto r = ConnectOrDie(o.redis_port);
  MustOk(r->Command({"FLUSHALL"}).status(), "FLUSHALL");
  const std::string stream = "bench:raw";
  MustOk(r->Command({"XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"}).status(), "XGROUP");
  const std::string payload(64, 'x');  // about the size of a no-op task envelope
  auto t0 = Clk::now();
  std::thread producer([&] {
    auto p = ConnectOrDie(o.redis_port);
    for (int64_t i = 0; i < o.tasks; i += 100) {
      std::vector<std::vector<std::string>> cmds;
      for (int64_t k = i; k < std::min(o.tasks, i + 100); ++k) cmds.push_back({"XADD", stream, "*", "e", payload});
      MustOk(p->Pipeline(cmds).status(), "XADD");
    }
  });
  int64_t consumed = 0;
  while (consumed < o.tasks) consumed += ReadAndAckBatch(*r, stream, 1000);
  producer.join();
  Emit("raw_cycle_tps", static_cast<double>(o.tasks) / Seconds(Clk::now() - t0));
}

void Enqueue(const Options& o) {
  auto r = ConnectOrDie(o.redis_port);
  MustOk(r->Command({"FLUSHALL"}).status(), "FLUSHALL");
  TaskKeys keys("streamfleet");
  // Redis and client CPU per enqueued task: what the enqueue path costs the server every producer shares.
  const double redis0 = RedisCpuSeconds(*r), self0 = ProcCpuSeconds(getpid());
  auto t0 = Clk::now();
  EnqueueBulk(*r, keys, o.tasks, EnqueueOptions{}.status_ttl_s);  // the default: status records kept
  Emit("enqueue_bulk_tps", static_cast<double>(o.tasks) / Seconds(Clk::now() - t0));
  Emit("enqueue_bulk_redis_us_per_task", (RedisCpuSeconds(*r) - redis0) * 1e6 / static_cast<double>(o.tasks));
  Emit("enqueue_bulk_client_us_per_task", (ProcCpuSeconds(getpid()) - self0) * 1e6 / static_cast<double>(o.tasks));
  int64_t n = std::min<int64_t>(o.tasks, 20000);
  t0 = Clk::now();
  for (int64_t i = 0; i < n; ++i) MustOk(EnqueueTask(*r, keys, "noop", "{}", {}, WallClockMs()).status(), "EnqueueTask");
  Emit("enqueue_single_tps", static_cast<double>(n) / Seconds(Clk::now() - t0));
  (void)r->Command({"FLUSHALL"});
}

// The trivial keep-alive handler a push-handler worker posts to (TASK_ROUTES): an epoll loop on its own
// thread answering every request `200 {}`, so what is measured is the worker's HTTP hop, not a handler.
class PushSink {
 public:
  PushSink() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listen_fd_, 128) != 0) {
      std::perror("worker_bench: push sink");
      std::exit(1);
    }
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~PushSink() {
    stop_.store(true);
    thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }
  int64_t requests() const { return requests_.load(); }

 private:
  void Loop() {
    int ep = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd_, &ev);
    std::map<int, std::string> in;
    epoll_event events[64];
    static const std::string kAnswer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    while (!stop_.load()) {
      int n = epoll_wait(ep, events, 64, 100);
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == listen_fd_) {
          int c = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) continue;
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          in[c];
          continue;
        }
        char buf[65536];
        ssize_t got = read(fd, buf, sizeof buf);
        if (got <= 0) {
          epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
          close(fd);
          in.erase(fd);
          continue;
        }
        std::string& b = in[fd];
        b.append(buf, static_cast<size_t>(got));
        // Every complete request (headers + Content-Length body) gets its answer, in order.
        for (;;) {
          size_t head = b.find("\r\n\r\n");
          if (head == std::string::npos) break;
          size_t cl = 0;
          size_t at = b.find("Content-Length:");
          if (at == std::string::npos) at = b.find("content-length:");
          if (at != std::string::npos && at < head) cl = std::strtoul(b.c_str() + at + 15, nullptr, 10);
          if (b.size() < head + 4 + cl) break;
          b.erase(0, head + 4 + cl);
          (void)!write(fd, kAnswer.data(), kAnswer.size());
          requests_.fetch_add(1);
        }
      }
    }
    for (auto& [fd, unused] : in) close(fd);
    close(ep);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> requests_{0};
  std::thread thread_;
};

// Returns tasks/s. `type` is what the tasks are; `extra` goes into the workers' environment.
double Process(const Options& o, int workers, bool retention, const std::string& tag, const std::string& type = "noop",
               const std::map<std::string, std::string>& extra = {}) {
  auto r = ConnectOrDie(o.redis_port);
  MustOk(r->Command({"FLUSHALL"}).status(), "FLUSHALL");
  TaskKeys keys("streamfleet");
  MustOk(r->Command({"SADD", keys.Paused(), "default"}).status(), "pause");
  EnqueueBulk(*r, keys, o.tasks, retention ? 3600 : 0, type);
  std::vector<Worker> ws;
  for (int i = 0; i < workers; ++i) {
    std::map<std::string, std::string> env = extra;
    env["TASK_RESULT_TTL"] = retention ? "3600" : "0";
    ws.push_back(StartWorker(o, i, env));
  }
  for (const auto& w : ws) WaitReady(w);
  std::vector<double> cpu0;
  for (const auto& w : ws) cpu0.push_back(ProcCpuSeconds(w.pid));
  double rcpu0 = RedisCpuSeconds(*r);
  auto t0 = Clk::now();
  MustOk(r->Command({"SREM", keys.Paused(), "default"}).status(), "resume");
  while (true) {
    auto [read, pending] = GroupProgress(*r, keys.Queue("default"));
    if (read >= o.tasks && pending == 0) break;
    if (Seconds(Clk::now() - t0) > 300) {
      std::cerr << "worker_bench: " << tag << ": gave up after 300 s (" << read << " read, " << pending << " pending)\n";
      std::exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  double s = Seconds(Clk::now() - t0);
  double cpu = 0;
  long long hwm = 0;
  for (size_t i = 0; i < ws.size(); ++i) {
    cpu += ProcCpuSeconds(ws[i].pid) - cpu0[i];
    hwm = std::max(hwm, ProcStatusKb(ws[i].pid, "VmHWM"));
  }
  Emit(tag + "_tps", static_cast<double>(o.tasks) / s);
  Emit(tag + "_cpu_cores", cpu / s);
  Emit(tag + "_redis_cpu_cores", (RedisCpuSeconds(*r) - rcpu0) / s);
  Emit(tag + "_rss_mb", static_cast<double>(hwm) / 1024.0);
  for (const auto& w : ws) StopWorker(w);
  return static_cast<double>(o.tasks) / s;
}

// Upper bound (seconds) of the bucket holding quantile q of a Prometheus histogram's cumulative buckets,
// summed over label sets; -1 without samples.
double HistogramQuantile(const std::string& metrics, const std::string& name, double q) {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "_bucket{", 0) != 0) continue;
    auto le = line.find("le=\"");
    auto end = line.find('"', le + 4);
    std::string bound = line.substr(le + 4, end - le - 4);
    double b = bound == "+Inf" ? 1e300 : std::atof(bound.c_str());
    double c = std::atof(line.substr(line.rfind(' ') + 1).c_str());
    auto it = std::find_if(buckets.begin(), buckets.end(), [&](auto& p) { return p.first == b; });
    if (it == buckets.end()) {
      buckets.push_back({b, c});
    } else {
      it->second += c;
    }
  }
  if (buckets.empty()) return -1;
  std::sort(buckets.begin(), buckets.end());
  double total = buckets.back().second;
  if (total <= 0) return -1;
  for (const auto& [b, c] : buckets) {
    if (c >= q * total) return b;
  }
  return -1;
}

// One producer of the latency phase: its share of the tasks, in batches paced to its share of the rate from
// its start time. A producer that falls behind sends back to back until it has caught up; the offered rate
// is measured over the whole phase, so it says what the producers managed.
void ProduceShare(int port, const TaskKeys& keys, int64_t tasks, double rate, int64_t batch, Clk::time_point t0) {
  auto r = ConnectOrDie(port);
  std::vector<TaskToEnqueue> buf;
  for (int64_t i = 0; i < tasks; i += batch) {
    std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clk::duration>(std::chrono::duration<double>(i / rate)));
    // The worker runs with TASK_RESULT_TTL=0, so no status records (as a fleet on one configuration).
    buf.assign(static_cast<size_t>(std::min(batch, tasks - i)), {"noop", "{}", ProducerOptions(0)});
    MustOk(EnqueueTasks(*r, keys, buf, WallClockMs()).status(), "EnqueueTasks");
  }
}

void Latency(const Options& o, double rate) {
  auto r = ConnectOrDie(o.redis_port);
  MustOk(r->Command({"FLUSHALL"}).status(), "FLUSHALL");
  TaskKeys keys("streamfleet");
  Worker w = StartWorker(o, 0, {{"TASK_RESULT_TTL", "0"}});
  WaitReady(w);
  const int64_t n = static_cast<int64_t>(rate * o.latency_s);
  // Offered by o.producers threads (each its own connection, like separate app processes), each in small
  // bulk batches (EnqueueTasks) paced to its share of the rate: one task per round trip from one thread
  // cannot reach half the peak from a load generator sharing these 2 cores with the worker and Redis. Each
  // task's wait is measured from its batch's enqueue time.
  const int producers = std::max(1, o.producers);
  const double cpu_gen0 = ProcCpuSeconds(getpid()), cpu_worker0 = ProcCpuSeconds(w.pid), cpu_redis0 = RedisCpuSeconds(*r);
  auto t0 = Clk::now();
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    const int64_t share = n / producers + (p < n % producers ? 1 : 0);
    threads.emplace_back(ProduceShare, o.redis_port, std::cref(keys), share, rate / producers, o.latency_batch,
                         // staggered by one batch time so the producers' batches interleave
                         t0 + std::chrono::duration_cast<Clk::duration>(
                                  std::chrono::duration<double>(static_cast<double>(p * o.latency_batch) / rate)));
  }
  for (auto& t : threads) t.join();
  // The rate actually offered: tasks over the enqueue phase (below the target when the producers lag).
  const double s = Seconds(Clk::now() - t0);
  const double offered = static_cast<double>(n) / s;
  Emit("latency_gen_cpu_cores", (ProcCpuSeconds(getpid()) - cpu_gen0) / s);
  Emit("latency_worker_cpu_cores", (ProcCpuSeconds(w.pid) - cpu_worker0) / s);
  Emit("latency_redis_cpu_cores", (RedisCpuSeconds(*r) - cpu_redis0) / s);
  while (GroupProgress(*r, keys.Queue("default")).first < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::string m = HttpGet(w.metrics_port, "/metrics");
  Emit("latency_target_tps", rate);
  Emit("latency_rate_tps", offered);
  Emit("latency_producers", producers);
  Emit("latency_batch", static_cast<double>(o.latency_batch));
  Emit("latency_wait_p50_ms", HistogramQuantile(m, "streamfleet_worker_task_wait_seconds", 0.5) * 1000.0);
  Emit("latency_wait_p99_ms", HistogramQuantile(m, "streamfleet_worker_task_wait_seconds", 0.99) * 1000.0);
  StopWorker(w);
}

}  // namespace

int main(int argc, char** argv) {
  Flags f(argc, argv);
  Options o;
  o.redis_port = static_cast<int>(f.Int("redis-port", 0));
  o.worker_bin = f.Str("worker-bin", "");
  o.tasks = f.Int("tasks", 50000);
  o.concurrency = static_cast<int>(f.Int("concurrency", 8));
  o.latency_s = f.Double("latency-seconds", 5);
  o.producers = static_cast<int>(f.Int("producers", 2));
  o.latency_batch = std::max<int64_t>(1, f.Int("latency-batch", 50));
  o.worker_redis_url = f.Str("worker-redis-url", "");
  if (o.redis_port == 0 || o.worker_bin.empty()) {
    std::cerr << "usage: worker_bench --redis-port P --worker-bin PATH [--tasks 50000] [--concurrency 8] [--producers 2]\n"
                 "                    [--latency-batch 50] [--latency-seconds 5] [--latency-rate R]\n";
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (f.Int("process-only", 0) != 0) {
    // One worker, records off and on: for comparing connections (bench/redis_modes.sh: plain vs TLS).
    Process(o, 1, false, "w1");
    Process(o, 1, true, "w1_retained");
    return 0;
  }
  if (const double rate = f.Double("latency-rate", 0); rate > 0) {
    Enqueue(o);
    Latency(o, rate);
    return 0;
  }
  Raw(o);
  Enqueue(o);
  double one = Process(o, 1, false, "w1");
  double two = Process(o, 2, false, "w2");
  double peak = std::max(one, two);
  Process(o, 1, true, "w1_retained");
  {
    // Push handlers: the same no-op work behind an HTTP hop to a local keep-alive handler (TASK_ROUTES),
    // default configuration (status records on).
    PushSink sink;
    Process(o, 1, true, "push", "bench.push",
            {{"TASK_ROUTES", "bench.push=http://127.0.0.1:" + std::to_string(sink.port()) + "/"}});
    Emit("push_sink_requests", static_cast<double>(sink.requests()));
  }
  Latency(o, peak / 2);
  return 0;
}
