// dlq: the chunk and task dead letters: list or show them, requeue them to where they came from, purge them.
#include <unistd.h>

#include <iostream>
#include <memory>

#include "streamfleet/base/time.h"
#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/operations/operator_json.h"
#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/taskqueue/task_queue.h"
#include "tools/commands/commands.h"
#include "tools/commands/connections.h"
#include "tools/commands/failure.h"
#include "tools/progress_bar.h"

namespace streamfleet::ctl {
namespace {

using nlohmann::json;

struct DeadLetterArgs {
  std::string command, id;  // list | show | requeue | purge; the entry id (show, requeue, purge)
  bool all = false, yes = false;
  std::string older_than, type, stream;  // filters of purge and requeue --all
};

// `list` every dead letter; `show ID` only that one.
void List(const Context& ctx, const Config& c, RedisClient& r, const DeadLetterArgs& a) {
  json j = json::array();
  std::string human;
  std::vector<DeadLetterEntry> shown;
  if (a.command == "show") {
    // By its id, wherever it is in the stream (a listing shows the first 1000 of each).
    if (auto d = Must(GetDeadLetter(r, c, a.id), "XRANGE")) shown.push_back(std::move(*d));
  } else {
    shown = Must(ListDeadLetters(r, c, 1000), "XRANGE");
  }
  for (const auto& d : shown) {
    const StreamEntry& e = d.entry;
    j.push_back(DeadLetterJson(d));
    human += d.dlq + " " + e.id + "  " + (e.Field("source_stream") ? *e.Field("source_stream") : "") + "  " +
             (e.Field("reason") ? *e.Field("reason") : "") + "\n";
  }
  if (a.command == "show" && j.empty()) throw Failure{"no dead letter with id " + a.id};
  ctx.Print(j, human.empty() ? "no dead letters\n" : human);
}

// --older-than, --type and --stream as a DeadLetterFilter (now: the wall clock).
DeadLetterFilter FilterOf(const DeadLetterArgs& a) {
  DeadLetterFilter filter;
  filter.now_ms = WallClockMs();
  if (!a.older_than.empty()) filter.older_than_ms = Must(ParseDurationMs(a.older_than, 1000), "--older-than");
  filter.task_type = a.type;
  filter.source_stream = a.stream;
  return filter;
}

void Requeue(const Context& ctx, const Config& c, RedisClient& r, const DeadLetterArgs& a) {
  if (!a.all && a.id.empty()) throw Failure{"requeue needs an ID or --all"};
  const DeadLetterFilter filter = FilterOf(a);
  if (!a.all && !filter.empty()) throw Usage{"--type, --stream and --older-than go with requeue --all"};
  // --all may move many entries: a bar per dead-letter stream.
  std::unique_ptr<ProgressBar> bar;
  std::string bar_stream;
  auto progress = [&](const std::string& s, int64_t done, int64_t total) {
    if (!a.all) return;
    if (s != bar_stream) {
      bar = std::make_unique<ProgressBar>("requeueing " + s, total);
      bar_stream = s;
    }
    bar->Update(done);
  };
  auto requeued = RequeueDeadLetters(r, c, a.all ? "" : a.id, progress, filter);
  bar.reset();
  if (requeued.status().code() == StatusCode::kNotFound) throw Failure{"no dead letter with id " + a.id};
  int64_t n = Must(std::move(requeued), "requeue");
  ctx.Print(json{{"requeued", n}}, "requeued " + std::to_string(n) + "\n");
}

void Purge(const Context& ctx, const Config& c, RedisClient& r, const DeadLetterArgs& a) {
  if (!a.id.empty()) {
    // One dead letter by its id: nothing else is deleted, so nothing to confirm.
    auto deleted = DeleteDeadLetter(r, c, a.id);
    if (deleted.status().code() == StatusCode::kNotFound) throw Failure{"no dead letter with id " + a.id};
    int64_t n = Must(std::move(deleted), "purge");
    ctx.Print(json{{"purged", n}}, "purged " + std::to_string(n) + "\n");
    return;
  }
  const DeadLetterFilter filter = FilterOf(a);
  // Deleting dead letters cannot be undone: a person at a terminal is asked first (scripts are not).
  if (!a.yes && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
    int64_t n = Must(PurgeDeadLetters(r, c, filter, /*dry_run=*/true), "purge");
    std::cerr << "delete " << n << " dead letter(s)? this cannot be undone [y/N] ";
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "yes") throw Failure{"purge cancelled: nothing deleted"};
  }
  int64_t n = Must(PurgeDeadLetters(r, c, filter), "purge");
  ctx.Print(json{{"purged", n}}, "purged " + std::to_string(n) + "\n");
}

void Run(const Context& ctx, const Config& c, const DeadLetterArgs& a) {
  // An id Redis would answer "Invalid stream ID" to is the command line's mistake, said before connecting.
  if (a.command == "show" && a.id.empty()) throw Usage{"show needs the ID of a dead letter (see dlq list)"};
  if (!a.id.empty() && !ValidStreamId(a.id)) {
    throw Usage{"\"" + a.id + "\" is not a dead-letter id: one looks like 1795622292908-0 (see dlq list)"};
  }
  // An ID beside a choice of many entries (or a filter where none applies) was ignored, and `purge ID`
  // deleted every dead letter: each such mix is refused before anything is touched.
  const bool filtered = !a.older_than.empty() || !a.type.empty() || !a.stream.empty();
  if (a.command == "list" && !a.id.empty()) throw Usage{"list takes no ID: dlq show ID shows one"};
  if ((a.command == "list" || a.command == "show") && filtered) {
    throw Usage{"--older-than, --type and --stream go with purge and requeue --all"};
  }
  if (a.all && a.command != "requeue") throw Usage{"--all goes with requeue"};
  if (a.all && !a.id.empty()) throw Usage{"requeue takes an ID or --all, not both"};
  if (a.command == "purge" && !a.id.empty() && filtered) {
    throw Usage{"purge takes an ID or filters, not both"};
  }
  auto r = ConnectRedis(c);
  if (a.command == "list" || a.command == "show") {
    List(ctx, c, *r, a);
  } else if (a.command == "requeue") {
    Requeue(ctx, c, *r, a);
  } else {
    Purge(ctx, c, *r, a);
  }
}

}  // namespace

void RegisterDeadLetterCommands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<DeadLetterArgs>();
  auto* dlq = app.add_subcommand("dlq", "dead letters of chunks and tasks\n"
                                        "  example: streamfleetctl dlq show 1795622292908-0; "
                                        "streamfleetctl dlq requeue --all --type send_notifications");
  dlq->add_option("COMMAND", a->command, "list | show | requeue | purge")->required()->check(
      CLI::IsMember({"list", "show", "requeue", "purge"}));
  dlq->add_option("ID", a->id, "dead-letter entry id (show, requeue, purge: only that one)");
  dlq->add_flag("--all", a->all, "requeue every entry (or those the filters below select)");
  dlq->add_option("--older-than", a->older_than,
                  "purge, requeue --all: only entries dead-lettered longer ago than this (e.g. 7d, 12h)");
  dlq->add_option("--type", a->type, "purge, requeue --all: only task dead letters of this task type");
  dlq->add_option("--stream", a->stream, "purge, requeue --all: only entries that came from this stream");
  dlq->add_flag("--yes", a->yes, "purge: do not ask for confirmation on a terminal");
  ctx.OnRun(dlq, a, Run);
}

}  // namespace streamfleet::ctl
