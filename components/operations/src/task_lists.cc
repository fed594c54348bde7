#include "streamfleet/operations/task_lists.h"

#include <charconv>

#include "streamfleet/operations/fleet_admin.h"
#include "streamfleet/redis/redis_scan.h"
#include "streamfleet/taskqueue/task_keys.h"
#include "streamfleet/v1/task.pb.h"

namespace streamfleet {

namespace {

constexpr int kBatch = 200;  // entries read per round trip while a page fills

// "<source index>:<position in it>": which key of the list and where in it the next page starts.
struct Cursor {
  size_t source = 0;
  std::string pos;
};

StatusOr<Cursor> ParseCursor(const std::string& text) {
  Cursor c;
  if (text.empty()) return c;
  auto colon = text.find(':');
  auto [end, ec] = std::from_chars(text.data(), text.data() + (colon == std::string::npos ? 0 : colon), c.source);
  if (colon == std::string::npos || ec != std::errc() || end != text.data() + colon) {
    return Status::InvalidArgument("invalid cursor \"" + text + "\"");
  }
  c.pos = text.substr(colon + 1);
  return c;
}

std::string Next(size_t source, const std::string& pos) { return std::to_string(source) + ":" + pos; }

StatusOr<int64_t> Offset(const std::string& pos) {
  if (pos.empty()) return int64_t{0};
  int64_t n = -1;
  auto [end, ec] = std::from_chars(pos.data(), pos.data() + pos.size(), n);
  // Bounded: a page position adds the page's size to it (an offset near INT64_MAX overflowed).
  if (ec != std::errc() || end != pos.data() + pos.size() || n < 0 || n > (int64_t{1} << 40)) {
    return Status::InvalidArgument("invalid cursor position \"" + pos + "\"");
  }
  return n;
}

bool Wanted(const TaskListQuery& q, const std::string& queue, const std::string& type) {
  return (q.queue.empty() || q.queue == queue) && (q.type.empty() || q.type == type);
}

bool Decode(const std::string* raw, v1::TaskEnvelope& t) { return raw != nullptr && t.ParseFromString(*raw); }

std::string LastError(const v1::TaskEnvelope& t) { return t.errors_size() > 0 ? t.errors(t.errors_size() - 1) : ""; }

// scheduled / retrying: a position is "<score>-<n>" (URL-safe as it is): from the first member of at least
// that score (run_at_ms), past the n members of exactly that score already walked. The set drains from its
// front as tasks come due: an offset from the front, as positions were, skipped as many tasks as had come
// due since the last page.
struct ScorePos {
  bool set = false;  // false: from the start
  int64_t score = 0;
  int64_t skip = 0;
};

StatusOr<ScorePos> ParseScorePos(const std::string& pos) {
  ScorePos p;
  if (pos.empty()) return p;
  const char* e = pos.data() + pos.size();
  auto [dash, ec1] = std::from_chars(pos.data(), e, p.score);
  if (ec1 != std::errc() || dash == e || *dash != '-') {
    return Status::InvalidArgument("invalid cursor position \"" + pos + "\"");
  }
  auto [end, ec2] = std::from_chars(dash + 1, e, p.skip);
  if (ec2 != std::errc() || end != e || p.skip < 0) return Status::InvalidArgument("invalid cursor position \"" + pos + "\"");
  p.set = true;
  return p;
}

StatusOr<TaskPage> ScheduledPage(RedisClient& redis, const std::vector<std::string>& sets, const TaskListQuery& q,
                                 const Cursor& cur) {
  TaskPage page;
  const bool retrying = q.kind == TaskListKind::kRetrying;
  for (size_t src = cur.source; src < sets.size(); ++src) {
    auto start = ParseScorePos(src == cur.source ? cur.pos : "");
    if (!start.ok()) return start.status();
    // The member walked last: its score, and how many of that score were walked. The members of exactly that
    // score are read on from there (ties), then those of a higher score from their start: a skip over
    // everything from the score on would pass members that came due meanwhile.
    bool walked = start->set, ties = start->set;
    int64_t score = start->score, at_score = start->skip;
    for (;;) {
      std::vector<std::string> cmd = {"ZRANGE", sets[src]};
      if (!walked) {
        cmd.insert(cmd.end(), {"-inf", "+inf", "BYSCORE", "LIMIT", "0"});
      } else if (ties) {
        cmd.insert(cmd.end(), {std::to_string(score), std::to_string(score), "BYSCORE", "LIMIT", std::to_string(at_score)});
      } else {
        cmd.insert(cmd.end(), {"(" + std::to_string(score), "+inf", "BYSCORE", "LIMIT", "0"});
      }
      cmd.insert(cmd.end(), {std::to_string(kBatch), "WITHSCORES"});
      auto z = redis.Command(cmd);
      if (!z.ok()) return z.status();
      const size_t n = z->elements.size() / 2;
      for (size_t i = 0; i < n; ++i) {
        const int64_t s = z->elements[2 * i + 1].AsInt();
        if (walked && s == score) {
          ++at_score;
        } else {
          walked = true;
          score = s;
          at_score = 1;
        }
        const std::string& m = z->elements[2 * i].str;  // "queue|envelope"
        size_t bar = m.find('|');
        v1::TaskEnvelope t;
        if (bar == std::string::npos || !t.ParseFromString(m.substr(bar + 1))) continue;
        if ((t.attempt() > 0) != retrying || !Wanted(q, m.substr(0, bar), t.type())) continue;
        page.tasks.push_back({t.id(), t.type(), m.substr(0, bar), t.attempt(), s, retrying ? LastError(t) : "", ""});
        if (static_cast<int>(page.tasks.size()) == q.limit) {
          page.next_cursor = Next(src, std::to_string(score) + "-" + std::to_string(at_score));
          return page;
        }
      }
      if (n == static_cast<size_t>(kBatch)) {
        ties = true;  // a full batch: the last score may have more members
      } else if (ties) {
        ties = false;  // the score's members are all walked: on to higher ones
      } else {
        break;
      }
    }
  }
  return page;
}

// running: positions are the last stream entry id listed (the next page starts after it).
StatusOr<TaskPage> RunningPage(RedisClient& redis, const TaskKeys& keys, const std::vector<std::string>& streams,
                               const TaskListQuery& q, const Cursor& cur, int64_t now_ms) {
  TaskPage page;
  for (size_t src = cur.source; src < streams.size(); ++src) {
    std::string after = src == cur.source ? cur.pos : "";
    for (;;) {
      auto p = redis.Command({"XPENDING", streams[src], TaskKeys::Group(), after.empty() ? "-" : "(" + after, "+",
                              std::to_string(kBatch)});
      if (!p.ok()) {
        if (p.status().message().find("NOGROUP") != std::string::npos) break;  // no worker has read it yet
        return p.status();
      }
      if (p->elements.empty()) break;
      std::vector<std::vector<std::string>> reads;
      for (const RedisValue& e : p->elements) reads.push_back({"XRANGE", streams[src], e.elements[0].str, e.elements[0].str});
      auto bodies = redis.Pipeline(reads);
      if (!bodies.ok()) return bodies.status();
      for (size_t i = 0; i < p->elements.size(); ++i) {
        const RedisValue& e = p->elements[i];
        after = e.elements[0].str;
        auto entries = ParseEntries(streams[src], (*bodies)[i]);
        v1::TaskEnvelope t;
        if (entries.empty() || !Decode(entries[0].Field("e"), t)) continue;  // acked or trimmed meanwhile
        std::string queue = t.queue().empty() ? keys.QueueOf(streams[src]) : t.queue();
        if (!Wanted(q, queue, t.type())) continue;
        page.tasks.push_back({t.id(), t.type(), queue, t.attempt(), now_ms - e.elements[2].AsInt(),
                              e.elements[1].str, after});
        if (static_cast<int>(page.tasks.size()) == q.limit) {
          page.next_cursor = Next(src, after);
          return page;
        }
      }
      if (p->elements.size() < static_cast<size_t>(kBatch)) break;
    }
  }
  return page;
}

// dead: positions are the last dead-letter entry id listed.
StatusOr<TaskPage> DeadPage(RedisClient& redis, const std::vector<std::string>& dlqs, const TaskListQuery& q,
                            const Cursor& cur) {
  TaskPage page;
  for (size_t src = cur.source; src < dlqs.size(); ++src) {
    std::string after = src == cur.source ? cur.pos : "";
    for (;;) {
      auto r = redis.Command({"XRANGE", dlqs[src], after.empty() ? "-" : "(" + after, "+", "COUNT",
                              std::to_string(kBatch)});
      if (!r.ok()) return r.status();
      auto entries = ParseEntries(dlqs[src], *r);
      for (const StreamEntry& e : entries) {
        after = e.id;
        v1::TaskEnvelope t;
        if (!Decode(e.Field("e"), t) || !Wanted(q, t.queue(), t.type())) continue;
        const std::string* reason = e.Field("reason");
        const std::string* failed = e.Field("failed_at_ms");
        int64_t failed_ms = 0;
        if (failed) std::from_chars(failed->data(), failed->data() + failed->size(), failed_ms);
        page.tasks.push_back({t.id(), t.type(), t.queue(), t.attempt(), failed_ms, reason ? *reason : "", e.id});
        if (static_cast<int>(page.tasks.size()) == q.limit) {
          page.next_cursor = Next(src, after);
          return page;
        }
      }
      if (entries.size() < static_cast<size_t>(kBatch)) break;
    }
  }
  return page;
}

// succeeded: the position is how many matching records earlier pages listed (SCAN order).
StatusOr<TaskPage> SucceededPage(RedisClient& redis, const TaskKeys& keys, const TaskListQuery& q, const Cursor& cur) {
  auto start = Offset(cur.pos);
  if (!start.ok()) return start.status();
  int64_t skip = *start;
  const int64_t first = skip;
  TaskPage page;
  const std::string prefix = keys.Status("");
  Status inner = Status::Ok();
  Status s = ScanAll(redis, prefix + "*", 500, [&](const std::vector<std::string>& batch) {
    std::vector<std::vector<std::string>> cmds;
    for (const auto& k : batch) cmds.push_back({"HMGET", k, "state", "type", "queue", "attempts", "finished_at_ms",
                                                "result"});
    auto r = redis.Pipeline(cmds);
    if (!r.ok()) {
      inner = r.status();
      return false;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& f = (*r)[i].elements;
      if (f.size() != 6 || f[0].str != "succeeded" || !Wanted(q, f[2].str, f[1].str)) continue;
      if (skip-- > 0) continue;
      page.tasks.push_back({batch[i].substr(prefix.size()), f[1].str, f[2].str, f[3].AsInt(), f[4].AsInt(),
                            f[5].str, ""});
      if (static_cast<int>(page.tasks.size()) == q.limit) {
        page.next_cursor = Next(0, std::to_string(first + q.limit));
        return false;
      }
    }
    return true;
  });
  if (!inner.ok()) return inner;
  if (!s.ok()) return s;
  return page;
}

}  // namespace

bool ParseTaskListKind(const std::string& name, TaskListKind& out) {
  static const std::pair<const char*, TaskListKind> kinds[] = {{"scheduled", TaskListKind::kScheduled},
                                                               {"retrying", TaskListKind::kRetrying},
                                                               {"running", TaskListKind::kRunning},
                                                               {"dead", TaskListKind::kDead},
                                                               {"succeeded", TaskListKind::kSucceeded}};
  for (const auto& [n, k] : kinds) {
    if (name == n) {
      out = k;
      return true;
    }
  }
  return false;
}

StatusOr<TaskPage> ListTasks(RedisClient& redis, const Config& config, const TaskListQuery& q, int64_t now_ms) {
  if (q.limit < 1 || q.limit > 1000) return Status::InvalidArgument("limit must be 1 to 1000");
  if (!q.queue.empty() && !ValidQueueName(q.queue)) return Status::InvalidArgument("invalid queue name");
  auto parsed = ParseCursor(q.cursor);
  if (!parsed.ok()) return parsed.status();
  const Cursor& cur = *parsed;
  const TaskKeys keys = TaskKeys::FromConfig(config);
  // Cluster mode: only the shards of the queue asked for (standard mode has one key and filters by queue).
  std::vector<std::string> queues = q.queue.empty() ? QueueNames(config) : std::vector<std::string>{q.queue};
  switch (q.kind) {
    case TaskListKind::kScheduled:
    case TaskListKind::kRetrying:
      return ScheduledPage(redis, keys.AllScheduled(queues), q, cur);
    case TaskListKind::kRunning:
      return RunningPage(redis, keys, keys.QueueStreams(queues), q, cur, now_ms);
    case TaskListKind::kDead:
      return DeadPage(redis, keys.AllDeadLetters(queues), q, cur);
    case TaskListKind::kSucceeded:
      return SucceededPage(redis, keys, q, cur);
  }
  return Status::InvalidArgument("unknown list");
}

}  // namespace streamfleet
