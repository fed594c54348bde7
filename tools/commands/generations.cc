// inspect-generation, compact-generation, replay-generation: one generation's Redis buffer, looked at,
// compacted now, or rebuilt from its generation_chunks rows (and the chunk archive of the rows purged), with the
// compactor's own Finalizer.
#include <memory>

#include "streamfleet/artifacts/chunk_archive.h"
#include "streamfleet/base/clock.h"
#include "streamfleet/base/text.h"
#include "streamfleet/cache/cache.h"
#include "streamfleet/chunks/chunk_buffer.h"
#include "streamfleet/chunks/finalizer.h"
#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/operations/manual_compaction.h"
#include "streamfleet/operations/operator_json.h"
#include "streamfleet/operations/replay_generation.h"
#include "tools/commands/commands.h"
#include "tools/commands/connections.h"
#include "tools/commands/failure.h"
#include "tools/progress_bar.h"

namespace streamfleet::ctl {
namespace {

using nlohmann::json;

// ORG GEN [--scenario-id S] [--delete]: what inspect-generation and compact-generation both take.
struct GenerationArgs {
  int64_t org = 0, gen = 0, scenario = 0;
  bool del = false;
};

void Inspect(const Context& ctx, const Config& c, const GenerationArgs& a) {
  auto r = ConnectRedis(c);
  auto found = Must(InspectGenerationBuffer(*r, KeySchema::FromConfig(c), a.org, a.gen, a.scenario), "inspect");
  json out = json::array();
  std::string human;
  for (const auto& k : found) {
    json e = BufferKeyJson(k);
    human += k.key + "  type=" + k.type + " ttl=" + std::to_string(k.ttl);
    if (k.type == "list") {
      human += " llen=" + std::to_string(k.llen) + " compressed=" + std::to_string(k.compressed_elements) +
               " stored_bytes=" + std::to_string(k.stored_bytes) + " text_bytes=" + std::to_string(k.text.size());
      // The text itself, decompressed: the first part only in the human form (--json has all of it).
      constexpr size_t kPreview = 2000;
      human += "\n  text: " + ToValidUtf8(k.text.substr(0, kPreview)) + (k.text.size() > kPreview ? " ..." : "");
    } else if (k.type == "hash") {
      human += " " + e["hash"].dump();
    }
    human += "\n";
    out.push_back(e);
  }
  if (found.empty()) {
    human = "no buffer keys for org " + std::to_string(a.org) + " generation " + std::to_string(a.gen) + "\n";
  }
  if (a.del && !found.empty()) {
    std::vector<std::string> cmd = {"DEL"};
    for (const auto& k : found) cmd.push_back(k.key);
    auto n = Must(r->Command(cmd), "DEL").integer;
    human += "deleted " + std::to_string(n) + " keys\n";
  }
  ctx.Print(json{{"keys", out}, {"deleted", a.del ? found.size() : 0}}, human);
}

void Compact(const Context& ctx, const Config& c, const GenerationArgs& a) {
  auto r = ConnectRedis(c);
  auto store = OpenStore(c);
  GenerationId gen{a.org, a.scenario, a.gen};
  auto m = CompactGenerationNow(c, *r, *store, gen, a.del, "streamfleetctl");
  // Nothing buffered is an answer in itself ("no buffer for ..."), not an error to prefix.
  if (!m.ok() && m.status().code() == StatusCode::kNotFound) throw Failure{m.status().message()};
  auto res = Must(std::move(m), "compact");
  const auto& o = res.outcome;
  ctx.Print(ManualCompactionJson(a.gen, res),
            "compacted generation " + std::to_string(a.gen) + ": " + std::to_string(o.chunk_count) + " chunks, json " +
                (o.json_valid ? "valid" : "invalid (fallback recorded)") + (a.del ? ", buffer deleted" : "") + "\n");
}

struct ReplayArgs {
  int64_t gen = 0;
  bool del = false;
};

void Replay(const Context& ctx, const Config& c, const ReplayArgs& a) {
  auto r = ConnectRedis(c);
  auto store = OpenStore(c);
  Must(MigrateIfBehind(*store), "migrate");
  const Config effective = a.del ? DeletingBufferConfig(c) : c;
  RedisServerClock clock;
  ChunkBuffer buffer(effective, clock);
  Cache cache(effective.redis, CacheOptionsFromConfig(effective));
  Finalizer fin(effective, buffer, *store, "streamfleetctl", &cache);
  auto archive = OpenObjectStore(c);  // chunks generation_chunks.purge archived (ARTIFACT_STORE)
  std::unique_ptr<ProgressBar> bar;
  auto res = Must(ReplayGeneration(*r, *store, archive.get(), ChunkArchiveMaxBytes(c), buffer, fin, a.gen, a.del,
                                   [&](int64_t done, int64_t total) {
                                     if (!bar) bar = std::make_unique<ProgressBar>("replaying", total);
                                     bar->Update(done);
                                   }),
                  "replay");
  bar.reset();
  const auto& o = res.outcome;
  ctx.Print(json{{"organization_id", res.gen.org}, {"scenario_id", res.gen.scenario}, {"generation_id", a.gen},
                 {"rows", res.rows}, {"from_archive", res.archived}, {"appended", res.appended}, {"chunk_count", o.chunk_count},
                 {"json_valid", o.json_valid}, {"missing_seqs", o.missing}, {"buffer_deleted", res.buffer_deleted},
                 {"other_organization_rows", res.other_organizations}},
            "replayed generation " + std::to_string(a.gen) + " (org " + std::to_string(res.gen.org) + "): " +
                std::to_string(res.rows) + " rows" +
                (res.archived > 0 ? " (" + std::to_string(res.archived) + " from the chunk archive)" : "") +
                (res.other_organizations > 0
                     ? ", " + std::to_string(res.other_organizations) + " of another organization left out"
                     : "") +
                ", " +
                std::to_string(res.appended) + " re-buffered, " +
                std::to_string(o.chunk_count) + " chunks compacted, json " +
                (o.json_valid ? "valid" : "invalid (fallback recorded)") +
                (res.buffer_deleted ? ", buffer deleted" : "") + "\n");
}

using GenerationAction = void (*)(const Context&, const Config&, const GenerationArgs&);
void AddGenerationCommand(CLI::App& app, Context& ctx, const std::string& name, const std::string& help,
                          const std::string& delete_help, GenerationAction run) {
  auto a = std::make_shared<GenerationArgs>();
  auto* command = app.add_subcommand(name, help);
  command->add_option("ORG", a->org)->required()->check(CLI::PositiveNumber);
  command->add_option("GEN", a->gen)->required()->check(CLI::PositiveNumber);
  command->add_option("--scenario-id", a->scenario)->check(CLI::PositiveNumber);
  command->add_flag("--delete", a->del, delete_help);
  ctx.OnRun(command, a, run);
}

}  // namespace

void RegisterGenerationCommands(CLI::App& app, Context& ctx) {
  AddGenerationCommand(app, ctx, "inspect-generation",
                       "show a generation's Redis buffer (both key forms)\n"
                       "  example: streamfleetctl inspect-generation 12 59",
                       "delete the buffer keys found", Inspect);
  AddGenerationCommand(app, ctx, "compact-generation",
                       "assemble from Redis and persist now (the compactor's code)\n"
                       "  example: streamfleetctl compact-generation 12 59 --scenario-id 345",
                       "delete the Redis buffer after the row is committed", Compact);

  auto replay_args = std::make_shared<ReplayArgs>();
  auto* replay = app.add_subcommand("replay-generation",
                                    "rebuild the Redis buffer from generation_chunks (and the chunk archive in\n"
                                    "  ARTIFACT_STORE, for rows generation_chunks.purge archived) and finalize it\n"
                                    "  example: streamfleetctl replay-generation 59 --delete");
  replay->add_option("GEN", replay_args->gen)->required()->check(CLI::PositiveNumber);
  replay->add_flag("--delete", replay_args->del, "delete the rebuilt Redis buffer after the row is committed");
  ctx.OnRun(replay, replay_args, Replay);
}

}  // namespace streamfleet::ctl
