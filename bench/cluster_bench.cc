// One Redis vs a 3-master Redis Cluster (3 + 3 replicas) on this machine, in one run (issue 12):
//   1. routed writes: XADDs of 200-byte entries to 16 shard streams in pipelines of 100 (the cluster client
//      splits each pipeline per master: one round trip per master instead of one);
//   2. the chunk path end to end: chunk streams pre-filled with G generations x 50 chunks, one in-process
//      compactor (apply, finalize, SQLite rows) until every row is written;
//   3. the task queue: N no-op tasks enqueued in bulk (EnqueueTasks, 500 per call), then run by one
//      in-process WorkerService (4 slots, default prefetch) until every one succeeded. The cluster uses
//      TASK_QUEUE_SHARDS' default there (4 shards per queue), one Redis the single queue stream.
// Both servers are started by the bench (streamfleet::testing) and stopped at the end; prints a table.
//   cluster_bench [--gens 300] [--xadds 20000] [--tasks 20000]
#include <filesystem>
#include <iostream>
#include <thread>

#include "bench/bench_util.h"
#include "streamfleet/base/time.h"
#include "compactor/compactor_service.h"
#include "queue-worker/worker_service.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "streamfleet/testing/chunk_envelope.h"
#include "streamfleet/testing/redis_cluster.h"
#include "streamfleet/testing/redis_server.h"

using namespace streamfleet;
using namespace streamfleet::bench;

namespace {

constexpr int kShards = 16;
constexpr int kChunks = 50;

std::string Envelope(const GenerationId& g, int64_t seq, const std::string& data, bool final) {
  return streamfleet::testing::ChunkEnvelopeBytes(g, seq, data, final, 0, false, 0, "bench");
}

struct Result {
  double xadd_per_s = 0;
  double chunks_per_s = 0;
  double enqueue_per_s = 0;
  double tasks_per_s = 0;
};

// Part 3: enqueue then process `tasks` no-op tasks; fills out.enqueue_per_s and out.tasks_per_s.
void RunTasks(std::map<std::string, std::string> env, const std::function<void()>& flush, int tasks,
              Result& out) {
  env.insert({{"QUEUES", "default:1"}, {"WORKER_CONCURRENCY", "4"}, {"CONSUMER_NAME", "bench"}});
  Config cfg = MakeConfig(env);
  const TaskKeys keys = TaskKeys::FromConfig(cfg);
  auto r = RedisClient::Connect(cfg.redis);
  MustOk(r.status(), "connect");
  flush();
  worker::HandlerRegistry handlers;
  handlers.Register("bench.noop", [](worker::TaskContext&) { return Status::Ok(); });
  prometheus::Registry registry;
  RedisServerClock clock;
  worker::WorkerService svc(cfg, clock, handlers, registry);
  MustOk(svc.EnsureGroups(**r), "groups");

  auto t0 = Clk::now();
  for (int i = 0; i < tasks; i += 500) {
    std::vector<TaskToEnqueue> batch(static_cast<size_t>(std::min(500, tasks - i)), TaskToEnqueue{"bench.noop", "{}", {}});
    MustOk(EnqueueTasks(**r, keys, batch, WallClockMs()).status(), "enqueue");
  }
  out.enqueue_per_s = tasks / Seconds(Clk::now() - t0);

  std::atomic<bool> stop{false};
  t0 = Clk::now();
  std::thread loop([&] { svc.Run(stop); });
  while (svc.Processed("bench.noop", "succeeded") < tasks) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  out.tasks_per_s = tasks / Seconds(Clk::now() - t0);
  stop = true;
  loop.join();
}

Result Run(std::map<std::string, std::string> env, const std::function<void()>& flush, int gens, int xadds) {
  Result out;
  std::string db = testing::TempPath("sf-cluster-bench") + ".db";
  env.insert({{"CHUNK_STREAMS", std::to_string(kShards)},
              {"DATABASE_URL", "sqlite:" + db},
              {"GENERATION_IDLE_TIMEOUT", "300s"},
              {"CONSUMER_NAME", "bench"}});
  Config cfg = MakeConfig(env);
  KeySchema keys = KeySchema::FromConfig(cfg);
  auto r = RedisClient::Connect(cfg.redis);
  MustOk(r.status(), "connect");
  flush();

  const std::string payload(200, 'x');
  auto t0 = Clk::now();
  for (int i = 0; i < xadds; i += 100) {
    std::vector<std::vector<std::string>> cmds;
    for (int j = i; j < std::min(xadds, i + 100); ++j) {
      cmds.push_back({"XADD", keys.ChunkStream(j % kShards) + ":raw", "*", "e", payload});
    }
    auto p = (*r)->Pipeline(cmds);
    MustOk(p.status(), "XADD pipeline");
  }
  out.xadd_per_s = xadds / Seconds(Clk::now() - t0);
  flush();

  for (int g = 1; g <= gens; g += 20) {
    std::vector<std::vector<std::string>> cmds;
    for (int k = g; k < std::min(gens + 1, g + 20); ++k) {
      GenerationId id{k % 7 + 1, 0, k};
      for (int s = 0; s < kChunks; ++s) {
        cmds.push_back({"XADD", keys.ChunkStream(keys.ShardOf(id)), "*", "e",
                        Envelope(id, s, payload, s == kChunks - 1)});
      }
    }
    MustOk((*r)->Pipeline(cmds).status(), "prefill");
  }
  auto store = SqlStore::Open(cfg.database_url);
  MustOk(store.status(), "sqlite");
  MustOk((*store)->Migrate(), "migrate");
  prometheus::Registry registry;
  RedisServerClock clock;
  compactor::LoopOptions o;
  o.block_ms = 50;
  compactor::CompactorService svc(cfg, clock, **store, registry, o);
  std::atomic<bool> stop{false};
  t0 = Clk::now();
  std::thread loop([&] { svc.Run(stop); });
  while (*(*store)->CountGenerations() < gens) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  out.chunks_per_s = static_cast<double>(gens) * kChunks / Seconds(Clk::now() - t0);
  stop = true;
  loop.join();
  for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f(argc, argv);
  const int gens = static_cast<int>(f.Int("gens", 300));
  const int xadds = static_cast<int>(f.Int("xadds", 20000));
  const int tasks = static_cast<int>(f.Int("tasks", 20000));

  Result single, cluster;
  {
    testing::RedisServer server;
    auto flush = [&] { MustOk(ConnectOrDie(server.port())->Command({"FLUSHALL"}).status(), "FLUSHALL"); };
    single = Run({{"REDIS_PORT", std::to_string(server.port())}}, flush, gens, xadds);
    RunTasks({{"REDIS_PORT", std::to_string(server.port())}}, flush, tasks, single);
  }
  {
    testing::RedisCluster c;
    cluster = Run(c.env(), [&] { c.FlushAll(); }, gens, xadds);
    RunTasks(c.env(), [&] { c.FlushAll(); }, tasks, cluster);
  }
  auto us = [](double per_s) { return per_s > 0 ? 1e6 / per_s : 0; };
  std::printf("| Path (this 2-core machine, every server on it) | 1 Redis | 3-master cluster | cluster / 1 Redis |\n");
  std::printf("|---|---|---|---|\n");
  std::printf("| XADD 200 B, pipelines of 100 over %d shard streams | %.0f /s (%.2f us/op) | %.0f /s (%.2f us/op) | %.2f |\n",
              kShards, single.xadd_per_s, us(single.xadd_per_s), cluster.xadd_per_s, us(cluster.xadd_per_s),
              cluster.xadd_per_s / single.xadd_per_s);
  std::printf("| chunk path end to end, 1 compactor, %d gens x %d chunks | %.0f chunks/s (%.1f us/chunk) | %.0f chunks/s (%.1f us/chunk) | %.2f |\n",
              gens, kChunks, single.chunks_per_s, us(single.chunks_per_s), cluster.chunks_per_s,
              us(cluster.chunks_per_s), cluster.chunks_per_s / single.chunks_per_s);
  std::printf("| enqueue no-op tasks, bulk of 500 (%d tasks) | %.0f tasks/s (%.1f us/task) | %.0f tasks/s (%.1f us/task) | %.2f |\n",
              tasks, single.enqueue_per_s, us(single.enqueue_per_s), cluster.enqueue_per_s, us(cluster.enqueue_per_s),
              cluster.enqueue_per_s / single.enqueue_per_s);
  std::printf("| process no-op tasks, 1 worker x 4 slots (%d tasks) | %.0f tasks/s (%.1f us/task) | %.0f tasks/s (%.1f us/task) | %.2f |\n",
              tasks, single.tasks_per_s, us(single.tasks_per_s), cluster.tasks_per_s, us(cluster.tasks_per_s),
              cluster.tasks_per_s / single.tasks_per_s);
  return 0;
}
