#pragma once
// The admin UI's JSON API (/api/...): read models of the overview, streams, queues, task lists, dead letters
// and generations, and the operator actions (among them cancelling a task that has not started). An action
// streamfleetctl also offers is the same call into components/operations (streamfleet/operations/:
// fleet_admin.h, operator_task.h, task_lists.h, manual_compaction.h; taskqueue/task_control.h), and
// what both show has the same JSON form (operator_json.h); this class only turns requests into those calls
// and their results and errors into HTTP answers. Authentication happens before a request reaches this
// class (admin_server.h). Thread-safe: Redis clients come from a pool, the SQL store is used under a mutex.
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "admin/sampler.h"
#include "streamfleet/base/config.h"
#include "streamfleet/http/http_server.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/sql/sql_store.h"

namespace streamfleet::admin {

class AdminApi {
 public:
  // store may be null (no database reachable at startup): generation rows and "compact now" answer 503.
  AdminApi(const Config& config, RedisPool& redis, SqlStore* store, const Sampler& sampler)
      : config_(config), redis_(redis), store_(store), sampler_(sampler) {}

  // Handles GET and POST /api/<route> (route without the "/api/" prefix). POST bodies are JSON objects.
  void Handle(HttpExchange& ex, const std::string& route);

 private:
  using json = nlohmann::json;
  json Overview(RedisClient& r);
  json Streams(RedisClient& r);
  json Pending(RedisClient& r, const std::string& stream, const std::string& group);
  json Queues(RedisClient& r);
  json Task(RedisClient& r, const std::string& id);
  // GET tasks?state=&queue=&type=&limit=&cursor=: one page of a task list (streamfleet/operations/task_lists.h).
  json TaskList(RedisClient& r, const std::string& state, const std::string& queue, const std::string& type,
                const std::string& limit, const std::string& cursor);
  json DeadLetters(RedisClient& r);
  json Generation(RedisClient& r, int64_t org, int64_t gen, int64_t scenario);
  // POST actions: the JSON answer, or throws ApiError.
  json Action(RedisClient& r, const std::string& route, const json& body);

  const Config& config_;
  RedisPool& redis_;
  SqlStore* store_;
  std::mutex store_mu_;
  const Sampler& sampler_;
};

}  // namespace streamfleet::admin
