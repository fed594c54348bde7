// Compactor benchmark against a running redis-server:
//   1. raw ceilings: (raw) pipelined XADD of the same envelopes, then one consumer doing XREADGROUP COUNT 100
//      + XACK with no work (the read+ack drain alone); (loop) the ceiling, one loop doing XADD x100
//      pipelined -> XREADGROUP COUNT 100 -> XACK;
//   2. drain (svcN): chunk streams pre-filled with N generations x 50 chunks (ChunkEnvelope in field "e", or a ChunkBatch "b" per entry with --entry-chunks, last
//      chunk final), then 1 and then 2 CompactorService instances (threads, own SqlStore each, one SQLite
//      file) run until every generation is finalized; finalize latency from the compactor's histogram;
//      Redis memory of the buffers per chunk byte; process RSS;
//   3. end to end (e2eN): the same with a producer XADDing while the compactors run, first XADD to last row;
//   4. steady state: 1 instance while a producer XADDs at a fixed rate (finalize latency when not saturated);
//   5. optionally the drain with the real streamfleet-compactor binary (clean process RSS).
// Prints key=value result lines (see bench/run.sh).
//
//   compactor_bench --redis-port P [--gens 2000] [--chunks 50] [--chunk-bytes 200] [--tmpdir DIR]
//                   [--paced-rate 10000] [--paced-seconds 5] [--compactor-bin build/compactor/streamfleet-compactor]
//                   [--loops N (consumer loops per compactor; default COMPACTOR_LOOPS')]
//                   [--compactor-env NAME=value,... (extra settings of the binary in the bin phase)]
//                   [--entry-chunks N (chunks of a generation per stream entry, as ingest writes an NDJSON
//                    request's; default 1)]
//                   [--phases raw,loop,svc1,svc2,e2e1,e2e2,paced,bin (svcN/e2eN: N compactors, N <= 8)]
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "bench/bench_util.h"
#include "compactor/compactor_loops.h"
#include "streamfleet/base/clock.h"
#include "streamfleet/base/envelope_version.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/base/log.h"
#include "streamfleet/sql/sql_store.h"
#include "streamfleet/testing/chunk_envelope.h"

using namespace streamfleet;
using namespace streamfleet::bench;

namespace {

struct Options {
  int redis_port = 0;
  int64_t gens = 2000;
  int chunks = 50;
  int chunk_bytes = 200;
  int window = 64;  // generations in flight at once (their chunks interleave in the streams)
  int entry_chunks = 1;  // consecutive chunks of a generation per stream entry (>1: the shape ingest's NDJSON writes)
  int loops = 0;    // consumer loops per compactor (0 = COMPACTOR_LOOPS' default)
  compactor::LoopOptions loop_options;  // --linger-ms, --min-batch: A/B of the small-batch linger
  std::string tmpdir = "/tmp";
  std::string compactor_bin;
  std::vector<std::string> compactor_env;  // extra NAME=value settings of the binary (--compactor-env, repeatable via ',')
};

std::string Payload(int bytes, int64_t salt) {
  std::string s;
  const char* alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
  for (int i = 0; i < bytes; ++i) s.push_back(alphabet[(i + salt) % 63]);
  return s;
}

std::string Envelope(const GenerationId& g, int64_t seq, const std::string& data, bool final) {
  return streamfleet::testing::ChunkEnvelopeBytes(g, seq, data, final, 0, false, 0, "bench");
}

void Pipeline(RedisClient& r, std::vector<std::vector<std::string>>& cmds) {
  if (cmds.empty()) return;
  auto res = r.Pipeline(cmds);
  MustOk(res.status(), "pipeline");
  for (const auto& v : *res) {
    if (v.is_error()) {
      std::cerr << "bench: pipeline error reply: " << v.str << "\n";
      std::exit(1);
    }
  }
  cmds.clear();
}

// The XADD of every chunk of gens [1, gens] to its chunk stream (or to `single_stream` when given), last chunk
// final. `window` generations stream concurrently, staggered: slot i starts i*chunks/window rounds late and
// takes the next generation as soon as its current one is complete, so completions are spread evenly (no
// burst of `window` generations finishing together).
std::vector<std::vector<std::string>> ChunkCommands(const Options& o, const KeySchema& keys, int64_t gens,
                                                    const std::string& single_stream = "") {
  std::vector<std::vector<std::string>> out;
  out.reserve(static_cast<size_t>(gens * o.chunks));
  struct Slot {
    int64_t start_round = 0;
    int64_t gen = 0;  // 0 = idle
    int seq = 0;
  };
  std::vector<Slot> slots(static_cast<size_t>(o.window));
  for (int i = 0; i < o.window; ++i) slots[static_cast<size_t>(i)].start_round = static_cast<int64_t>(i) * o.chunks / o.window;
  int64_t next_gen = 1;
  for (int64_t round = 0;; ++round) {
    bool any = false;
    for (auto& sl : slots) {
      if (round < sl.start_round) {
        any = true;
        continue;
      }
      if (sl.gen == 0) {
        if (next_gen > gens) continue;
        sl.gen = next_gen++;
        sl.seq = 0;
      }
      any = true;
      GenerationId g{1, 0, sl.gen};
      std::string stream = single_stream.empty() ? keys.ChunkStream(keys.ShardOf(g)) : single_stream;
      std::vector<std::string> xadd = {"XADD", stream, "*"};
      bool final = false;
      // Several chunks per entry are written the way ingest writes an NDJSON request's: one ChunkBatch
      // (field "b", docs/ARCHITECTURE.md "Chunk entries").
      streamfleet::v1::ChunkBatch batch;
      batch.set_first_seq(sl.seq);
      for (int k = 0; k < o.entry_chunks && !final; ++k) {
        final = sl.seq + 1 == o.chunks;
        std::string data = Payload(o.chunk_bytes, sl.gen + sl.seq);
        if (o.entry_chunks > 1) {
          batch.add_envelopes(streamfleet::testing::ChunkEnvelopeBytes(g, 0, data, final, 0, false,
                                                                       kChunkEnvelopeBatched, "bench"));
        } else {
          xadd.insert(xadd.end(), {"e", Envelope(g, sl.seq, data, final)});
        }
        if (!final) ++sl.seq;
      }
      if (o.entry_chunks > 1) xadd.insert(xadd.end(), {"b", batch.SerializeAsString()});
      out.push_back(std::move(xadd));
      if (final) sl.gen = 0;
    }
    if (!any) break;
  }
  return out;
}

// Pre-fills (pipelines of 1000). Returns the seconds the XADDs took.
double Prefill(RedisClient& r, const Options& o, const KeySchema& keys, const std::string& single_stream = "") {
  auto all = ChunkCommands(o, keys, o.gens, single_stream);
  std::vector<std::vector<std::string>> cmds;
  auto t0 = Clk::now();
  for (auto& c : all) {
    cmds.push_back(std::move(c));
    if (cmds.size() >= 1000) Pipeline(r, cmds);
  }
  Pipeline(r, cmds);
  return Seconds(Clk::now() - t0);
}

// Interpolated quantile over cumulative histogram buckets (what PromQL histogram_quantile does).
double HistogramQuantile(const std::vector<std::pair<double, double>>& buckets, double q) {
  if (buckets.empty() || buckets.back().second <= 0) return 0;
  double rank = q * buckets.back().second;
  double prev_bound = 0, prev_count = 0;
  for (const auto& [bound, count] : buckets) {
    if (count >= rank) {
      if (std::isinf(bound)) return prev_bound;
      double in_bucket = count - prev_count;
      if (in_bucket <= 0) return bound;
      return prev_bound + (bound - prev_bound) * (rank - prev_count) / in_bucket;
    }
    prev_bound = bound;
    prev_count = count;
  }
  return prev_bound;
}

// Sums several services' finalize-latency histograms into cumulative (upper bound, count) pairs.
std::vector<std::pair<double, double>> MergeHistograms(std::vector<compactor::CompactorMetrics*> services) {
  std::vector<std::pair<double, double>> out;
  for (auto* s : services) {
    auto m = s->finalize_latency.Collect();
    const auto& b = m.histogram.bucket;
    if (out.empty()) {
      for (const auto& x : b) out.push_back({x.upper_bound, 0});
    }
    for (size_t i = 0; i < b.size() && i < out.size(); ++i) out[i].second += static_cast<double>(b[i].cumulative_count);
  }
  return out;
}

double CountAtOrBelow(const std::vector<std::pair<double, double>>& buckets, double bound) {
  for (const auto& [b, c] : buckets) {
    if (std::abs(b - bound) < 1e-12) return c;
  }
  return 0;
}

void RawCeiling(const Options& o, const KeySchema& keys) {
  auto r = ConnectOrDie(o.redis_port);
  MustOk(r->Command({"FLUSHALL"}).status(), "FLUSHALL");
  const std::string stream = "bench:raw";
  double add_s = Prefill(*r, o, keys, stream);
  const int64_t total = o.gens * o.chunks;
  MustOk(r->Command({"XGROUP", "CREATE", stream, "g", "0"}).status(), "XGROUP CREATE");
  int64_t consumed = 0;
  auto t0 = Clk::now();
  for (int64_t n; (n = ReadAndAckBatch(*r, stream)) > 0;) consumed += n;
  double s = Seconds(Clk::now() - t0);
  std::cerr << "compactor_bench: raw: XADD " << total << " entries in " << add_s << " s; consumed " << consumed
            << " in " << s << " s\n";
  Emit("raw_xadd_eps", static_cast<double>(total) / add_s);
  Emit("raw_consume_eps", static_cast<double>(consumed) / s);
  (void)r->Command({"FLUSHALL"});
}

// The ceiling: one connection looping XADD x100 (pipelined) -> XREADGROUP COUNT 100 -> XACK, no work.
// Producing and consuming share Redis, as they do end to end (the `e2e` phases below).
void RawLoopCeiling(const Options& o, const KeySchema& keys) {
  auto r = ConnectOrDie(o.redis_port);
  MustOk(r->Command({"FLUSHALL"}).status(), "FLUSHALL");
  const std::string stream = "bench:raw-loop";
  auto all = ChunkCommands(o, keys, o.gens, stream);
  MustOk(r->Command({"XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"}).status(), "XGROUP CREATE");
  int64_t consumed = 0;
  std::vector<std::vector<std::string>> cmds;
  auto t0 = Clk::now();
  for (size_t next = 0; next < all.size() || consumed < static_cast<int64_t>(all.size());) {
    for (size_t k = 0; k < 100 && next < all.size(); ++k) cmds.push_back(std::move(all[next++]));
    Pipeline(*r, cmds);
    consumed += ReadAndAckBatch(*r, stream);
  }
  double s = Seconds(Clk::now() - t0);
  std::cerr << "compactor_bench: raw loop: " << consumed << " entries added, read and acked in " << s << " s\n";
  Emit("raw_loop_eps", static_cast<double>(consumed) / s);
  (void)r->Command({"FLUSHALL"});
}

// Runs `instances` CompactorService threads until every generation has its row: over a pre-fill (drain:
// tag svcN, throughput of the compactors alone), or while a producer thread XADDs the chunks pipelined in
// batches of 100 as fast as Redis takes them (end to end: tag e2eN, from the first XADD to the last row).
void ServicePhase(const Options& o, int instances, bool with_producer = false) {
  const std::string tag = (with_producer ? "e2e" : "svc") + std::to_string(instances);
  auto r = ConnectOrDie(o.redis_port);
  MustOk(r->Command({"FLUSHALL"}).status(), "FLUSHALL");
  const std::string db = o.tmpdir + "/compactor-bench-" + tag + "-" + std::to_string(getpid()) + ".db";
  for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  std::vector<std::unique_ptr<Config>> configs;
  for (int i = 0; i < instances; ++i) {
    configs.push_back(std::make_unique<Config>(MakeConfig({{"REDIS_PORT", std::to_string(o.redis_port)},
                                                           {"DATABASE_URL", "sqlite:" + db},
                                                           {"CONSUMER_NAME", "bench-c" + std::to_string(i + 1)},
                                                           {"LOG_LEVEL", "warn"}})));
  }
  KeySchema keys = KeySchema::FromConfig(*configs[0]);
  double mem0 = RedisInfoField(*r, "memory", "used_memory");
  const int64_t total_chunks = o.gens * o.chunks;
  const double chunk_bytes = static_cast<double>(total_chunks) * o.chunk_bytes;
  double mem_streams = mem0;
  std::vector<std::vector<std::string>> to_send;
  if (with_producer) {
    to_send = ChunkCommands(o, keys, o.gens);
  } else {
    double fill_s = Prefill(*r, o, keys);
    mem_streams = RedisInfoField(*r, "memory", "used_memory");
    std::cerr << "compactor_bench: " << tag << ": pre-filled " << total_chunks << " chunks (" << o.gens
              << " generations) in " << fill_s << " s\n";
  }

  auto store = SqlStore::Open("sqlite:" + db);
  MustOk(store.status(), "SqlStore::Open");
  MustOk((*store)->Migrate(), "Migrate");
  long long rss_before_kb = ProcStatusKb(0, "VmRSS");
  RedisServerClock clock;
  // One CompactorLoops per compactor (what one streamfleet-compactor process runs), each with its own
  // registry; its loops share that registry, so one CompactorMetrics reads the compactor's totals.
  std::vector<std::unique_ptr<prometheus::Registry>> registries;
  std::vector<std::unique_ptr<compactor::CompactorLoops>> services;
  std::vector<compactor::CompactorLoops*> raw;
  std::vector<compactor::CompactorMetrics*> metrics;
  for (int i = 0; i < instances; ++i) {
    registries.push_back(std::make_unique<prometheus::Registry>());
    auto loops = compactor::CompactorLoops::Open(*configs[static_cast<size_t>(i)], clock, *registries.back(),
                                                 o.loop_options, o.loops);
    MustOk(loops.status(), "CompactorLoops::Open");
    services.push_back(std::move(*loops));
    raw.push_back(services.back().get());
    metrics.push_back(&services.back()->metrics());
  }
  const int loops_each = raw.front()->size();
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  if (with_producer) {
    // The services create their groups and park in XREADGROUP BLOCK before the clock starts.
    for (auto* s : raw) threads.emplace_back([s, &stop] { s->Run(stop); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  double cpu0 = ProcCpuSeconds(getpid());
  double rcpu0 = RedisCpuSeconds(*r);
  auto t0 = Clk::now();
  std::thread producer;
  if (with_producer) {
    producer = std::thread([&] {
      auto p = ConnectOrDie(o.redis_port);
      std::vector<std::vector<std::string>> cmds;
      for (auto& c : to_send) {
        cmds.push_back(std::move(c));
        if (cmds.size() >= 100) Pipeline(*p, cmds);
      }
      Pipeline(*p, cmds);
    });
  } else {
    for (auto* s : raw) threads.emplace_back([s, &stop] { s->Run(stop); });
  }
  long long rss_peak_kb = 0;
  auto deadline = t0 + std::chrono::seconds(120);
  double done = 0;
  while (Clk::now() < deadline) {
    done = 0;
    for (auto* m : metrics) done += m->finalized_complete.Value();
    if (done >= static_cast<double>(o.gens)) break;
    rss_peak_kb = std::max(rss_peak_kb, ProcStatusKb(0, "VmRSS"));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  double secs = Seconds(Clk::now() - t0);
  double cpu1 = ProcCpuSeconds(getpid());
  double rcpu1 = RedisCpuSeconds(*r);
  rss_peak_kb = std::max(rss_peak_kb, ProcStatusKb(0, "VmRSS"));
  stop.store(true);
  if (producer.joinable()) producer.join();
  for (auto& th : threads) th.join();
  if (done < static_cast<double>(o.gens)) {
    std::cerr << "compactor_bench: " << tag << ": TIMED OUT with " << done << "/" << o.gens << " finalized\n";
  }
  auto rows = (*store)->CountGenerations();
  MustOk(rows.status(), "CountGenerations");
  double applied = 0, dup = 0, dead = 0;
  for (auto* s : raw) {
    applied += s->metrics().chunks_applied.Value();
    dup += s->metrics().chunks_duplicate.Value();
    dead += s->metrics().dead_lettered.Value();
  }
  std::cerr << "compactor_bench: " << tag << ": " << *rows << " rows, " << applied << " chunks applied, " << dup
            << " duplicates, " << dead << " dead-lettered, in " << secs << " s\n";
  if (*rows != o.gens) std::cerr << "compactor_bench: " << tag << ": ROW COUNT MISMATCH\n";

  auto hist = MergeHistograms(metrics);
  double n = hist.empty() ? 0 : hist.back().second;
  double apply_s = 0;  // where the loops' time went: applying chunk batches (the rest: reads, finalizing)
  double finalize_s = 0, batches = 0;
  for (auto* s : raw) {
    batches += static_cast<double>(s->metrics().apply_batch_latency.Collect().histogram.sample_count);
    apply_s += s->metrics().apply_batch_latency.Collect().histogram.sample_sum;
    finalize_s += s->metrics().finalize_batch_latency.Collect().histogram.sample_sum;
  }
  Emit(tag + "_loops_each", loops_each);
  Emit(tag + "_chunks_per_batch", batches > 0 ? applied / batches : 0);
  Emit(tag + "_apply_share", apply_s / (secs * instances * loops_each));
  Emit(tag + "_finalize_share", finalize_s / (secs * instances * loops_each));
  Emit(tag + "_cps", static_cast<double>(total_chunks) / secs);
  Emit(tag + "_seconds", secs);
  Emit(tag + "_rows", static_cast<double>(*rows));
  Emit(tag + "_finalize_p50_ms", HistogramQuantile(hist, 0.50) * 1000);
  Emit(tag + "_finalize_p99_ms", HistogramQuantile(hist, 0.99) * 1000);
  Emit(tag + "_finalize_le25ms_frac", n > 0 ? CountAtOrBelow(hist, 0.025) / n : 0);
  Emit(tag + "_cpu_cores", (cpu1 - cpu0) / secs);
  Emit(tag + "_redis_cpu_cores", (rcpu1 - rcpu0) / secs);
  Emit(tag + "_rss_before_mb", static_cast<double>(rss_before_kb) / 1024.0);
  Emit(tag + "_rss_peak_mb", static_cast<double>(rss_peak_kb) / 1024.0);

  // Redis memory of what stays buffered: drop the transport streams, keep the generation buffers.
  std::vector<std::string> del = {"DEL", keys.EventsStream(), keys.ChunkDeadLetterStream()};
  for (int s = 0; s < keys.control_shards(); ++s) del.push_back(keys.FinalizeStream(s));
  for (int s = 0; s < keys.chunk_streams(); ++s) del.push_back(keys.ChunkStream(s));
  MustOk(r->Command(del).status(), "DEL streams");
  double mem_buffers = RedisInfoField(*r, "memory", "used_memory");
  if (!with_producer) Emit(tag + "_redis_stream_bytes_per_chunk_byte", (mem_streams - mem0) / chunk_bytes);
  Emit(tag + "_redis_buffer_bytes_per_chunk_byte", (mem_buffers - mem0) / chunk_bytes);

  services.clear();
  store->reset();
  for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  (void)r->Command({"FLUSHALL"});
}

// Steady state instead of a backlog: one CompactorService while a producer XADDs chunks at a fixed rate
// (`window` generations streaming concurrently); finalize latency when the compactor is not saturated.
void PacedPhase(const Options& o, double rate, double seconds) {
  auto r = ConnectOrDie(o.redis_port);
  MustOk(r->Command({"FLUSHALL"}).status(), "FLUSHALL");
  const std::string db = o.tmpdir + "/compactor-bench-paced-" + std::to_string(getpid()) + ".db";
  for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  Config cfg = MakeConfig({{"REDIS_PORT", std::to_string(o.redis_port)},
                           {"DATABASE_URL", "sqlite:" + db},
                           {"CONSUMER_NAME", "bench-paced"},
                           {"LOG_LEVEL", "warn"}});
  KeySchema keys = KeySchema::FromConfig(cfg);
  const int64_t gens = std::max<int64_t>(1, static_cast<int64_t>(rate * seconds) / o.chunks);
  auto all = ChunkCommands(o, keys, gens);
  auto st = SqlStore::Open("sqlite:" + db);
  MustOk(st.status(), "SqlStore::Open");
  MustOk((*st)->Migrate(), "Migrate");
  RedisServerClock clock;
  prometheus::Registry registry;
  auto opened = compactor::CompactorLoops::Open(cfg, clock, registry, o.loop_options, o.loops);
  MustOk(opened.status(), "CompactorLoops::Open");
  compactor::CompactorLoops& svc = **opened;
  std::atomic<bool> stop{false};
  std::thread runner([&] { svc.Run(stop); });
  auto t0 = Clk::now();
  size_t sent = 0;
  std::vector<std::vector<std::string>> cmds;
  while (sent < all.size()) {
    size_t due = std::min(all.size(), static_cast<size_t>(rate * Seconds(Clk::now() - t0)));
    for (; sent < due; ++sent) cmds.push_back(std::move(all[sent]));
    Pipeline(*r, cmds);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  double send_s = Seconds(Clk::now() - t0);
  auto deadline = Clk::now() + std::chrono::seconds(60);
  while (Clk::now() < deadline && svc.metrics().finalized_complete.Value() < static_cast<double>(gens)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop.store(true);
  runner.join();
  auto rows = (*st)->CountGenerations();
  MustOk(rows.status(), "CountGenerations");
  auto hist = MergeHistograms({&svc.metrics()});
  double n = hist.empty() ? 0 : hist.back().second;
  std::cerr << "compactor_bench: paced: " << all.size() << " chunks at " << rate << "/s over " << send_s << " s, "
            << *rows << " rows\n";
  Emit("paced_rate_cps", static_cast<double>(all.size()) / send_s);
  Emit("paced_rows", static_cast<double>(*rows));
  Emit("paced_gens", static_cast<double>(gens));
  Emit("paced_finalize_p50_ms", HistogramQuantile(hist, 0.50) * 1000);
  Emit("paced_finalize_p99_ms", HistogramQuantile(hist, 0.99) * 1000);
  Emit("paced_finalize_le25ms_frac", n > 0 ? CountAtOrBelow(hist, 0.025) / n : 0);
  st->reset();
  for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  (void)r->Command({"FLUSHALL"});
}

// The real binary: clean process RSS and end-to-end throughput of one streamfleet-compactor process.
void BinaryPhase(const Options& o) {
  auto r = ConnectOrDie(o.redis_port);
  MustOk(r->Command({"FLUSHALL"}).status(), "FLUSHALL");
  const std::string db = o.tmpdir + "/compactor-bench-bin-" + std::to_string(getpid()) + ".db";
  for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  Config cfg = MakeConfig({{"REDIS_PORT", std::to_string(o.redis_port)}});
  KeySchema keys = KeySchema::FromConfig(cfg);
  Prefill(*r, o, keys);
  const int64_t total_chunks = o.gens * o.chunks;

  auto t0 = Clk::now();
  std::vector<std::string> env = {"REDIS_PORT=" + std::to_string(o.redis_port), "DATABASE_URL=sqlite:" + db,
                                  "CONSUMER_NAME=bench-bin", "METRICS_LISTEN=127.0.0.1:0", "LOG_LEVEL=warn"};
  env.insert(env.end(), o.compactor_env.begin(), o.compactor_env.end());
  pid_t pid = SpawnBinary(o.compactor_bin, env);
  std::cout << "compactor_pid=" << pid << std::endl;  // run.sh records it so its trap can stop it
  long long rss_peak_kb = 0;
  int64_t events = 0;
  auto deadline = t0 + std::chrono::seconds(120);
  while (Clk::now() < deadline) {
    auto x = r->Command({"XLEN", keys.EventsStream()});
    events = x.ok() ? x->integer : 0;
    rss_peak_kb = std::max(rss_peak_kb, ProcStatusKb(pid, "VmRSS"));
    if (events >= o.gens) break;
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      std::cerr << "compactor_bench: the compactor binary exited early\n";
      std::exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  double secs = Seconds(Clk::now() - t0);
  long long rss_kb = ProcStatusKb(pid, "VmRSS");
  long long hwm_kb = ProcStatusKb(pid, "VmHWM");
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  auto store = SqlStore::Open("sqlite:" + db);
  MustOk(store.status(), "SqlStore::Open");
  auto rows = (*store)->CountGenerations();
  MustOk(rows.status(), "CountGenerations");
  std::cerr << "compactor_bench: binary: " << *rows << " rows (" << events << " events) in " << secs
            << " s (including process start-up)\n";
  const std::string tag = o.entry_chunks > 1 ? "bin_entries_" : "bin_";  // run.sh runs both shapes
  Emit(tag + "cps", static_cast<double>(total_chunks) / secs);
  Emit(tag + "rows", static_cast<double>(*rows));
  Emit(tag + "rss_mb", static_cast<double>(std::max(rss_kb, rss_peak_kb)) / 1024.0);
  Emit(tag + "hwm_mb", static_cast<double>(hwm_kb) / 1024.0);
  store->reset();
  for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  (void)r->Command({"FLUSHALL"});
}

}  // namespace

int main(int argc, char** argv) {
  Flags f(argc, argv);
  Options o;
  o.redis_port = static_cast<int>(f.Int("redis-port", 0));
  o.gens = f.Int("gens", 2000);
  o.chunks = static_cast<int>(f.Int("chunks", 50));
  o.chunk_bytes = static_cast<int>(f.Int("chunk-bytes", 200));
  o.window = static_cast<int>(f.Int("window", 64));
  o.entry_chunks = static_cast<int>(std::max<int64_t>(1, f.Int("entry-chunks", 1)));
  o.loops = static_cast<int>(f.Int("loops", 0));
  o.loop_options.linger_ms = static_cast<int>(f.Int("linger-ms", o.loop_options.linger_ms));
  o.loop_options.min_batch = static_cast<int>(f.Int("min-batch", o.loop_options.min_batch));
  o.loop_options.read_count = static_cast<int>(f.Int("read-count", o.loop_options.read_count));
  o.tmpdir = f.Str("tmpdir", "/tmp");
  o.compactor_bin = f.Str("compactor-bin", "");
  for (std::string rest = f.Str("compactor-env", ""); !rest.empty();) {
    size_t comma = rest.find(',');
    o.compactor_env.push_back(rest.substr(0, comma));
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  if (o.redis_port == 0) {
    std::cerr << "usage: compactor_bench --redis-port P [--gens 2000] [--chunks 50] [--chunk-bytes 200] "
                 "[--window 64] [--tmpdir DIR] [--compactor-bin PATH]\n";
    return 2;
  }
  InitLogging("compactor-bench", "warn", false);
  Config cfg = MakeConfig({{"REDIS_PORT", std::to_string(o.redis_port)}});
  KeySchema keys = KeySchema::FromConfig(cfg);
  Emit("compactor_chunks_total", static_cast<double>(o.gens * o.chunks));
  // --phases picks some (comma-separated; default all): raw, loop, svc1, svc2, e2e1, e2e2, paced, bin.
  const std::string phases = "," + f.Str("phases", "raw,loop,svc1,svc2,e2e1,e2e2,paced,bin") + ",";
  auto want = [&](const char* p) { return phases.find("," + std::string(p) + ",") != std::string::npos; };
  if (want("raw")) RawCeiling(o, keys);
  if (want("loop")) RawLoopCeiling(o, keys);
  for (int n = 1; n <= 8; ++n) {
    if (want(("svc" + std::to_string(n)).c_str())) ServicePhase(o, n);
  }
  for (int n = 1; n <= 8; ++n) {
    if (want(("e2e" + std::to_string(n)).c_str())) ServicePhase(o, n, true);
  }
  if (want("paced")) PacedPhase(o, f.Double("paced-rate", 10000), f.Double("paced-seconds", 5));
  if (want("bin") && !o.compactor_bin.empty()) BinaryPhase(o);
  return 0;
}
