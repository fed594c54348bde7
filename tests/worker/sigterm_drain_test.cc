// The real streamfleet-queue-worker binary on SIGTERM: it stops reading, runs the tasks its slots hold
// (read ahead, handlers inline), acks them and exits 0.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "streamfleet/redis/stream_admin.h"
#include "support/wait.h"
#include "worker/worker_fixture.h"

extern char** environ;

namespace streamfleet::worker {
namespace {

// Starts QUEUE_WORKER_PATH with `env` added to this process's environment.
pid_t Spawn(const std::vector<std::string>& env) {
  std::vector<std::string> all = env;
  for (char** e = environ; *e != nullptr; ++e) all.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& s : all) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string path = QUEUE_WORKER_PATH;
  char* argv[] = {path.data(), nullptr};
  pid_t pid = 0;
  return posix_spawn(&pid, path.c_str(), nullptr, nullptr, argv, envp.data()) == 0 ? pid : -1;
}

// Waits up to timeout_ms for the child; returns its wait status, or -1 (then it is killed).
int WaitExit(pid_t pid, int timeout_ms) {
  int status = 0;
  for (int i = 0; i < timeout_ms / 10; ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

TEST_F(WorkerTest, SigtermRunsTheHeldTasksAcksThemAndExitsZero) {
  if (ClusterRun()) GTEST_SKIP() << "standard mode only: the spawned binary is pointed at one server";
  constexpr int kTasks = 20000;
  std::vector<std::vector<std::string>> xadds;
  for (int i = 0; i < kTasks; ++i) {
    v1::TaskEnvelope t;
    t.set_id("drain" + std::to_string(i));
    t.set_type("noop");
    t.set_queue("default");
    xadds.push_back({"XADD", keys_.Queue("default"), "*", "e", t.SerializeAsString()});
  }
  ASSERT_TRUE(redis_->Pipeline(xadds).ok());
  ASSERT_TRUE(EnsureGroup(*redis_, keys_.Queue("default"), TaskKeys::Group()).ok());
  std::string db = testing::TempPath("sf-drain") + ".db";
  pid_t pid = Spawn({"REDIS_PORT=" + std::to_string(server_->port()), "QUEUES=default:1", "CONSUMER_NAME=drain",
                     "WORKER_CONCURRENCY=4", "WORKER_PREFETCH=64", "METRICS_LISTEN=127.0.0.1:0",
                     "DATABASE_URL=sqlite:" + db, "LOG_LEVEL=warn"});
  ASSERT_GT(pid, 0);
  auto delivered = [&] {
    auto st = GetStreamStats(*redis_, keys_.Queue("default"));
    return st.ok() && !st->groups.empty() ? st->groups[0].last_delivered_id : std::string("0-0");
  };
  ASSERT_TRUE(testing::WaitUntil([&] { return delivered() != "0-0"; }, 10000)) << "the worker never started";
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // mid-stream: slots hold read-ahead batches
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = WaitExit(pid, 10000);
  ASSERT_NE(status, -1) << "did not exit within 10 s of SIGTERM";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto st = GetStreamStats(*redis_, keys_.Queue("default"));
  EXPECT_EQ(st->groups[0].pending, 0) << "every task read (held ones too) ran and was acked before exit";
  EXPECT_TRUE(DeadLetters().empty());
  EXPECT_EQ(redis_->Command({"ZCARD", keys_.Scheduled()})->integer, 0) << "nothing handed back as a retry";
  auto unread = redis_->Command({"XRANGE", keys_.Queue("default"), "(" + st->groups[0].last_delivered_id, "+"});
  EXPECT_GT(unread->elements.size(), 0u) << "it stopped reading (else the test proved nothing: more tasks)";
  std::remove(db.c_str());
}

}  // namespace
}  // namespace streamfleet::worker
