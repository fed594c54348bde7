// queues pause | resume: stop and restart the workers taking tasks from a queue.
#include <memory>

#include "streamfleet/operations/fleet_admin.h"
#include "tools/commands/commands.h"
#include "tools/commands/connections.h"
#include "tools/commands/failure.h"

namespace streamfleet::ctl {
namespace {

struct QueueArgs {
  std::string command, queue;  // pause | resume; the queue's name
};

void PauseOrResume(const Context& ctx, const Config& c, const QueueArgs& a) {
  // SetQueuePaused refuses a bad name too; said here before connecting, in the CLI's words.
  if (!ValidQueueName(a.queue)) throw Failure{"invalid queue name"};
  auto r = ConnectRedis(c);
  bool pause = a.command == "pause";
  Must(SetQueuePaused(*r, TaskKeys::FromConfig(c), a.queue, pause), a.command);
  ctx.Print(nlohmann::json{{"queue", a.queue}, {"paused", pause}},
            "queue " + a.queue + (pause ? " paused\n" : " resumed\n"));
}

}  // namespace

void RegisterQueueCommands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<QueueArgs>();
  auto* queues = app.add_subcommand("queues", "`queues pause Q` / `queues resume Q`\n"
                                              "  example: streamfleetctl queues pause low");
  queues->add_option("COMMAND", a->command)->required()->check(CLI::IsMember({"pause", "resume"}));
  queues->add_option("QUEUE", a->queue)->required();
  ctx.OnRun(queues, a, PauseOrResume);
}

}  // namespace streamfleet::ctl
