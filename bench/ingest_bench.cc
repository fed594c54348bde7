// Ingest load generator: N keep-alive HTTP clients (one thread and one reused CURL easy handle each) posting
// 200-byte chunks to a running streamfleet-ingest, first one chunk per request (application/json), then
// NDJSON batches. Prints key=value result lines (see bench/run.sh).
//
//   ingest_bench --port INGEST_PORT --redis-port P --pid INGEST_PID [--clients 64] [--duration 10]
#include <curl/curl.h>

#include <atomic>
#include <thread>

#include "bench/bench_util.h"
#include "streamfleet/common/keys.h"

using namespace streamfleet;
using namespace streamfleet::bench;

namespace {

size_t Discard(char* p, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() < 4096) s->append(p, size * n);
  return size * n;
}

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
};

std::string Payload(int bytes) {
  std::string s;
  const char* alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
  for (int i = 0; i < bytes; ++i) s.push_back(alphabet[i % 63]);
  return s;
}

// batch == 0: one JSON chunk per request; otherwise NDJSON with `batch` lines per request.
PhaseResult RunPhase(const Options& o, int batch, const char* name) {
  auto redis = ConnectOrDie(o.redis_port);
  MustOk(redis->Command({"FLUSHALL"}).status(), "FLUSHALL");
  const std::string line = "{\"data\":\"" + Payload(o.chunk_bytes) + "\"}";
  std::string body;
  if (batch == 0) {
    body = line;
  } else {
    for (int i = 0; i < batch; ++i) body += line + "\n";
  }
  const int per_request = batch == 0 ? 1 : batch;
  const std::string content_type =
      batch == 0 ? "Content-Type: application/json" : "Content-Type: application/x-ndjson";
  // Each client writes its own generation, moving to a new one well below the per-generation limits.
  const int64_t rotate_every = 20000;

  std::atomic<bool> stop{false}, measuring{false};
  std::atomic<int64_t> acked_total{0};
  std::vector<PhaseResult> per(static_cast<size_t>(o.clients));
  std::vector<std::thread> threads;
  for (int t = 0; t < o.clients; ++t) {
    threads.emplace_back([&, t] {
      PhaseResult& r = per[static_cast<size_t>(t)];
      r.latencies_ms.reserve(batch == 0 ? 200000 : 20000);
      CURL* c = curl_easy_init();
      std::string response;
      curl_slist* hs = nullptr;
      hs = curl_slist_append(hs, content_type.c_str());
      hs = curl_slist_append(hs, "Expect:");
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Discard);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
      curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
      curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
      int64_t sent_chunks = 0;
      int64_t gen = -1;
      std::string url;
      bool logged = false;
      while (!stop.load(std::memory_order_relaxed)) {
        int64_t g = 1 + t + static_cast<int64_t>(o.clients) * (sent_chunks / rotate_every);
        if (g != gen) {
          gen = g;
          url = "http://127.0.0.1:" + std::to_string(o.port) + "/v1/orgs/1/generations/" + std::to_string(gen) +
                "/chunks";
          curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        }
        response.clear();
        auto t0 = Clk::now();
        CURLcode rc = curl_easy_perform(c);
        auto t1 = Clk::now();
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        bool ok = rc == CURLE_OK && status == 202;
        bool m = measuring.load(std::memory_order_relaxed);
        if (ok) {
          sent_chunks += per_request;
          acked_total.fetch_add(per_request, std::memory_order_relaxed);
        }
        if (!ok && !logged) {
          std::cerr << "ingest_bench: " << name << ": request failed: curl=" << curl_easy_strerror(rc)
                    << " status=" << status << " body=" << response.substr(0, 300) << "\n";
          logged = true;
        }
        if (!m) continue;
        if (ok) {
          ++r.requests;
          r.chunks += per_request;
          r.latencies_ms.push_back(Seconds(t1 - t0) * 1000.0);
        } else {
          ++r.errors;
        }
      }
      curl_slist_free_all(hs);
      curl_easy_cleanup(c);
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

  // Sanity: every acknowledged chunk is in a chunk stream.
  Config cfg = MakeConfig({{"REDIS_PORT", std::to_string(o.redis_port)}});
  KeySchema keys = KeySchema::FromConfig(cfg);
  int64_t xlen = 0;
  for (int s = 0; s < keys.chunk_streams(); ++s) {
    auto l = redis->Command({"XLEN", keys.ChunkStream(s)});
    if (l.ok()) xlen += l->integer;
  }
  std::cerr << "ingest_bench: " << name << ": " << total.requests << " requests, " << total.chunks
            << " chunks in " << total.seconds << " s (" << total.errors << " errors); acknowledged "
            << total.total_chunks_acked << " chunks, chunk streams hold " << xlen << " entries\n";
  if (xlen < total.total_chunks_acked) {
    std::cerr << "ingest_bench: " << name << ": FEWER ENTRIES THAN ACKNOWLEDGED CHUNKS\n";
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
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
  if (o.port == 0 || o.redis_port == 0 || o.pid == 0) {
    std::cerr << "usage: ingest_bench --port INGEST_PORT --redis-port P --pid INGEST_PID [--clients 64] "
                 "[--duration 10] [--warmup 1] [--chunk-bytes 200] [--batch 100]\n";
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);

  PhaseResult single = RunPhase(o, 0, "single");
  Emit("ingest_single_cps", static_cast<double>(single.chunks) / single.seconds);
  Emit("ingest_single_p50_ms", Quantile(single.latencies_ms, 0.50));
  Emit("ingest_single_p99_ms", Quantile(single.latencies_ms, 0.99));
  Emit("ingest_single_errors", static_cast<double>(single.errors));
  Emit("ingest_single_cpu_cores", single.ingest_cpu_s / single.seconds);
  Emit("ingest_single_redis_cpu_cores", single.redis_cpu_s / single.seconds);
  Emit("ingest_rss_after_single_mb", static_cast<double>(ProcStatusKb(o.pid, "VmRSS")) / 1024.0);

  PhaseResult nd = RunPhase(o, o.batch, "ndjson");
  Emit("ingest_ndjson_cps", static_cast<double>(nd.chunks) / nd.seconds);
  Emit("ingest_ndjson_p50_ms", Quantile(nd.latencies_ms, 0.50));
  Emit("ingest_ndjson_p99_ms", Quantile(nd.latencies_ms, 0.99));
  Emit("ingest_ndjson_errors", static_cast<double>(nd.errors));
  Emit("ingest_ndjson_cpu_cores", nd.ingest_cpu_s / nd.seconds);
  Emit("ingest_ndjson_redis_cpu_cores", nd.redis_cpu_s / nd.seconds);
  Emit("ingest_rss_mb", static_cast<double>(ProcStatusKb(o.pid, "VmRSS")) / 1024.0);
  Emit("ingest_hwm_mb", static_cast<double>(ProcStatusKb(o.pid, "VmHWM")) / 1024.0);

  auto redis = ConnectOrDie(o.redis_port);
  (void)redis->Command({"FLUSHALL"});
  curl_global_cleanup();
  return 0;
}
