// enqueue, generate, tasks: what goes onto the task queues (a task by hand; a provider generation, which is
// the generation.run task) and what the queues hold (a task's status, the delayed tasks and retries).
#include <algorithm>
#include <charconv>
#include <memory>

#include "streamfleet/base/time.h"
#include "streamfleet/base/json_input.h"
#include "streamfleet/chunks/generation_request.h"
#include "streamfleet/chunks/generation_start.h"
#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/operations/operator_task.h"
#include "streamfleet/operations/task_lists.h"
#include "streamfleet/taskqueue/task_control.h"
#include "streamfleet/sql/sql_store.h"
#include "tools/commands/commands.h"
#include "tools/commands/connections.h"
#include "tools/commands/failure.h"

namespace streamfleet::ctl {
namespace {

using nlohmann::json;

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

struct EnqueueArgs {
  std::string type, payload = "{}", queue = "default", delay, at, unique;
  bool force = false;
};

void Enqueue(const Context& ctx, const Config& c, const EnqueueArgs& a) {
  // EnqueueOperatorTask checks the payload too; checked first here so that the message names the flag and
  // comes before the queue check and without a connection.
  if (auto p = ParseJsonInput(a.payload); !p.ok()) {
    throw Failure{"--payload is not valid JSON: " + p.status().message()};
  }
  std::vector<std::string> read = QueueNames(c);
  if (!a.force && std::find(read.begin(), read.end(), a.queue) == read.end()) {
    throw Usage{"no worker of this configuration reads queue \"" + a.queue + "\" (QUEUES reads " + Join(read, ", ") +
                "): the task would wait forever; pass --force if a worker elsewhere reads it"};
  }
  auto r = ConnectRedis(c);
  OperatorTask task{a.type, a.payload, a.queue, a.unique, 0};
  int64_t now = WallClockMs();
  // Bounded (100 years, as far as --at is taken): a larger delay overflowed `now + delay` (undefined
  // behaviour; in practice a negative time, so the task ran at once instead of never).
  constexpr int64_t kMaxDelayMs = int64_t{100} * 366 * 24 * 3600 * 1000;
  if (!a.delay.empty()) {
    int64_t delay = Must(ParseDurationMs(a.delay, 1000), "--delay");
    if (delay < 0 || delay > kMaxDelayMs) throw Usage{"--delay must be between 0 and 100 years"};
    task.run_at_ms = now + delay;
  }
  if (!a.at.empty()) task.run_at_ms = Must(ParseTimeMs(a.at), "--at");
  auto res = Must(EnqueueOperatorTask(*r, c, task, now), "enqueue");
  ctx.Print(json{{"id", res.id}, {"duplicate", res.duplicate}, {"scheduled", res.scheduled}},
            res.duplicate ? "duplicate of task " + res.id + " (unique key held): nothing enqueued\n"
                          : "enqueued " + res.id + (res.scheduled ? " (scheduled)\n" : "\n"));
}

struct GenerateArgs {
  int64_t org = 0, scenario = 0;
  std::string content, source = "cli", language, model, initiator;
};

void Generate(const Context& ctx, const Config& c, const GenerateArgs& a) {
  // Through the same request validation as the HTTP route.
  json body = {{"instruction", {{"content", a.content}, {"source", a.source}, {"language", a.language}}},
               {"model", a.model},
               {"scenario_id", a.scenario > 0 ? json(a.scenario) : json(nullptr)},
               {"initiator", a.initiator.empty() ? json(nullptr) : json(a.initiator)}};
  GenerationRequest req = Must(ParseGenerationRequest(a.org, body.dump()), "generate");
  auto r = ConnectRedis(c);
  auto started = Must(StartGeneration(*r, c, req, WallClockMs()), "generate");
  ctx.Print(json{{"generation_id", started.generation_id}, {"task_id", started.task_id}},
            "generation " + std::to_string(started.generation_id) + " started (task " + started.task_id + ")\n");
}

// The status hash holds strings; --json gives counters and timestamps as the numbers they are.
void NumbersAsNumbers(json& status) {
  for (auto it = status.begin(); it != status.end(); ++it) {
    const std::string& v = it.value().get_ref<const std::string&>();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (!v.empty() && ec == std::errc() && end == v.data() + v.size() && (v == "0" || v[0] != '0')) *it = n;
  }
}

void ShowTask(const Context& ctx, const Config& c, RedisClient& r, const std::string& id) {
  if (id.empty()) throw Failure{"tasks show needs an ID"};
  json h = Must(TaskStatus(r, TaskKeys::FromConfig(c), id), "HGETALL");
  if (h.empty()) {
    throw Failure{"no status for task " + id +
                  (c.task_result_ttl_s > 0 ? std::string(" (unknown or expired)")
                                           : std::string(" (TASK_RESULT_TTL=0: no task status is kept)"))};
  }
  std::string human;
  for (auto it = h.begin(); it != h.end(); ++it) human += it.key() + ": " + it.value().get<std::string>() + "\n";
  NumbersAsNumbers(h);
  ctx.Print(h, human);
}

void ListScheduledTasks(const Context& ctx, const Config& c, RedisClient& r) {
  json j = json::array();
  std::string human;
  for (const auto& st : Must(ListScheduled(r, TaskKeys::FromConfig(c), 100, QueueNames(c)), "ZRANGE")) {
    const v1::TaskEnvelope& t = st.task;
    j.push_back({{"id", t.id()}, {"type", t.type()}, {"queue", t.queue()}, {"attempt", t.attempt()},
                 {"run_at_ms", st.run_at_ms}});
    human += t.id() + "  " + t.type() + "  queue=" + t.queue() + " attempt=" + std::to_string(t.attempt()) +
             " run_at=" + IsoUtcFromMs(st.run_at_ms) + "\n";
  }
  ctx.Print(j, human.empty() ? "no scheduled tasks\n" : human);
}

struct ListArgs {
  std::string state = "scheduled", queue, type, cursor;
  int limit = 50;
};

// One page of a task list; the next page's command is printed under it (human) or in next_cursor (--json).
void ListTaskPage(const Context& ctx, const Config& c, RedisClient& r, const ListArgs& a) {
  TaskListQuery q;
  if (!ParseTaskListKind(a.state, q.kind)) throw Usage{"--state is scheduled, retrying, running, dead or succeeded"};
  q.queue = a.queue;
  q.type = a.type;
  q.limit = a.limit;
  q.cursor = a.cursor;
  TaskPage page = Must(ListTasks(r, c, q, WallClockMs()), "tasks list");
  json j = json::array();
  std::string human;
  for (const ListedTask& t : page.tasks) {
    j.push_back({{"id", t.id}, {"type", t.type}, {"queue", t.queue}, {"attempt", t.attempt}, {"at_ms", t.at_ms},
                 {"detail", t.detail}, {"entry_id", t.entry_id}});
    human += t.id + "  " + t.type + "  queue=" + t.queue + " attempt=" + std::to_string(t.attempt) +
             (t.at_ms > 0 ? " at=" + IsoUtcFromMs(t.at_ms) : "") + (t.detail.empty() ? "" : "  " + t.detail) + "\n";
  }
  if (human.empty()) human = "no " + a.state + " tasks" + (a.cursor.empty() ? "" : " after this cursor") + "\n";
  if (!page.next_cursor.empty()) {
    human += "more: streamfleetctl tasks list --state " + a.state + (a.queue.empty() ? "" : " --queue " + a.queue) +
             (a.type.empty() ? "" : " --type " + a.type) + " --limit " + std::to_string(a.limit) + " --cursor " +
             page.next_cursor + "\n";
  }
  ctx.Print(json{{"tasks", j}, {"next_cursor", page.next_cursor}}, human);
}

void CancelTaskById(const Context& ctx, const Config& c, RedisClient& r, const std::string& id) {
  if (id.empty()) throw Failure{"tasks cancel needs an ID"};
  CancelResult res = Must(CancelTask(r, TaskKeys::FromConfig(c), id, c.task_result_ttl_s, WallClockMs()), "cancel");
  switch (res.outcome) {
    case CancelOutcome::kCancelled:
      ctx.Print(json{{"id", id}, {"state", "cancelled"}, {"previous_state", res.state}},
                "cancelled " + id + " (was " + res.state + "): a worker that reads it skips it\n");
      return;
    case CancelOutcome::kAlreadyCancelled:
      ctx.Print(json{{"id", id}, {"state", "cancelled"}, {"previous_state", res.state}}, id + " was already cancelled\n");
      return;
    case CancelOutcome::kNotFound:
      throw Failure{"no status for task " + id +
                    (c.task_result_ttl_s > 0 ? std::string(" (unknown or expired)")
                                             : std::string(" (TASK_RESULT_TTL=0: tasks cannot be cancelled)"))};
    case CancelOutcome::kTooLate:
      throw Failure{"task " + id + " is " + res.state + ": only a task that has not started can be cancelled"};
  }
}

void AddEnqueue(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<EnqueueArgs>();
  auto* enqueue = app.add_subcommand(
      "enqueue", "enqueue a task\n  example: streamfleetctl enqueue cache.flush --payload '{\"name\":\"generation\"}'");
  enqueue->add_option("TYPE", a->type)->required();
  enqueue->add_option("--payload", a->payload, "JSON payload");
  enqueue->add_option("--queue", a->queue);
  auto* delay = enqueue->add_option("--delay", a->delay, "run later, e.g. 30s, 5m");
  enqueue->add_option("--at", a->at, "run at a time: ISO-8601 (2026-11-25T18:00:00Z, or with an offset: +01:00) or unix seconds")
      ->excludes(delay);
  enqueue->add_option("--unique-key", a->unique, "a duplicate enqueue within an hour is a no-op");
  enqueue->add_flag("--force", a->force, "enqueue to a queue that no worker of this configuration reads (QUEUES)");
  ctx.OnRun(enqueue, a, Enqueue);
}

void AddGenerate(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<GenerateArgs>();
  auto* generate = app.add_subcommand(
      "generate", "start a provider generation (the generation.run task, as POST /v1/orgs/{org}/generations)\n"
                  "  example: streamfleetctl generate 12 --content 'Plan Q3' --language en --scenario-id 345");
  generate->add_option("ORG", a->org, "organization id")->required()->check(CLI::PositiveNumber);
  generate->add_option("--content", a->content, "the instruction text")->required();
  generate->add_option("--source", a->source, "where the instruction came from (default cli)");
  generate->add_option("--language", a->language);
  generate->add_option("--scenario-id", a->scenario)->check(CLI::PositiveNumber);
  generate->add_option("--model", a->model, "default PROVIDER_MODEL");
  generate->add_option("--initiator", a->initiator, "who started it (kept in metadata.initiator)");
  ctx.OnRun(generate, a, Generate);
}

void AddTasks(CLI::App& app, Context& ctx) {
  struct TasksArgs {
    std::string command, id;  // show | cancel | list | scheduled; the task id (show, cancel)
    ListArgs list;
  };
  auto a = std::make_shared<TasksArgs>();
  auto* tasks = app.add_subcommand(
      "tasks",
      "`tasks show ID`: a task's status; `tasks cancel ID`: cancel a task that has not started;\n"
      "  `tasks list --state scheduled|retrying|running|dead|succeeded [--queue Q] [--type T]`: one page (--limit,\n"
      "  then --cursor from the line it prints); `tasks scheduled`: the first 100 delayed tasks and retries\n"
      "  example: streamfleetctl tasks list --state retrying --queue default --limit 20");
  tasks->add_option("COMMAND", a->command)->required()->check(CLI::IsMember({"show", "cancel", "list", "scheduled"}));
  tasks->add_option("ID", a->id);
  tasks->add_option("--state", a->list.state, "list: scheduled (default), retrying, running, dead or succeeded");
  tasks->add_option("--queue", a->list.queue, "list: only this queue");
  tasks->add_option("--type", a->list.type, "list: only this task type");
  tasks->add_option("--limit", a->list.limit, "list: tasks per page (default 50, at most 1000)")
      ->check(CLI::Range(1, 1000));
  tasks->add_option("--cursor", a->list.cursor, "list: the page after the one that printed this cursor");
  ctx.OnRun(tasks, [a](const Context& ctx, const Config& c) {
    auto r = ConnectRedis(c);
    if (a->command == "show") {
      ShowTask(ctx, c, *r, a->id);
    } else if (a->command == "cancel") {
      CancelTaskById(ctx, c, *r, a->id);
    } else if (a->command == "list") {
      ListTaskPage(ctx, c, *r, a->list);
    } else {
      ListScheduledTasks(ctx, c, *r);
    }
  });
}

}  // namespace

void RegisterTaskCommands(CLI::App& app, Context& ctx) {
  AddEnqueue(app, ctx);
  AddGenerate(app, ctx);
  AddTasks(app, ctx);
}

}  // namespace streamfleet::ctl
