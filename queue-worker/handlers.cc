#include "queue-worker/handlers.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "compactor/chunk_buffer.h"

namespace streamfleet::worker {

Status ApplyPolicies(const std::string& spec, HandlerRegistry& registry) {
  for (const std::string& item : SplitList(spec, ',')) {
    auto eq = item.find('=');
    RetryPolicy p;
    long long v[3];
    bool ok = eq != std::string::npos && eq > 0;
    size_t at = eq + 1;
    for (int i = 0; ok && i < 3; ++i) {
      size_t end = i < 2 ? item.find('/', at) : item.size();
      if (end == std::string::npos) {
        ok = false;
        break;
      }
      auto [ptr, ec] = std::from_chars(item.data() + at, item.data() + end, v[i]);
      ok = ec == std::errc() && ptr == item.data() + end && v[i] >= 0;
      at = end + 1;
    }
    if (!ok || v[0] < 1) return Status::InvalidArgument("TASK_POLICY item \"" + item + "\": expected type=attempts/base_ms/cap_ms");
    p.max_attempts = static_cast<int>(v[0]);
    p.base_ms = v[1];
    p.cap_ms = v[2];
    registry.SetPolicy(item.substr(0, eq), p);
  }
  return Status::Ok();
}

void RegisterBuiltins(HandlerRegistry& registry, Clock& clock) {
  registry.Register("noop", [](TaskContext&) { return Status::Ok(); });

  // The seeds' compact:generation: finalize a generation now from its Redis buffer (the compactors do it).
  registry.Register("generation.compact", [&clock](TaskContext& ctx) {
    auto j = nlohmann::json::parse(ctx.task.payload(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.value("organization_id", nlohmann::json()).is_number_integer() ||
        !j.value("generation_id", nlohmann::json()).is_number_integer()) {
      return Status::InvalidArgument("payload must be {\"organization_id\": N, \"generation_id\": N, \"scenario_id\": N?}");
    }
    GenerationId g{j["organization_id"].get<int64_t>(), j.value("scenario_id", int64_t{0}),
                   j["generation_id"].get<int64_t>()};
    compactor::ChunkBuffer buffer(ctx.config, clock);
    Status s = buffer.QueueFinalize(ctx.redis, g, "manual");
    if (s.ok()) ctx.result = "finalization queued for " + KeySchema::Member(g);
    return s;
  });

  // Delete keys matching a pattern with SCAN in batches of 100 (never KEYS) and UNLINK.
  registry.Register("cache.flush", [](TaskContext& ctx) {
    auto j = nlohmann::json::parse(ctx.task.payload(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.value("pattern", nlohmann::json()).is_string()) {
      return Status::InvalidArgument("payload must be {\"pattern\": \"prefix:*\"}");
    }
    std::string pattern = j["pattern"].get<std::string>();
    std::string cursor = "0";
    int64_t deleted = 0;
    do {
      auto r = ctx.redis.Command({"SCAN", cursor, "MATCH", pattern, "COUNT", "100"});
      if (!r.ok()) return r.status();
      cursor = r->elements[0].str;
      if (!r->elements[1].elements.empty()) {
        std::vector<std::string> cmd = {"UNLINK"};
        for (const auto& k : r->elements[1].elements) cmd.push_back(k.str);
        auto d = ctx.redis.Command(cmd);
        if (!d.ok()) return d.status();
        deleted += d->integer;
      }
    } while (cursor != "0");
    ctx.result = std::to_string(deleted) + " keys deleted";
    return Status::Ok();
  });
}

}  // namespace streamfleet::worker
