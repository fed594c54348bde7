#pragma once
// The task lists operators page through, Sidekiq Web's Scheduled / Retries / Busy / Dead pages plus recent
// results: `streamfleetctl tasks list` and the admin UI's task pages read them here, so both show the same.
// Every page carries the cursor of the next one ("" = the end), so a long list is paged, never silently cut.
//
// Where each comes from (docs/task-protocol.md):
//   scheduled  the scheduled set(s), members whose envelope has attempt 0     (earliest first)
//   retrying   the same set(s), attempt > 0: failed attempts waiting to run again
//   running    each queue stream's pending entries (XPENDING of group "workers"): running, or read ahead
//              by a worker and about to run                                     (oldest first)
//   dead       the task dead-letter stream(s)                                  (oldest first)
//   succeeded  status records saying succeeded: a SCAN of {prefix}:task:*, so its cost grows with the number
//              of records (TASK_RESULT_TTL); for a quick look, not for polling
// Standard schema: one key per list (one stream per queue for running). Cluster schema: every shard's key of
// the configured queues, one after the other.
//
// Not thread-safe: each call uses the RedisClient it is given.
#include <cstdint>
#include <string>
#include <vector>

#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet {

enum class TaskListKind { kScheduled, kRetrying, kRunning, kDead, kSucceeded };
// "scheduled", "retrying", "running", "dead", "succeeded"; false for another name.
bool ParseTaskListKind(const std::string& name, TaskListKind& out);

struct TaskListQuery {
  TaskListKind kind = TaskListKind::kScheduled;
  std::string queue;  // "" = every configured queue
  std::string type;   // "" = every type
  int limit = 50;     // tasks per page (1..1000)
  std::string cursor; // "" = the first page, else a page's next_cursor
};

struct ListedTask {
  std::string id, type, queue;
  int64_t attempt = 0;
  // scheduled / retrying: when it runs; running: when it was delivered (now - idle); dead: when it was
  // dead-lettered; succeeded: when it finished. Unix ms (0 = unknown).
  int64_t at_ms = 0;
  // retrying / dead: the last error; running: the consumer holding it; succeeded: the result.
  std::string detail;
  // Where it sits: the stream entry (running) or dead-letter entry id (dead), "" otherwise.
  std::string entry_id;
};

struct TaskPage {
  std::vector<ListedTask> tasks;
  std::string next_cursor;  // "" = no more
};

// One page of a list. kInvalidArgument for a bad cursor, limit or queue name.
StatusOr<TaskPage> ListTasks(RedisClient& redis, const Config& config, const TaskListQuery& query, int64_t now_ms);

}  // namespace streamfleet
