// Enqueues one task through the installed headers and libraries, with the fleet's configuration from the
// environment (REDIS_URL), and prints its id: what an app's C++ producer does.
#include <chrono>
#include <cstdio>

#include "streamfleet/base/config.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/taskqueue/task_queue.h"

int main() {
  using namespace streamfleet;
  auto config = LoadConfig(ProcessEnv(), "127.0.0.1:0");
  if (!config.ok()) {
    std::fprintf(stderr, "config: %s\n", config.status().ToString().c_str());
    return 2;
  }
  auto redis = RedisClient::Connect(config->redis);
  if (!redis.ok()) {
    std::fprintf(stderr, "redis: %s\n", redis.status().ToString().c_str());
    return 1;
  }
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  auto r = EnqueueTask(**redis, TaskKeys::FromConfig(*config), "noop", "{\"from\":\"consumer\"}",
                       EnqueueOptions::FromConfig(*config), now_ms);
  if (!r.ok()) {
    std::fprintf(stderr, "enqueue: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", r->id.c_str());
  return 0;
}
