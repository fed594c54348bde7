// cache stats, cache flush: the fleet cache (IR_CACHE_*) in Redis and this host's filesystem tier.
#include <memory>

#include "streamfleet/cache/cache.h"
#include "tools/commands/commands.h"
#include "tools/commands/failure.h"

namespace streamfleet::ctl {
namespace {

using nlohmann::json;

void Stats(const Context& ctx, const Config& c, const std::string& only_name) {
  Cache cache(c.redis, CacheOptionsFromConfig(c));
  CacheStats s = cache.Stats();
  if (!s.redis_ok) throw Failure{"redis: unreachable (cache stats need Redis)"};
  json names = json::object();
  std::string human =
      "redis keys: " + std::to_string(s.redis_keys) + "\nredis bytes: " + std::to_string(s.redis_bytes) + "\nnames:\n";
  for (const auto& [n, k] : s.names) {
    if (!only_name.empty() && n != only_name) continue;
    names[n] = k;
    human += "  " + n + " " + std::to_string(k) + "\n";
  }
  human += "filesystem files: " + std::to_string(s.fs_files) + " (" + c.ir_cache_dir + "/" + c.ir_cache_prefix +
           ")\nfilesystem bytes: " + std::to_string(s.fs_bytes) + "\n";
  ctx.Print(json{{"prefix", c.ir_cache_prefix}, {"redis_keys", s.redis_keys}, {"redis_bytes", s.redis_bytes},
                 {"names", names}, {"fs_files", s.fs_files}, {"fs_bytes", s.fs_bytes}},
            human);
}

// At most one is set: the options exclude each other. None at all fails the operation (exit 1).
struct FlushArgs {
  std::string key, name, pattern, positional_name;
};

void Flush(const Context& ctx, const Config& c, const FlushArgs& a) {
  Cache cache(c.redis, CacheOptionsFromConfig(c));
  const std::string& name = a.positional_name.empty() ? a.name : a.positional_name;
  StatusOr<int64_t> n = Status::InvalidArgument("cache flush needs NAME, --key, --name or --pattern");
  if (!a.key.empty()) n = cache.InvalidateKey(a.key);
  if (!name.empty()) n = cache.InvalidateName(name);
  if (!a.pattern.empty()) n = cache.InvalidatePattern(a.pattern);
  int64_t deleted = Must(std::move(n), "cache flush");
  ctx.Print(json{{"deleted", deleted}}, "deleted " + std::to_string(deleted) + " cache keys\n");
}

}  // namespace

void RegisterCacheCommands(CLI::App& app, Context& ctx) {
  auto* cache = app.add_subcommand("cache",
                                   "the fleet cache (IR_CACHE_*): `cache stats [NAME]`, "
                                   "`cache flush NAME|--key|--name|--pattern`\n"
                                   "  example: streamfleetctl cache flush --name generation");
  cache->require_subcommand(1);

  auto* stats = cache->add_subcommand("stats", "Redis keys and bytes (MEMORY USAGE), names, this host's files\n"
                                               "  example: streamfleetctl cache stats generation");
  auto only_name = std::make_shared<std::string>();
  stats->add_option("NAME", *only_name, "show only this name's key count");
  ctx.OnRun(stats, only_name, Stats);

  auto* flush = cache->add_subcommand("flush", "delete cache entries (SCAN COUNT 100; only cache keys)\n"
                                               "  example: streamfleetctl cache flush generation");
  auto a = std::make_shared<FlushArgs>();
  auto* key = flush->add_option("--key", a->key, "one key, e.g. ir_cache:generation_1a2b3c4d");
  auto* name = flush->add_option("--name", a->name, "every key of a name, e.g. generation");
  auto* pattern = flush->add_option("--pattern", a->pattern, "a Redis glob over keys, e.g. 'ir_cache:*'");
  auto* positional = flush->add_option("NAME", a->positional_name, "same as --name NAME");
  key->excludes(name)->excludes(pattern)->excludes(positional);
  name->excludes(pattern)->excludes(positional);
  pattern->excludes(positional);
  ctx.OnRun(flush, a, Flush);
}

}  // namespace streamfleet::ctl
