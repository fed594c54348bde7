// streamfleetctl: the operator's command line. Same configuration (environment) as the fleet; the same
// code paths as the processes (compact-generation runs the compactor's Finalizer).
// Exit codes: 0 success, 1 operation failed (one-line reason on stderr), 2 usage or configuration error.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <iostream>
#include <nlohmann/json.hpp>

#include "streamfleet/operations/manual_compaction.h"
#include "tools/progress_bar.h"
#include "streamfleet/operations/replay_generation.h"
#include "streamfleet/cache/cache.h"
#include "streamfleet/base/config.h"
#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/operations/operator_json.h"
#include "streamfleet/operations/operator_task.h"
#include "streamfleet/base/json_input.h"
#include "streamfleet/chunks/generation_request.h"
#include "streamfleet/chunks/generation_start.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/base/process_cli.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/sql/sql_store.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/taskqueue/task_queue.h"

using namespace streamfleet;
using nlohmann::json;

namespace {

// The operation failed: exit 1.
struct Failure {
  std::string message;
};
// The command line asks for something that cannot be meant: exit 2, like CLI11's own usage errors.
struct Usage {
  std::string message;
};

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

template <typename T>
T Must(StatusOr<T> v, const std::string& what) {
  if (!v.ok()) throw Failure{what + ": " + v.status().ToString()};
  return std::move(v).value();
}
void Must(const Status& s, const std::string& what) {
  if (!s.ok()) throw Failure{what + ": " + s.ToString()};
}

std::unique_ptr<RedisClient> Redis(const Config& c) { return Must(RedisClient::Connect(c.redis), "redis"); }
std::unique_ptr<SqlStore> Store(const Config& c) {
  auto s = Must(SqlStore::Open(c.database_url), "database");
  Must(s->Ping(), "database");
  return s;
}

void Print(bool as_json, const json& j, const std::string& human) {
  if (as_json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << human;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"streamfleetctl: operate a streamfleet deployment (configuration from the environment, see docs/CONFIGURATION.md)"};
  app.require_subcommand(1);
  // Options of the app are accepted after the command too (`streamfleetctl streams --json`); subcommands
  // created below inherit this.
  app.fallthrough();
  app.set_version_flag("--version", std::string(StreamfleetVersion()));
  bool as_json = false;
  app.add_flag("--json", as_json, "machine-readable output");

  int64_t org = 0, gen = 0, scenario = 0;
  bool del = false, preview = false;
  auto* inspect = app.add_subcommand("inspect-generation", "show a generation's Redis buffer (both key forms)\n"
                                                           "  example: streamfleetctl inspect-generation 12 59");
  inspect->add_option("ORG", org)->required()->check(CLI::PositiveNumber);
  inspect->add_option("GEN", gen)->required()->check(CLI::PositiveNumber);
  inspect->add_option("--scenario-id", scenario)->check(CLI::PositiveNumber);
  inspect->add_flag("--delete", del, "delete the buffer keys found");

  auto* compact = app.add_subcommand("compact-generation", "assemble from Redis and persist now (the compactor's code)\n"
                                                           "  example: streamfleetctl compact-generation 12 59 --scenario-id 345");
  compact->add_option("ORG", org)->required()->check(CLI::PositiveNumber);
  compact->add_option("GEN", gen)->required()->check(CLI::PositiveNumber);
  compact->add_option("--scenario-id", scenario)->check(CLI::PositiveNumber);
  compact->add_flag("--delete", del, "delete the Redis buffer after the row is committed");

  auto* replay = app.add_subcommand("replay-generation", "rebuild the Redis buffer from generation_chunks and finalize it\n"
                                                         "  example: streamfleetctl replay-generation 59 --delete");
  replay->add_option("GEN", gen)->required()->check(CLI::PositiveNumber);
  replay->add_flag("--delete", del, "delete the rebuilt Redis buffer after the row is committed");

  auto* migrate = app.add_subcommand("migrate", "apply database migrations; `migrate status` lists them\n"
                                                  "  example: streamfleetctl migrate status");
  std::string migrate_what;
  migrate->add_option("status", migrate_what, "status: list migrations without applying")->check(CLI::IsMember({"status"}));

  auto* mcm = app.add_subcommand("migrate-compacted-from-metadata", "move old blobs from metadata.compacted to the compacted column\n"
                                                                           "  example: streamfleetctl migrate-compacted-from-metadata --preview");
  mcm->add_flag("--preview", preview, "count only; change nothing");

  auto* streams = app.add_subcommand("streams", "every fleet stream and group: length, pending, lag, oldest pending, consumers\n"
                                                  "  example: streamfleetctl --json streams");
  bool streams_keys = false;
  streams->add_flag("--keys", streams_keys,
                    "only list the streams consumer groups read under this configuration, with group and process, "
                    "without connecting to Redis (what an autoscaler such as KEDA must watch)");

  auto* dlq = app.add_subcommand("dlq", "dead letters of chunks and tasks\n"
                                          "  example: streamfleetctl dlq show 1795622292908-0; streamfleetctl dlq requeue --all");
  std::string dlq_cmd, dlq_id;
  dlq->add_option("COMMAND", dlq_cmd, "list | show | requeue | purge")->required()->check(
      CLI::IsMember({"list", "show", "requeue", "purge"}));
  dlq->add_option("ID", dlq_id, "dead-letter entry id (show, requeue)");
  bool dlq_all = false, dlq_yes = false;
  dlq->add_flag("--all", dlq_all, "requeue every entry");
  std::string dlq_older_than, dlq_type, dlq_stream;
  dlq->add_option("--older-than", dlq_older_than, "purge: only entries dead-lettered longer ago than this (e.g. 7d, 12h)");
  dlq->add_option("--type", dlq_type, "purge: only task dead letters of this task type");
  dlq->add_option("--stream", dlq_stream, "purge: only entries that came from this stream");
  dlq->add_flag("--yes", dlq_yes, "purge: do not ask for confirmation on a terminal");

  auto* enqueue = app.add_subcommand("enqueue", "enqueue a task\n  example: streamfleetctl enqueue cache.flush --payload '{\"name\":\"generation\"}'");
  std::string type, payload = "{}", queue = "default", delay, unique;
  enqueue->add_option("TYPE", type)->required();
  enqueue->add_option("--payload", payload, "JSON payload");
  enqueue->add_option("--queue", queue);
  std::string at;
  auto* delay_opt = enqueue->add_option("--delay", delay, "run later, e.g. 30s, 5m");
  enqueue->add_option("--at", at, "run at a time: ISO-8601 UTC (2026-11-25T18:00:00Z) or unix seconds")->excludes(delay_opt);
  enqueue->add_option("--unique-key", unique, "a duplicate enqueue within an hour is a no-op");
  bool enqueue_force = false;
  enqueue->add_flag("--force", enqueue_force, "enqueue to a queue that no worker of this configuration reads (QUEUES)");

  auto* generate = app.add_subcommand(
      "generate", "start a provider generation (the generation.run task, as POST /v1/orgs/{org}/generations)\n"
                  "  example: streamfleetctl generate 12 --content 'Plan Q3' --language en --scenario-id 345");
  int64_t gen_org = 0, gen_scenario = 0;
  std::string gen_content, gen_source = "cli", gen_language, gen_model, gen_initiator;
  generate->add_option("ORG", gen_org, "organization id")->required()->check(CLI::PositiveNumber);
  generate->add_option("--content", gen_content, "the instruction text")->required();
  generate->add_option("--source", gen_source, "where the instruction came from (default cli)");
  generate->add_option("--language", gen_language);
  generate->add_option("--scenario-id", gen_scenario)->check(CLI::PositiveNumber);
  generate->add_option("--model", gen_model, "default PROVIDER_MODEL");
  generate->add_option("--initiator", gen_initiator, "who started it (kept in metadata.initiator)");

  auto* tasks = app.add_subcommand("tasks", "`tasks show ID`: a task's status; `tasks scheduled`: delayed tasks and retries\n"
                                              "  example: streamfleetctl tasks show 9c296fdc4df40a81b930");
  std::string tasks_cmd, task_id;
  tasks->add_option("COMMAND", tasks_cmd)->required()->check(CLI::IsMember({"show", "scheduled"}));
  tasks->add_option("ID", task_id);

  auto* queues = app.add_subcommand("queues", "`queues pause Q` / `queues resume Q`\n"
                                                "  example: streamfleetctl queues pause low");
  std::string queues_cmd, queue_name;
  queues->add_option("COMMAND", queues_cmd)->required()->check(CLI::IsMember({"pause", "resume"}));
  queues->add_option("QUEUE", queue_name)->required();

  auto* buffers = app.add_subcommand("buffers", "live generation buffers: count, total chunks, largest LLEN, over threshold\n"
                                                  "  example: streamfleetctl --json buffers");
  auto* config_cmd = app.add_subcommand("config", "print every configuration variable with its default\n"
                                                     "  example: streamfleetctl --json config");

  auto* cache_cmd = app.add_subcommand("cache", "the fleet cache (IR_CACHE_*): `cache stats [NAME]`, `cache flush NAME|--key|--name|--pattern`\n"
                                                "  example: streamfleetctl cache flush --name generation");
  cache_cmd->require_subcommand(1);
  auto* cache_stats = cache_cmd->add_subcommand("stats", "Redis keys and bytes (MEMORY USAGE), names, this host's files\n"
                                                           "  example: streamfleetctl cache stats generation");
  std::string stats_name;
  cache_stats->add_option("NAME", stats_name, "show only this name's key count");
  auto* cache_flush = cache_cmd->add_subcommand("flush", "delete cache entries (SCAN COUNT 100; only cache keys)\n"
                                                           "  example: streamfleetctl cache flush generation");
  std::string flush_key, flush_name, flush_pattern;
  auto* fk = cache_flush->add_option("--key", flush_key, "one key, e.g. ir_cache:generation_1a2b3c4d");
  auto* fn = cache_flush->add_option("--name", flush_name, "every key of a name, e.g. generation");
  auto* fp = cache_flush->add_option("--pattern", flush_pattern, "a Redis glob over keys, e.g. 'ir_cache:*'");
  std::string flush_positional;
  auto* fpos = cache_flush->add_option("NAME", flush_positional, "same as --name NAME");
  fk->excludes(fn)->excludes(fp)->excludes(fpos);
  fn->excludes(fp)->excludes(fpos);
  fp->excludes(fpos);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0; every usage error exits 2 (docs/CLI.md), not
    // CLI11's own codes (106, 109, ...).
    app.exit(e);
    return e.get_exit_code() == 0 ? 0 : 2;
  }

  if (config_cmd->parsed()) {
    json j = json::array();
    for (const auto& v : ConfigVars()) {
      j.push_back({{"name", v.name}, {"default", v.default_value}, {"description", v.description}});
      if (!as_json) std::cout << v.name << "=" << v.default_value << "\n    " << v.description << "\n";
    }
    if (as_json) std::cout << j.dump(2) << "\n";
    return 0;
  }
  auto cfg = LoadConfig(ProcessEnv(), "0.0.0.0:0");
  if (!cfg.ok()) {
    std::cerr << "streamfleetctl: configuration error: " << cfg.status().message() << "\n";
    return 2;
  }
  const Config& c = *cfg;
  KeySchema keys = KeySchema::FromConfig(c);
  TaskKeys tkeys = TaskKeys::FromConfig(c);
  try {
    if (inspect->parsed()) {
      auto r = Redis(c);
      auto found = Must(InspectGenerationBuffer(*r, keys, org, gen, scenario), "inspect");
      json out = json::array();
      std::string human;
      for (const auto& k : found) {
        json e = BufferKeyJson(k);
        human += k.key + "  type=" + k.type + " ttl=" + std::to_string(k.ttl);
        if (k.type == "list") {
          human += " llen=" + std::to_string(k.llen);
        } else if (k.type == "hash") {
          human += " " + e["hash"].dump();
        }
        human += "\n";
        out.push_back(e);
      }
      if (found.empty()) human = "no buffer keys for org " + std::to_string(org) + " generation " + std::to_string(gen) + "\n";
      if (del && !found.empty()) {
        std::vector<std::string> cmd = {"DEL"};
        for (const auto& k : found) cmd.push_back(k.key);
        auto n = Must(r->Command(cmd), "DEL").integer;
        human += "deleted " + std::to_string(n) + " keys\n";
      }
      Print(as_json, json{{"keys", out}, {"deleted", del ? found.size() : 0}}, human);
    } else if (compact->parsed()) {
      auto r = Redis(c);
      auto store = Store(c);
      auto m = compactor::CompactGenerationNow(c, *r, *store, GenerationId{org, scenario, gen}, del, "streamfleetctl");
      if (!m.ok() && m.status().code() == StatusCode::kNotFound) throw Failure{m.status().message()};
      auto res = Must(std::move(m), "compact");
      const auto& o = res.outcome;
      Print(as_json, ManualCompactionJson(gen, res),
            "compacted generation " + std::to_string(gen) + ": " + std::to_string(o.chunk_count) + " chunks, json " +
                (o.json_valid ? "valid" : "invalid (fallback recorded)") + (del ? ", buffer deleted" : "") + "\n");
    } else if (replay->parsed()) {
      auto r = Redis(c);
      auto store = Store(c);
      Must(store->Migrate(), "migrate");
      RedisServerClock clock;
      compactor::ChunkBuffer buffer(c, clock);
      Cache cache(c.redis, CacheOptionsFromConfig(c));
      compactor::Finalizer fin(c, buffer, *store, "streamfleetctl", &cache);
      std::unique_ptr<ctl::ProgressBar> bar;
      auto res = Must(ctl::ReplayGeneration(*r, *store, buffer, fin, gen, del,
                                            [&](int64_t done, int64_t total) {
                                              if (!bar) bar = std::make_unique<ctl::ProgressBar>("replaying", total);
                                              bar->Update(done);
                                            }),
                      "replay");
      bar.reset();
      const auto& o = res.outcome;
      Print(as_json,
            json{{"organization_id", res.gen.org}, {"scenario_id", res.gen.scenario}, {"generation_id", gen},
                 {"rows", res.rows}, {"appended", res.appended}, {"chunk_count", o.chunk_count},
                 {"json_valid", o.json_valid}, {"missing_seqs", o.missing}, {"buffer_deleted", res.buffer_deleted}},
            "replayed generation " + std::to_string(gen) + " (org " + std::to_string(res.gen.org) + "): " +
                std::to_string(res.rows) + " rows, " + std::to_string(res.appended) + " re-buffered, " +
                std::to_string(o.chunk_count) + " chunks compacted, json " +
                (o.json_valid ? "valid" : "invalid (fallback recorded)") +
                (res.buffer_deleted ? ", buffer deleted" : "") + "\n");
    } else if (migrate->parsed()) {
      auto store = Store(c);
      if (migrate_what != "status") Must(store->Migrate(), "migrate");
      auto list = Must(store->Migrations(), "migrations");
      json j = json::array();
      std::string human;
      for (const auto& m : list) {
        j.push_back({{"version", m.version}, {"name", m.name}, {"applied", m.applied}});
        human += std::to_string(m.version) + "  " + (m.applied ? "applied" : "pending") + "  " + m.name + "\n";
      }
      Print(as_json, j, human);
    } else if (mcm->parsed()) {
      auto store = Store(c);
      auto n = Must(store->MigrateCompactedFromMetadata(preview), "migrate-compacted-from-metadata");
      Print(as_json, json{{"rows", n}, {"preview", preview}},
            std::to_string(n) + (preview ? " rows would be moved (preview: nothing changed)\n" : " rows moved\n"));
    } else if (streams->parsed() && streams_keys) {
      json j = json::array();
      std::string human;
      for (const auto& s : ConsumedStreams(c)) {
        j.push_back({{"stream", s.stream}, {"group", s.group}, {"process", s.process}});
        human += s.stream + "  group=" + s.group + "  " + s.process + "\n";
      }
      Print(as_json, j, human);
    } else if (streams->parsed()) {
      auto r = Redis(c);
      std::vector<std::string> names = FleetStreams(c);
      json j = json::array();
      char line[256];
      std::snprintf(line, sizeof(line), "%-32s %8s  %-10s %8s %8s %9s %12s\n", "STREAM", "LENGTH", "GROUP", "PENDING",
                    "LAG", "CONSUMERS", "OLDEST(s)");
      std::string human = line;
      for (const auto& s : names) {
        auto st = Must(GetStreamStats(*r, s, /*with_consumers=*/true), "stream " + s);
        if (st.groups.empty()) {
          std::snprintf(line, sizeof(line), "%-32s %8lld  %-10s\n", s.c_str(), static_cast<long long>(st.length), "-");
          human += line;
        }
        for (const auto& gs : st.groups) {
          std::snprintf(line, sizeof(line), "%-32s %8lld  %-10s %8lld %8lld %9lld %12.1f\n", s.c_str(),
                        static_cast<long long>(st.length), gs.name.c_str(), static_cast<long long>(gs.pending),
                        static_cast<long long>(gs.lag), static_cast<long long>(gs.consumers), gs.oldest_pending_seconds);
          human += line;
          for (const auto& cs : gs.consumer_list) {
            std::snprintf(line, sizeof(line), "    consumer %-28s pending %lld, idle %.1f s\n", cs.name.c_str(),
                          static_cast<long long>(cs.pending), cs.idle_ms / 1000.0);
            human += line;
          }
        }
        j.push_back(StreamStatsJson(st));
      }
      Print(as_json, j, human);
    } else if (dlq->parsed()) {
      auto r = Redis(c);
      if (dlq_cmd == "list" || dlq_cmd == "show") {
        json j = json::array();
        std::string human;
        for (const auto& d : Must(ListDeadLetters(*r, c, 1000), "XRANGE")) {
          const StreamEntry& e = d.entry;
          if (dlq_cmd == "show" && e.id != dlq_id) continue;
          j.push_back(DeadLetterJson(d));
          human += d.dlq + " " + e.id + "  " + (e.Field("source_stream") ? *e.Field("source_stream") : "") + "  " +
                   (e.Field("reason") ? *e.Field("reason") : "") + "\n";
        }
        if (dlq_cmd == "show" && j.empty()) throw Failure{"no dead letter with id " + dlq_id};
        Print(as_json, j, human.empty() ? "no dead letters\n" : human);
      } else if (dlq_cmd == "requeue") {
        if (!dlq_all && dlq_id.empty()) throw Failure{"requeue needs an ID or --all"};
        std::unique_ptr<ctl::ProgressBar> bar;
        std::string bar_stream;
        auto progress = [&](const std::string& s, int64_t done, int64_t total) {
          if (!dlq_all) return;
          if (s != bar_stream) {
            bar = std::make_unique<ctl::ProgressBar>("requeueing " + s, total);
            bar_stream = s;
          }
          bar->Update(done);
        };
        auto requeued = RequeueDeadLetters(*r, c, dlq_all ? "" : dlq_id, progress);
        bar.reset();
        if (requeued.status().code() == StatusCode::kNotFound) throw Failure{"no dead letter with id " + dlq_id};
        int64_t n = Must(std::move(requeued), "requeue");
        Print(as_json, json{{"requeued", n}}, "requeued " + std::to_string(n) + "\n");
      } else {
        DeadLetterFilter filter;
        filter.now_ms = WallClockMs();
        if (!dlq_older_than.empty()) filter.older_than_ms = Must(ParseDurationMs(dlq_older_than, 1000), "--older-than");
        filter.task_type = dlq_type;
        filter.source_stream = dlq_stream;
        // Deleting dead letters cannot be undone: a person at a terminal is asked first (scripts are not).
        if (!dlq_yes && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
          int64_t n = Must(PurgeDeadLetters(*r, c, filter, /*dry_run=*/true), "purge");
          std::cerr << "delete " << n << " dead letter(s)? this cannot be undone [y/N] ";
          std::string answer;
          std::getline(std::cin, answer);
          if (answer != "y" && answer != "yes") throw Failure{"purge cancelled: nothing deleted"};
        }
        int64_t n = Must(PurgeDeadLetters(*r, c, filter), "purge");
        Print(as_json, json{{"purged", n}}, "purged " + std::to_string(n) + "\n");
      }
    } else if (enqueue->parsed()) {
      // EnqueueOperatorTask checks the payload too; checked first here so that the message names the flag and
      // comes before the queue check and without a connection.
      if (auto p = ParseJsonInput(payload); !p.ok()) throw Failure{"--payload is not valid JSON: " + p.status().message()};
      std::vector<std::string> read = QueueNames(c);
      if (!enqueue_force && std::find(read.begin(), read.end(), queue) == read.end()) {
        throw Usage{"no worker of this configuration reads queue \"" + queue + "\" (QUEUES reads " +
                    Join(read, ", ") + "): the task would wait forever; pass --force if a worker elsewhere reads it"};
      }
      auto r = Redis(c);
      OperatorTask task{type, payload, queue, unique, 0};
      int64_t now = WallClockMs();
      if (!delay.empty()) task.run_at_ms = now + Must(ParseDurationMs(delay, 1000), "--delay");
      if (!at.empty()) task.run_at_ms = Must(ParseTimeMs(at), "--at");
      auto res = Must(EnqueueOperatorTask(*r, c, task, now), "enqueue");
      Print(as_json, json{{"id", res.id}, {"duplicate", res.duplicate}, {"scheduled", res.scheduled}},
            res.duplicate ? "duplicate of task " + res.id + " (unique key held): nothing enqueued\n"
                          : "enqueued " + res.id + (res.scheduled ? " (scheduled)\n" : "\n"));
    } else if (generate->parsed()) {
      // Through the same request validation as the HTTP route.
      json body = {{"instruction", {{"content", gen_content}, {"source", gen_source}, {"language", gen_language}}},
                   {"model", gen_model},
                   {"scenario_id", gen_scenario > 0 ? json(gen_scenario) : json(nullptr)},
                   {"initiator", gen_initiator.empty() ? json(nullptr) : json(gen_initiator)}};
      GenerationRequest req = Must(ParseGenerationRequest(gen_org, body.dump()), "generate");
      auto r = Redis(c);
      auto started = Must(StartGeneration(*r, c, req, WallClockMs()), "generate");
      Print(as_json, json{{"generation_id", started.generation_id}, {"task_id", started.task_id}},
            "generation " + std::to_string(started.generation_id) + " started (task " + started.task_id + ")\n");
    } else if (tasks->parsed()) {
      auto r = Redis(c);
      if (tasks_cmd == "show") {
        if (task_id.empty()) throw Failure{"tasks show needs an ID"};
        json h = Must(TaskStatus(*r, tkeys, task_id), "HGETALL");
        if (h.empty()) {
          throw Failure{"no status for task " + task_id +
                        (c.task_result_ttl_s > 0 ? std::string(" (unknown or expired)")
                                                 : std::string(" (TASK_RESULT_TTL=0: no task status is kept)"))};
        }
        std::string human;
        for (auto it = h.begin(); it != h.end(); ++it) human += it.key() + ": " + it.value().get<std::string>() + "\n";
        // The hash holds strings; --json gives counters and timestamps as the numbers they are.
        for (auto it = h.begin(); it != h.end(); ++it) {
          const std::string& v = it.value().get_ref<const std::string&>();
          int64_t n = 0;
          auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
          if (!v.empty() && ec == std::errc() && end == v.data() + v.size() && (v == "0" || v[0] != '0')) *it = n;
        }
        Print(as_json, h, human);
      } else {
        json j = json::array();
        std::string human;
        for (const auto& st : Must(ListScheduled(*r, tkeys, 100, QueueNames(c)), "ZRANGE")) {
          const v1::TaskEnvelope& t = st.task;
          j.push_back({{"id", t.id()}, {"type", t.type()}, {"queue", t.queue()}, {"attempt", t.attempt()},
                       {"run_at_ms", st.run_at_ms}});
          human += t.id() + "  " + t.type() + "  queue=" + t.queue() + " attempt=" + std::to_string(t.attempt()) +
                   " run_at=" + IsoUtcFromMs(st.run_at_ms) + "\n";
        }
        Print(as_json, j, human.empty() ? "no scheduled tasks\n" : human);
      }
    } else if (queues->parsed()) {
      if (!ValidQueueName(queue_name)) throw Failure{"invalid queue name"};
      auto r = Redis(c);
      Must(SetQueuePaused(*r, tkeys, queue_name, queues_cmd == "pause"), queues_cmd);
      Print(as_json, json{{"queue", queue_name}, {"paused", queues_cmd == "pause"}},
            "queue " + queue_name + (queues_cmd == "pause" ? " paused\n" : " resumed\n"));
    } else if (cache_cmd->parsed()) {
      Cache cache(c.redis, CacheOptionsFromConfig(c));
      if (cache_stats->parsed()) {
        CacheStats s = cache.Stats();
        if (!s.redis_ok) throw Failure{"redis: unreachable (cache stats need Redis)"};
        json names = json::object();
        std::string human = "redis keys: " + std::to_string(s.redis_keys) + "\nredis bytes: " +
                            std::to_string(s.redis_bytes) + "\nnames:\n";
        for (const auto& [n, k] : s.names) {
          if (!stats_name.empty() && n != stats_name) continue;
          names[n] = k;
          human += "  " + n + " " + std::to_string(k) + "\n";
        }
        human += "filesystem files: " + std::to_string(s.fs_files) + " (" + c.ir_cache_dir + "/" + c.ir_cache_prefix +
                 ")\nfilesystem bytes: " + std::to_string(s.fs_bytes) + "\n";
        Print(as_json, json{{"prefix", c.ir_cache_prefix}, {"redis_keys", s.redis_keys}, {"redis_bytes", s.redis_bytes},
                            {"names", names}, {"fs_files", s.fs_files}, {"fs_bytes", s.fs_bytes}},
              human);
      } else {
        if (!flush_positional.empty()) flush_name = flush_positional;
        StatusOr<int64_t> n = Status::InvalidArgument("cache flush needs NAME, --key, --name or --pattern");
        if (!flush_key.empty()) n = cache.InvalidateKey(flush_key);
        if (!flush_name.empty()) n = cache.InvalidateName(flush_name);
        if (!flush_pattern.empty()) n = cache.InvalidatePattern(flush_pattern);
        int64_t deleted = Must(std::move(n), "cache flush");
        Print(as_json, json{{"deleted", deleted}}, "deleted " + std::to_string(deleted) + " cache keys\n");
      }
    } else if (buffers->parsed()) {
      auto r = Redis(c);
      auto b = Must(SummarizeBuffers(*r, keys, c.llen_alert_threshold), "buffers");
      json over = json::array();
      for (const auto& o : b.over_threshold) over.push_back({{"key", o.key}, {"llen", o.llen}});
      std::string human = "buffers: " + std::to_string(b.count) + "\ntotal chunks: " + std::to_string(b.total_chunks) +
                          "\nlargest LLEN: " + std::to_string(b.max_llen) + "\nover threshold (" +
                          std::to_string(c.llen_alert_threshold) + "): " + std::to_string(over.size()) + "\n";
      for (const auto& o : b.over_threshold) human += "  " + o.key + " " + std::to_string(o.llen) + "\n";
      Print(as_json, json{{"buffers", b.count}, {"total_chunks", b.total_chunks}, {"max_llen", b.max_llen},
                          {"over_threshold", over}}, human);
    }
  } catch (const Failure& f) {
    std::cerr << "streamfleetctl: " << f.message << "\n";
    return 1;
  } catch (const Usage& u) {
    std::cerr << "streamfleetctl: " << u.message << "\n";
    return 2;
  }
  return 0;
}
