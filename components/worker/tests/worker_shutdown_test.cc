// A worker built on the SDK stopping while a handler that ignored its cancellation still runs (its thread
// abandoned by the watchdog): the process ends once the drain is done, without destroying the worker under
// that thread (it would return into freed memory when its handler ends), and says so.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "streamfleet/redis/redis.h"
#include "streamfleet/taskqueue/task_keys.h"
#include "streamfleet/testing/redis_server.h"
#include "streamfleet/worker/worker.h"

extern char** environ;

namespace streamfleet {
namespace {

TEST(WorkerShutdownTest, AnAbandonedHandlerStillRunningEndsTheProcessWithoutDestroyingTheWorker) {
  testing::RedisServer redis;
  Config config;
  config.redis = redis.config();
  config.stream_prefix = "streamfleet";  // LoadConfig's default, which the spawned worker uses
  auto enqueued = Enqueue(config, "stubborn", "{}");
  ASSERT_TRUE(enqueued.ok()) << enqueued.status().ToString();

  const std::string out = testing::TempPath("sf-stubborn") + ".log";
  const std::string db = testing::TempPath("sf-stubborn") + ".db";
  std::vector<std::string> env = {"REDIS_PORT=" + std::to_string(redis.port()), "QUEUES=default:1",
                                  "CONSUMER_NAME=stubborn", "WORKER_CONCURRENCY=1", "TASK_TIMEOUT_GRACE=100ms",
                                  "METRICS_LISTEN=127.0.0.1:0", "LOG_LEVEL=info",
                                  "DATABASE_URL=sqlite:" + db};
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&files, 1, 2);
  std::string path = STUBBORN_WORKER_PATH;
  char* argv[] = {path.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, path.c_str(), &files, nullptr, argv, envp.data()), 0);
  posix_spawn_file_actions_destroy(&files);

  int status = 0;
  bool exited = false;
  for (int i = 0; i < 2000 && !exited; ++i) {  // 20 s
    exited = waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  std::stringstream log;
  log << std::ifstream(out).rdbuf();
  std::remove(out.c_str());
  std::remove(db.c_str());
  ASSERT_TRUE(exited) << "the worker did not stop within 20 s of its SIGTERM:\n" << log.str();
  ASSERT_TRUE(WIFEXITED(status)) << log.str();
  EXPECT_EQ(WEXITSTATUS(status), 0) << log.str();
  EXPECT_NE(log.str().find("1 abandoned task handler"), std::string::npos) << log.str();
  EXPECT_EQ(log.str().find("stubborn handler returned"), std::string::npos)
      << "the process went on to destroy the worker and ran its exit hooks with the handler's thread alive:\n"
      << log.str();
  // The abandoned attempt was handed back before the exit: a retry, not lost.
  auto client = RedisClient::Connect(redis.config());
  ASSERT_TRUE(client.ok());
  auto state = (*client)->Command({"HGET", TaskKeys("streamfleet").Status(enqueued->id), "state"});
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->str, "retry_scheduled") << log.str();
}

}  // namespace
}  // namespace streamfleet
