// show-generation: a generation's row as the compactor wrote it, and its text wherever it lives (in the row's
// `compacted`, or in ARTIFACT_STORE, read through the reference and checked against its digest).
#include <cstdio>
#include <memory>

#include "streamfleet/artifacts/artifact.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/base/text.h"
#include "tools/commands/commands.h"
#include "tools/commands/connections.h"
#include "tools/commands/failure.h"

namespace streamfleet::ctl {
namespace {

using nlohmann::json;

struct ShowArgs {
  int64_t org = 0, gen = 0;
  bool text = false;
};

json OrNull(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

void Show(const Context& ctx, const Config& c, const ShowArgs& a) {
  auto db = OpenStore(c);
  auto row = Must(db->GetGeneration(a.gen), "read the generation");
  // The organization is part of the address, as on the API: another organization's row is not found.
  if (!row || row->organization_id != a.org) {
    throw Failure{"no generation " + std::to_string(a.gen) + " in organization " + std::to_string(a.org)};
  }
  const bool in_store = !row->compacted && ArtifactOfMetadata(row->metadata).has_value();
  auto store = OpenObjectStore(c);
  Must(ResolveCompacted(store.get(), *row), "read the compacted text");
  std::string text;
  if (row->compacted) {
    auto decoded = Base64Decode(*row->compacted);
    if (!decoded) throw Failure{"generation " + std::to_string(a.gen) + ": compacted is not base64"};
    text = std::move(*decoded);
  }
  if (a.text) {  // the bytes themselves, for a pipe: nothing else on stdout
    if (!row->compacted) throw Failure{"generation " + std::to_string(a.gen) + " has no compacted text"};
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  auto metadata = json::parse(row->metadata, nullptr, false);
  json j = {{"generation_id", row->id},
            {"organization_id", row->organization_id},
            {"scenario_id", row->scenario_id ? json(*row->scenario_id) : json(nullptr)},
            {"chunk_count", row->chunk_count},
            {"compacted_at", OrNull(row->compacted_at)},
            {"compacted_by", OrNull(row->compacted_by)},
            {"text_in", row->compacted ? (in_store ? "store" : "row") : "none"},
            {"text_bytes", text.size()},
            {"metadata", metadata.is_discarded() ? json(row->metadata) : metadata},
            {"compacted", OrNull(row->compacted)}};
  constexpr size_t kPreview = 2000;
  std::string human = "generation " + std::to_string(row->id) + " (org " + std::to_string(row->organization_id) +
                      "): " + std::to_string(row->chunk_count) + " chunks, compacted at " +
                      row->compacted_at.value_or("-") + " by " + row->compacted_by.value_or("-") + "\n  text in " +
                      j["text_in"].get<std::string>() + ", " + std::to_string(text.size()) + " bytes" +
                      (in_store ? " (" + ArtifactOfMetadata(row->metadata)->url + ")" : "") + "\n  text: " +
                      ToValidUtf8(text.substr(0, kPreview)) + (text.size() > kPreview ? " ..." : "") + "\n";
  ctx.Print(j, human);
}

}  // namespace

void RegisterGenerationRowCommands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ShowArgs>();
  auto* show = app.add_subcommand("show-generation",
                                  "a generation's row and its compacted text, read through ARTIFACT_STORE when\n"
                                  "  the text is there (--text: only the text's bytes, for a pipe)\n"
                                  "  example: streamfleetctl show-generation 12 59 --text > answer.json");
  show->add_option("ORG", a->org)->required()->check(CLI::PositiveNumber);
  show->add_option("GEN", a->gen)->required()->check(CLI::PositiveNumber);
  show->add_flag("--text", a->text, "write only the text to stdout");
  ctx.OnRun(show, a, Show);
}

}  // namespace streamfleet::ctl
