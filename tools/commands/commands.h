#pragma once
// streamfleetctl's commands, one group per file in tools/commands/. Each Register function adds its group's
// subcommands (options, help with an example) to the app and their actions to the context. main registers
// the groups in this order, which is the order `streamfleetctl --help` lists the commands in.
#include <CLI/CLI.hpp>

#include "tools/commands/context.h"

namespace streamfleet::ctl {

// inspect-generation, compact-generation, replay-generation (generations.cc)
void RegisterGenerationCommands(CLI::App& app, Context& ctx);
// show-generation (generation_row.cc)
void RegisterGenerationRowCommands(CLI::App& app, Context& ctx);
// migrate, migrate-compacted-from-metadata, migrate-artifacts (database.cc)
void RegisterDatabaseCommands(CLI::App& app, Context& ctx);
// streams (streams.cc)
void RegisterStreamCommands(CLI::App& app, Context& ctx);
// dlq list | show | requeue | purge (dead_letters.cc)
void RegisterDeadLetterCommands(CLI::App& app, Context& ctx);
// enqueue, generate, tasks show | cancel | list | scheduled (tasks.cc)
void RegisterTaskCommands(CLI::App& app, Context& ctx);
// schedules (schedules.cc)
void RegisterScheduleCommands(CLI::App& app, Context& ctx);
// queues pause | resume (queues.cc)
void RegisterQueueCommands(CLI::App& app, Context& ctx);
// buffers (buffers.cc)
void RegisterBufferCommands(CLI::App& app, Context& ctx);
// config (config.cc)
void RegisterConfigCommands(CLI::App& app, Context& ctx);
// cache stats, cache flush (cache.cc)
void RegisterCacheCommands(CLI::App& app, Context& ctx);

}  // namespace streamfleet::ctl
