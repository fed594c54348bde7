// migrate, migrate-compacted-from-metadata, migrate-artifacts: the generations table's schema, an old data
// layout, and where large compacted texts live (rows or ARTIFACT_STORE), on SQLite or PostgreSQL
// (DATABASE_URL).
#include <memory>

#include "streamfleet/operations/artifact_moves.h"

#include "tools/commands/commands.h"
#include "tools/commands/connections.h"
#include "tools/commands/failure.h"

namespace streamfleet::ctl {
namespace {

using nlohmann::json;

// `migrate` applies what is pending, then lists; `migrate status` only lists.
void Migrate(const Context& ctx, const Config& c, const std::string& what) {
  auto store = OpenStore(c);
  if (what != "status") Must(store->Migrate(), "migrate");
  auto list = Must(store->Migrations(), "migrations");
  json j = json::array();
  std::string human;
  for (const auto& m : list) {
    j.push_back({{"version", m.version}, {"name", m.name}, {"applied", m.applied}});
    human += std::to_string(m.version) + "  " + (m.applied ? "applied" : "pending") + "  " + m.name + "\n";
  }
  ctx.Print(j, human);
}

void MigrateCompactedFromMetadata(const Context& ctx, const Config& c, bool preview) {
  auto store = OpenStore(c);
  auto n = Must(store->MigrateCompactedFromMetadata(preview), "migrate-compacted-from-metadata");
  ctx.Print(json{{"rows", n}, {"preview", preview}},
            std::to_string(n) + (preview ? " rows would be moved (preview: nothing changed)\n" : " rows moved\n"));
}

struct ArtifactMoveArgs {
  std::string to;
  bool preview = false;
};

void MigrateArtifacts(const Context& ctx, const Config& c, const ArtifactMoveArgs& a) {
  auto store = OpenObjectStore(c);
  if (!store) throw Failure{"ARTIFACT_STORE is not set: there is no object store to move texts to or from"};
  auto db = OpenStore(c);
  auto direction = a.to == "store" ? ArtifactMoveDirection::kToStore : ArtifactMoveDirection::kToDatabase;
  auto r = Must(MoveArtifacts(*db, *store, c, direction, a.preview), "migrate-artifacts");
  std::string where = a.to == "store" ? "to " + store->Url("") : "into the rows";
  std::string skipped_ids;
  for (int64_t id : r.skipped_ids) skipped_ids += (skipped_ids.empty() ? "" : " ") + std::to_string(id);
  ctx.Print(json{{"to", a.to}, {"preview", a.preview}, {"rows", r.rows}, {"text_bytes", r.text_bytes},
                 {"changed_meanwhile", r.changed}, {"last_id", r.last_id}, {"skipped", r.skipped},
                 {"skipped_ids", r.skipped_ids}, {"first_skip_reason", r.first_skip_reason}},
            std::to_string(r.rows) + " rows (" + std::to_string(r.text_bytes) + " bytes of text) " +
                (a.preview ? "would move " : "moved ") + where + (a.preview ? " (preview: nothing changed)" : "") +
                (r.changed > 0 ? "; " + std::to_string(r.changed) + " rewritten by a finalization meanwhile, left to it" : "") +
                "\n" +
                (r.skipped > 0 ? std::to_string(r.skipped) + " rows skipped, their text unreadable (" +
                                     r.first_skip_reason + "): " + skipped_ids + "\n"
                               : ""));
  // Everything else moved, but not these: a script must not take the run for a complete one.
  if (r.skipped > 0) throw Failure{std::to_string(r.skipped) + " rows could not be moved (listed above)"};
}

}  // namespace

void RegisterDatabaseCommands(CLI::App& app, Context& ctx) {
  auto* migrate = app.add_subcommand("migrate", "apply database migrations; `migrate status` lists them\n"
                                                "  example: streamfleetctl migrate status");
  auto what = std::make_shared<std::string>();
  migrate->add_option("status", *what, "status: list migrations without applying")->check(CLI::IsMember({"status"}));
  ctx.OnRun(migrate, what, Migrate);

  auto* mcm = app.add_subcommand("migrate-compacted-from-metadata",
                                 "move old blobs from metadata.compacted to the compacted column\n"
                                 "  example: streamfleetctl migrate-compacted-from-metadata --preview");
  auto preview = std::make_shared<bool>(false);
  mcm->add_flag("--preview", *preview, "count only; change nothing");
  ctx.OnRun(mcm, [preview](const Context& ctx, const Config& c) { MigrateCompactedFromMetadata(ctx, c, *preview); });

  auto* ma = app.add_subcommand("migrate-artifacts",
                                "move compacted texts larger than ARTIFACT_INLINE_MAX_BYTES from the rows to\n"
                                "ARTIFACT_STORE (--to store), or back into the rows (--to database); idempotent,\n"
                                "run it again to finish an interrupted run\n"
                                "  example: streamfleetctl migrate-artifacts --to store --preview");
  auto ma_args = std::make_shared<ArtifactMoveArgs>();
  ma->add_option("--to", ma_args->to, "store | database")->required()->check(CLI::IsMember({"store", "database"}));
  ma->add_flag("--preview", ma_args->preview, "count only; change nothing");
  ctx.OnRun(ma, ma_args, MigrateArtifacts);
}

}  // namespace streamfleet::ctl
