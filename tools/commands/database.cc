// migrate, migrate-compacted-from-metadata: the generations table's schema and an old data layout, on SQLite
// or PostgreSQL (DATABASE_URL).
#include <memory>

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
}

}  // namespace streamfleet::ctl
