// Storage benchmark (issue 26, docs/performance.md "Method of the storage part"): what CHUNK_COMPRESSION saves in Redis and
// what it costs the chunk path, on LLM-like output the benchmark writes itself (pretty-printed JSON of a
// planning answer, and prose; never random bytes, which no model emits and zstd cannot shrink).
//
// Per content (json, prose), chunk size (20 B .. 64 KiB) and mode (off, zstd): FLUSHALL, then
//   1. the producer: ChunkWriter::Append, one call per generation of 50 chunks (ingest's own write path,
//      envelope building and compression included, no HTTP) -> Redis used_memory of the chunk streams;
//   2. the compactor: one CompactorService (COMPACTOR_LOOPS' work in one thread) drains every entry into the
//      buffer lists and finalizes each generation into SQLite -> used_memory of the buffers once the chunk
//      streams are deleted;
// and the chunk path's throughput with both steps timed, off and zstd alternating, best of --rounds: once
// with the two steps one after the other (every chunk's whole CPU cost, on one thread), and once pipelined,
// the producer in a thread of its own while the compactor drains, as ingest and the compactor run (the
// throughput the chunk path has; its memory is not read: the streams are being drained meanwhile).
// With --s3-endpoint, also the size of a generation's row with its text inline and with the text in the object
// store (texts of 16 KiB to 4 MiB). Prints key=value lines (bench/run.sh turns them into the tables).
//
//   storage_bench --redis-port P [--bytes 2097152 (text per run)] [--rounds 2] [--tmpdir /tmp]
//                 [--contents json,prose] [--sizes 20,200,1024,4096,16384,65536]
//                 [--s3-endpoint http://127.0.0.1:PORT (bucket "bench") [--inline-max 65536]]
#include <atomic>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "bench/bench_util.h"
#include "compactor/compactor_loops.h"
#include "streamfleet/base/clock.h"
#include "streamfleet/base/log.h"
#include "streamfleet/artifacts/artifact.h"
#include "streamfleet/chunks/chunk_buffer.h"
#include "streamfleet/chunks/chunk_writer.h"
#include "streamfleet/chunks/finalizer.h"
#include "streamfleet/sql/sql_store.h"

using namespace streamfleet;
using namespace streamfleet::bench;

namespace {

constexpr int kChunksPerGeneration = 50;

// A planning vocabulary with a skewed (Zipf-like) draw: the few common words recur, as in model output.
const std::vector<std::string>& Words() {
  static const std::vector<std::string> w = {
      "the", "of", "and", "to", "in", "a", "is", "for", "revenue", "growth", "plan", "that", "with", "on", "as",
      "this", "by", "we", "cost", "scenario", "quarter", "are", "be", "market", "from", "team", "budget", "it",
      "an", "will", "customers", "our", "sales", "which", "margin", "hiring", "risk", "at", "or", "pricing",
      "increase", "product", "assumption", "expected", "forecast", "demand", "churn", "conversion", "year",
      "pipeline", "baseline", "capacity", "operating", "expenses", "cash", "runway", "months", "segment",
      "enterprise", "retention", "acquisition", "channel", "investment", "headcount", "target", "review",
      "should", "can", "more", "than", "while", "because", "if", "lower", "higher", "next", "each", "per",
      "strategy", "support", "launch", "region", "contract", "renewal", "discount", "average", "deal", "size",
      "seasonality", "inflation", "supplier", "inventory", "backlog", "delivery", "timeline", "milestone",
      "engineering", "marketing", "finance", "operations", "compliance", "security", "infrastructure"};
  return w;
}

class TextMaker {
 public:
  explicit TextMaker(uint64_t seed) : rng_(seed) {}

  std::string Word() {
    // Zipf-ish: the index of a uniform draw cubed over the list.
    double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    const auto& w = Words();
    return w[static_cast<size_t>(u * u * u * static_cast<double>(w.size()))];
  }
  std::string Sentence() {
    int n = std::uniform_int_distribution<int>(8, 24)(rng_);
    std::string s;
    for (int i = 0; i < n; ++i) {
      std::string w = Word();
      if (i == 0) w[0] = static_cast<char>(std::toupper(w[0]));
      if (i > 0) s += ' ';
      s += w;
      if (i > 2 && i + 2 < n && rng_() % 9 == 0) s += ',';
      if (rng_() % 17 == 0) s += " " + std::to_string(rng_() % 1000) + (rng_() % 2 ? "%" : "");
    }
    return s + '.';
  }
  std::string Prose(size_t bytes) {
    std::string s;
    while (s.size() < bytes) s += Sentence() + (rng_() % 5 == 0 ? "\n\n" : " ");
    return s;
  }
  // A model's pretty-printed JSON answer: monthly rows with figures and a rationale each.
  std::string Json(size_t bytes) {
    std::string s = "{\n  \"scenario\": \"" + Word() + " " + Word() + "\",\n  \"months\": [\n";
    for (int m = 0; s.size() < bytes; ++m) {
      char row[512];
      std::snprintf(row, sizeof row,
                    "    {\n      \"month\": \"%04d-%02d\",\n      \"revenue\": %.2f,\n      \"costs\": {\"payroll\": %.2f, "
                    "\"marketing\": %.2f, \"infrastructure\": %.2f},\n      \"headcount\": %d,\n      \"rationale\": \"",
                    2027 + m / 12, m % 12 + 1, 100000 + static_cast<double>(rng_() % 9000000) / 100.0,
                    50000 + static_cast<double>(rng_() % 4000000) / 100.0, static_cast<double>(rng_() % 2000000) / 100.0,
                    static_cast<double>(rng_() % 500000) / 100.0, static_cast<int>(20 + rng_() % 80));
      s += row + Sentence() + "\"\n    },\n";
    }
    return s + "    {}\n  ]\n}\n";
  }

 private:
  std::mt19937_64 rng_;
};

struct Run {
  double text_bytes = 0, stream_mem = 0, buffer_mem = 0, seconds = 0;
  int64_t chunks = 0;
};

struct Options {
  int redis_port = 0;
  int64_t bytes = 2 << 20;
  int rounds = 2;
  std::string tmpdir = "/tmp";
};

// One producer + compactor pass over `chunks` (each generation: kChunksPerGeneration of them, the last final);
// pipelined: the producer runs in its own thread meanwhile.
Run Measure(const Options& o, const std::vector<std::string>& chunks, bool compress, int64_t first_gen,
            bool pipelined) {
  std::map<std::string, std::string> env = {{"REDIS_URL", "redis://127.0.0.1:" + std::to_string(o.redis_port)},
                                            {"CHUNK_COMPRESSION", compress ? "zstd" : "off"},
                                            {"CONSUMER_NAME", "bench"},
                                            {"CHUNK_STREAMS", "4"}};
  std::string db = o.tmpdir + "/storage-bench-" + std::to_string(getpid()) + ".db";
  std::filesystem::remove(db);
  env["DATABASE_URL"] = "sqlite:" + db;
  Config config = MakeConfig(env);
  auto redis = RedisClient::Connect(config.redis).value();
  (void)redis->Command({"FLUSHALL"});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto store = SqlStore::Open(config.database_url).value();
  if (!store->Migrate().ok()) std::exit(1);
  RedisServerClock clock;
  prometheus::Registry registry;
  compactor::LoopOptions lo;
  lo.block_ms = 5;
  compactor::CompactorService svc(config, clock, *store, registry, lo);
  std::atomic<bool> stop{false};
  (void)svc.RunOnce(stop);  // creates the group before the first entry

  Run run;
  run.chunks = static_cast<int64_t>(chunks.size());
  for (const auto& c : chunks) run.text_bytes += static_cast<double>(c.size());
  double mem0 = RedisInfoField(*redis, "memory", "used_memory");
  ChunkWriter writer(config);
  const int64_t gens = static_cast<int64_t>(chunks.size() / kChunksPerGeneration);  // whole ones (Cut)
  auto produce = [&] {
    for (int64_t g = 0; g < gens; ++g) {
      std::vector<PendingChunk> batch;
      for (int64_t k = 0; k < kChunksPerGeneration; ++k) {
        batch.push_back({k, chunks[static_cast<size_t>(g * kChunksPerGeneration + k)], k + 1 == kChunksPerGeneration,
                         0, false, ""});
      }
      auto r = writer.Append(*redis, GenerationId{7, 0, first_gen + g}, batch, "bench");
      if (!r.ok()) {
        std::cerr << "append: " << r.status().ToString() << "\n";
        std::exit(1);
      }
    }
  };
  auto t0 = Clk::now();
  std::thread producer;
  if (pipelined) {
    producer = std::thread(produce);
  } else {
    produce();
    run.stream_mem = RedisInfoField(*redis, "memory", "used_memory") - mem0;
  }
  // Drain until every generation is finalized (their final chunks complete them).
  while (svc.metrics().finalized_complete.Value() < static_cast<double>(gens)) (void)svc.RunOnce(stop);
  run.seconds = Seconds(Clk::now() - t0);
  if (producer.joinable()) producer.join();
  KeySchema keys = KeySchema::FromConfig(config);
  std::vector<std::string> del = {"DEL", keys.EventsStream()};
  for (int s = 0; s < keys.chunk_streams(); ++s) {
    del.push_back(keys.ChunkStream(s));
    del.push_back(keys.FinalizeStream(s));
  }
  (void)redis->Command(del);
  run.buffer_mem = RedisInfoField(*redis, "memory", "used_memory") - mem0;
  std::filesystem::remove(db);
  return run;
}

std::vector<std::string> Cut(const std::string& text, size_t size) {
  std::vector<std::string> out;
  for (size_t at = 0; at + size <= text.size(); at += size) out.push_back(text.substr(at, size));
  // Whole generations only: the drain waits for every generation's final chunk.
  out.resize(out.size() - out.size() % kChunksPerGeneration);
  return out;
}

// Row sizes (issue 26, "Object storage"): one generation of `text`, buffered in 4 KiB chunks and finalized by
// the compactor's Finalizer into SQLite, once with every text in its row and once with ARTIFACT_STORE (s3rver at
// s3_endpoint) and ARTIFACT_INLINE_MAX_BYTES=inline_max. Emits the row's bytes (llm_response + compacted +
// metadata, as SQL stores them) both ways and the object's size.
void RowSizes(const Options& o, const std::string& key, const std::string& text, const std::string& s3_endpoint,
              int64_t inline_max, int64_t gen) {
  double row_bytes[2] = {0, 0};
  double object_bytes = 0;
  for (int mode = 0; mode < 2; ++mode) {
    std::string db = o.tmpdir + "/storage-bench-rows-" + std::to_string(getpid()) + ".db";
    std::filesystem::remove(db);
    std::map<std::string, std::string> env = {{"REDIS_URL", "redis://127.0.0.1:" + std::to_string(o.redis_port)},
                                              {"DATABASE_URL", "sqlite:" + db},
                                              {"CONSUMER_NAME", "bench"}};
    if (mode == 1) {
      env.insert({{"ARTIFACT_STORE", "s3://bench/rows"}, {"ARTIFACT_STORE_ENDPOINT", s3_endpoint},
                  {"AWS_ACCESS_KEY_ID", "S3RVER"}, {"AWS_SECRET_ACCESS_KEY", "S3RVER"},
                  {"ARTIFACT_INLINE_MAX_BYTES", std::to_string(inline_max)}});
    }
    Config config = MakeConfig(env);
    auto redis = RedisClient::Connect(config.redis).value();
    auto store = SqlStore::Open(config.database_url).value();
    if (!store->Migrate().ok()) std::exit(1);
    RedisServerClock clock;
    ChunkBuffer buffer(config, clock);
    Finalizer finalizer(config, buffer, *store, "bench");
    GenerationId g{7, 0, gen + mode};
    std::vector<ChunkItem> items;
    for (size_t at = 0, seq = 0; at < text.size(); at += 4096, ++seq) {
      ChunkItem item;
      item.gen = g;
      item.seq = static_cast<int64_t>(seq);
      item.data = text.substr(at, 4096);
      items.push_back(std::move(item));
    }
    for (size_t i = 0; i < items.size(); i += 500) {
      std::vector<ChunkItem> batch(items.begin() + static_cast<std::ptrdiff_t>(i),
                                   items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), i + 500)));
      if (!buffer.Apply(*redis, batch).ok()) std::exit(1);
    }
    auto done = finalizer.Finalize(*redis, {g, "complete", "1-0"});
    if (!done.ok()) {
      std::cerr << "finalize: " << done.status().ToString() << "\n";
      std::exit(1);
    }
    auto row = store->GetGeneration(g.gen).value();
    if (!row) std::exit(1);
    row_bytes[mode] = static_cast<double>(row->llm_response.value_or("").size() + row->compacted.value_or("").size() +
                                          row->metadata.size());
    if (mode == 1) {
      auto ref = ArtifactOfMetadata(row->metadata);
      object_bytes = ref ? static_cast<double>(ref->stored_bytes) : 0;
    }
    std::filesystem::remove(db);
  }
  Emit("rows_" + key + "_text_bytes", static_cast<double>(text.size()));
  Emit("rows_" + key + "_inline_row_bytes", row_bytes[0]);
  Emit("rows_" + key + "_store_row_bytes", row_bytes[1]);
  Emit("rows_" + key + "_object_bytes", object_bytes);
}

}  // namespace

int main(int argc, char** argv) {
  Flags f(argc, argv);
  Options o;
  o.redis_port = static_cast<int>(f.Int("redis-port", 0));
  o.bytes = f.Int("bytes", o.bytes);
  o.rounds = static_cast<int>(f.Int("rounds", 2));
  o.tmpdir = f.Str("tmpdir", "/tmp");
  if (o.redis_port <= 0) {
    std::cerr << "usage: storage_bench --redis-port P [--bytes 2097152] [--rounds 2] [--tmpdir /tmp]\n";
    return 2;
  }
  InitLogging("storage-bench", "warn", false);
  TextMaker maker(26);
  int64_t gen = 1;
  std::set<std::string> only_contents, only_sizes;  // --contents json,prose --sizes 1024,4096: a subset
  for (auto [flag, set] : {std::pair{"contents", &only_contents}, std::pair{"sizes", &only_sizes}}) {
    std::string v = f.Str(flag, "");
    for (size_t at = 0; !v.empty() && at != std::string::npos;) {
      size_t comma = v.find(',', at);
      set->insert(v.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
      at = comma == std::string::npos ? comma : comma + 1;
    }
  }
  for (const char* content : {"json", "prose"}) {
    if (!only_contents.empty() && !only_contents.count(content)) continue;
    for (size_t size : {20, 200, 1024, 4096, 16384, 65536}) {
      if (!only_sizes.empty() && !only_sizes.count(std::to_string(size))) continue;
      // 20-byte chunks: a quarter of the text (100k chunks already say it; the run stays short).
      size_t want = static_cast<size_t>(o.bytes) / (size == 20 ? 4 : 1);
      want = std::max(want, size * kChunksPerGeneration * 4);
      std::string text = std::string(content) == "json" ? maker.Json(want) : maker.Prose(want);
      std::vector<std::string> chunks = Cut(text, size);
      Run best[2], best_pipelined[2];
      for (int round = 0; round < o.rounds; ++round) {
        for (int mode = 0; mode < 2; ++mode) {
          Run r = Measure(o, chunks, mode == 1, gen, false);
          gen += static_cast<int64_t>(chunks.size() / kChunksPerGeneration);
          if (round == 0 || r.seconds < best[mode].seconds) best[mode] = r;
          Run p = Measure(o, chunks, mode == 1, gen, true);
          gen += static_cast<int64_t>(chunks.size() / kChunksPerGeneration);
          if (round == 0 || p.seconds < best_pipelined[mode].seconds) best_pipelined[mode] = p;
        }
      }
      std::string k = std::string(content) + "_" + std::to_string(size);
      for (int mode = 0; mode < 2; ++mode) {
        std::string m = k + (mode ? "_zstd" : "_off");
        Emit(m + "_stream_mem_per_byte", best[mode].stream_mem / best[mode].text_bytes);
        Emit(m + "_buffer_mem_per_byte", best[mode].buffer_mem / best[mode].text_bytes);
        Emit(m + "_chunks_per_s", static_cast<double>(best[mode].chunks) / best[mode].seconds);
        Emit(m + "_mb_per_s", best[mode].text_bytes / 1e6 / best[mode].seconds);
        Emit(m + "_pipelined_chunks_per_s", static_cast<double>(best_pipelined[mode].chunks) / best_pipelined[mode].seconds);
      }
    }
  }
  // Row sizes, when an S3-compatible endpoint is given (bench/run.sh starts s3rver for it).
  std::string s3 = f.Str("s3-endpoint", "");
  if (!s3.empty()) {
    const int64_t inline_max = f.Int("inline-max", 65536);
    Emit("rows_inline_max", static_cast<double>(inline_max));
    for (const char* content : {"json", "prose"}) {
      if (!only_contents.empty() && !only_contents.count(content)) continue;
      for (size_t size : {16384, 262144, 1048576, 4194304}) {
        std::string text = std::string(content) == "json" ? maker.Json(size) : maker.Prose(size);
        RowSizes(o, std::string(content) + "_" + std::to_string(size), text, s3, inline_max, gen);
        gen += 2;
      }
    }
  }
  return 0;
}
