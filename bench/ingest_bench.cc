// Ingest load generator: N keep-alive HTTP/1.1 connections driven by epoll loops (--client-threads) posting
// 200-byte chunks to a running streamfleet-ingest, first one chunk per request (application/json), then
// NDJSON batches; then the task API: one task per POST /v1/tasks, next to EnqueueTask called from C++
// threads on the same Redis. Prints key=value result lines (see bench/run.sh).
//
//   ingest_bench --port INGEST_PORT --redis-port P --pid INGEST_PID [--clients 64] [--duration 10]
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>


#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>

#include "bench/bench_util.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/chunks/chunk_buffer.h"
#include "streamfleet/base/time.h"
#include "streamfleet/taskqueue/task_queue.h"

using namespace streamfleet;
using namespace streamfleet::bench;

namespace {

// One keep-alive HTTP/1.1 connection driven by the epoll loop: one request in flight at a time.
struct HttpConn {
  explicit HttpConn(int client_index) : client(client_index) {}
  int client;
  int fd = -1;
  std::string in;
  Clk::time_point t0;
  int64_t sent_chunks = 0;

  void Open(int port) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      std::perror("ingest_bench: connect");
      std::exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  // Blocking write of the whole request (the socket is blocking; requests are small next to its buffer).
  void Send(const std::string& req) {
    size_t off = 0;
    while (off < req.size()) {
      ssize_t w = write(fd, req.data() + off, req.size() - off);
      if (w <= 0) {
        std::perror("ingest_bench: write");
        std::exit(1);
      }
      off += static_cast<size_t>(w);
    }
  }
  // Reads what is there; true once a whole response (headers + Content-Length body) has arrived.
  bool Receive(int* status) {
    char buf[16384];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
      std::cerr << "ingest_bench: connection closed by ingest\n";
      std::exit(1);
    }
    in.append(buf, static_cast<size_t>(n));
    return TakeResponse(in, status);
  }
};

struct PhaseResult {
  double seconds = 0;
  int64_t requests = 0;
  int64_t chunks = 0;
  int64_t errors = 0;
  int64_t total_chunks_acked = 0;  // including warm-up
  std::vector<double> latencies_ms;
  double ingest_cpu_s = 0;
  double redis_cpu_s = 0;
};

struct Options {
  int port = 0;
  int redis_port = 0;
  int pid = 0;
  int clients = 64;
  double warmup_s = 1;
  double duration_s = 10;
  int chunk_bytes = 200;
  int batch = 100;  // NDJSON lines per request
  int client_threads = 2;
  int cpp_threads = 8;  // EnqueueTask callers of the C++ reference
};

// What one phase sends: the request for a connection's next call, how many items it carries, the status
// that acknowledges it, and how to count what landed in Redis afterwards.
struct Phase {
  const char* name;
  int per_request;
  int ok_status;
  std::function<std::string(const HttpConn&)> request;
  std::function<int64_t(RedisClient&)> landed;
};

std::string Payload(int bytes) {
  std::string s;
  const char* alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
  for (int i = 0; i < bytes; ++i) s.push_back(alphabet[i % 63]);
  return s;
}

std::string Post(const std::string& path, const std::string& content_type, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// batch == 0: one JSON chunk per request; otherwise NDJSON with `batch` lines per request.
Phase ChunkPhase(const Options& o, int batch, const char* name) {
  const std::string line = "{\"data\":\"" + Payload(o.chunk_bytes) + "\"}";
  std::string body;
  if (batch == 0) {
    body = line;
  } else {
    for (int i = 0; i < batch; ++i) body += line + "\n";
  }
  const int per_request = batch == 0 ? 1 : batch;
  const std::string content_type = batch == 0 ? "application/json" : "application/x-ndjson";
  // Each client writes its own generation, moving to a new one well below the per-generation limits.
  const int64_t rotate_every = 20000;
  const int clients = o.clients;
  return Phase{name, per_request, 202,
               [=](const HttpConn& c) {
                 int64_t g = 1 + c.client + static_cast<int64_t>(clients) * (c.sent_chunks / rotate_every);
                 return Post("/v1/orgs/1/generations/" + std::to_string(g) + "/chunks", content_type, body);
               },
               [](RedisClient& redis) {
                 // Chunks, not entries: a request's chunks share one entry (fields "e", or ChunkBatches "b").
                 KeySchema keys = KeySchema::FromConfig(MakeConfig({}));
                 int64_t chunks = 0;
                 for (int s = 0; s < keys.chunk_streams(); ++s) {
                   const std::string stream = keys.ChunkStream(s);
                   for (std::string from = "-";;) {
                     auto r = redis.Command({"XRANGE", stream, from, "+", "COUNT", "200"});
                     if (!r.ok()) break;
                     auto entries = ParseEntries(stream, *r);
                     if (entries.empty()) break;
                     for (const auto& e : entries) chunks += static_cast<int64_t>(ChunkEnvelopeCount(e));
                     from = "(" + entries.back().id;
                   }
                 }
                 return chunks;
               }};
}

// One small noop task per POST /v1/tasks (ingest's task API, open: no tokens in the bench).
Phase TaskPhase() {
  const std::string request = Post("/v1/tasks", "application/json", R"({"type":"noop","payload":{"n":1}})");
  return Phase{"tasks", 1, 202, [request](const HttpConn&) { return request; },
               [](RedisClient& redis) { return redis.Command({"XLEN", "streamfleet:queue:default"})->integer; }};
}

PhaseResult RunPhase(const Options& o, const Phase& phase) {
  auto redis = ConnectOrDie(o.redis_port);
  MustOk(redis->Command({"FLUSHALL"}).status(), "FLUSHALL");
  const int per_request = phase.per_request;
  const char* name = phase.name;

  std::atomic<bool> stop{false}, measuring{false};
  std::atomic<int64_t> acked_total{0};
  // Event-loop clients (like wrk or redis-benchmark) rather than a thread per connection, so the load
  // generator's own CPU does not cap what is measured on a 2-core machine.
  const int threads_n = std::max(1, std::min(o.client_threads, o.clients));
  std::vector<PhaseResult> per(static_cast<size_t>(threads_n));
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t) {
    threads.emplace_back([&, t] {
      PhaseResult& r = per[static_cast<size_t>(t)];
      r.latencies_ms.reserve(per_request == 1 ? 400000 : 40000);
      std::vector<HttpConn> conns;
      for (int c = t; c < o.clients; c += threads_n) conns.emplace_back(c);
      int ep = epoll_create1(0);
      for (auto& c : conns) {
        c.Open(o.port);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = &c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
      }
      auto send_next = [&](HttpConn& c) {
        c.Send(phase.request(c));
        c.t0 = Clk::now();
      };
      bool logged = false;
      for (auto& c : conns) send_next(c);
      std::vector<epoll_event> events(conns.size());
      while (!stop.load(std::memory_order_relaxed)) {
        int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        for (int i = 0; i < n; ++i) {
          auto& c = *static_cast<HttpConn*>(events[static_cast<size_t>(i)].data.ptr);
          int status = 0;
          if (!c.Receive(&status)) continue;  // response not complete yet
          auto t1 = Clk::now();
          bool ok = status == phase.ok_status;
          if (ok) {
            c.sent_chunks += per_request;
            acked_total.fetch_add(per_request, std::memory_order_relaxed);
          } else if (!logged) {
            std::cerr << "ingest_bench: " << name << ": request failed: status=" << status << "\n";
            logged = true;
          }
          if (measuring.load(std::memory_order_relaxed)) {
            if (ok) {
              ++r.requests;
              r.chunks += per_request;
              r.latencies_ms.push_back(Seconds(t1 - c.t0) * 1000.0);
            } else {
              ++r.errors;
            }
          }
          send_next(c);
        }
      }
      for (auto& c : conns) close(c.fd);
      close(ep);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_s));
  double cpu0 = ProcCpuSeconds(o.pid);
  double rcpu0 = RedisCpuSeconds(*redis);
  auto start = Clk::now();
  measuring.store(true);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
  measuring.store(false);
  auto end = Clk::now();
  double cpu1 = ProcCpuSeconds(o.pid);
  double rcpu1 = RedisCpuSeconds(*redis);
  stop.store(true);
  for (auto& th : threads) th.join();

  PhaseResult total;
  total.seconds = Seconds(end - start);
  for (auto& r : per) {
    total.requests += r.requests;
    total.chunks += r.chunks;
    total.errors += r.errors;
    total.latencies_ms.insert(total.latencies_ms.end(), r.latencies_ms.begin(), r.latencies_ms.end());
  }
  total.total_chunks_acked = acked_total.load();
  total.ingest_cpu_s = cpu1 - cpu0;
  total.redis_cpu_s = rcpu1 - rcpu0;

  // Sanity: everything acknowledged is in Redis.
  int64_t xlen = phase.landed(*redis);
  std::cerr << "ingest_bench: " << name << ": " << total.requests << " requests, " << total.chunks
            << " items in " << total.seconds << " s (" << total.errors << " errors); acknowledged "
            << total.total_chunks_acked << ", Redis holds " << xlen << "\n";
  if (xlen < total.total_chunks_acked) {
    std::cerr << "ingest_bench: " << name << ": FEWER IN REDIS THAN ACKNOWLEDGED\n";
  }
  return total;
}

// The reference for the task API: EnqueueTask (what the API calls) from `threads` C++ threads, each with
// its own connection, one task per call, for `seconds`. Tasks per second.
double CppEnqueueRate(const Options& o) {
  auto redis = ConnectOrDie(o.redis_port);
  MustOk(redis->Command({"FLUSHALL"}).status(), "FLUSHALL");
  const Config cfg = MakeConfig({{"REDIS_PORT", std::to_string(o.redis_port)}});
  const TaskKeys keys = TaskKeys::FromConfig(cfg);
  std::atomic<bool> stop{false}, measuring{false};
  std::atomic<int64_t> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.cpp_threads; ++t) {
    threads.emplace_back([&] {
      auto c = ConnectOrDie(o.redis_port);
      const EnqueueOptions opts = EnqueueOptions::FromConfig(cfg);
      while (!stop.load(std::memory_order_relaxed)) {
        MustOk(EnqueueTask(*c, keys, "noop", R"({"n":1})", opts, WallClockMs()).status(), "EnqueueTask");
        if (measuring.load(std::memory_order_relaxed)) done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_s));
  auto start = Clk::now();
  measuring.store(true);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
  measuring.store(false);
  double seconds = Seconds(Clk::now() - start);
  stop.store(true);
  for (auto& th : threads) th.join();
  return static_cast<double>(done.load()) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // ingest may close a connection the bench is still writing to
  Flags f(argc, argv);
  Options o;
  o.port = static_cast<int>(f.Int("port", 0));
  o.redis_port = static_cast<int>(f.Int("redis-port", 0));
  o.pid = static_cast<int>(f.Int("pid", 0));
  o.clients = static_cast<int>(f.Int("clients", 64));
  o.warmup_s = f.Double("warmup", 1);
  o.duration_s = f.Double("duration", 10);
  o.chunk_bytes = static_cast<int>(f.Int("chunk-bytes", 200));
  o.batch = static_cast<int>(f.Int("batch", 100));
  o.client_threads = static_cast<int>(f.Int("client-threads", 2));
  o.cpp_threads = static_cast<int>(f.Int("cpp-threads", 8));
  if (o.port == 0 || o.redis_port == 0 || o.pid == 0) {
    std::cerr << "usage: ingest_bench --port INGEST_PORT --redis-port P --pid INGEST_PID [--clients 64] "
                 "[--duration 10] [--warmup 1] [--chunk-bytes 200] [--batch 100] [--client-threads 2] [--cpp-threads 8]\n";
    return 2;
  }

  PhaseResult single = RunPhase(o, ChunkPhase(o, 0, "single"));
  Emit("ingest_single_cps", static_cast<double>(single.chunks) / single.seconds);
  Emit("ingest_single_p50_ms", Quantile(single.latencies_ms, 0.50));
  Emit("ingest_single_p99_ms", Quantile(single.latencies_ms, 0.99));
  Emit("ingest_single_errors", static_cast<double>(single.errors));
  Emit("ingest_single_cpu_cores", single.ingest_cpu_s / single.seconds);
  Emit("ingest_single_redis_cpu_cores", single.redis_cpu_s / single.seconds);
  Emit("ingest_rss_after_single_mb", static_cast<double>(ProcStatusKb(o.pid, "VmRSS")) / 1024.0);

  PhaseResult nd = RunPhase(o, ChunkPhase(o, o.batch, "ndjson"));
  Emit("ingest_ndjson_cps", static_cast<double>(nd.chunks) / nd.seconds);
  Emit("ingest_ndjson_p50_ms", Quantile(nd.latencies_ms, 0.50));
  Emit("ingest_ndjson_p99_ms", Quantile(nd.latencies_ms, 0.99));
  Emit("ingest_ndjson_errors", static_cast<double>(nd.errors));
  Emit("ingest_ndjson_cpu_cores", nd.ingest_cpu_s / nd.seconds);
  Emit("ingest_ndjson_redis_cpu_cores", nd.redis_cpu_s / nd.seconds);
  Emit("ingest_rss_mb", static_cast<double>(ProcStatusKb(o.pid, "VmRSS")) / 1024.0);
  Emit("ingest_hwm_mb", static_cast<double>(ProcStatusKb(o.pid, "VmHWM")) / 1024.0);

  PhaseResult tasks = RunPhase(o, TaskPhase());
  Emit("tasks_http_tps", static_cast<double>(tasks.chunks) / tasks.seconds);
  Emit("tasks_http_p99_ms", Quantile(tasks.latencies_ms, 0.99));
  Emit("tasks_http_errors", static_cast<double>(tasks.errors));
  Emit("tasks_cpp_tps", CppEnqueueRate(o));

  auto redis = ConnectOrDie(o.redis_port);
  (void)redis->Command({"FLUSHALL"});
  return 0;
}
