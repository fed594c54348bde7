#include "support/s3_server.h"

#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "streamfleet/testing/redis_server.h"

namespace streamfleet::testing {

namespace fs = std::filesystem;

S3Server::S3Server(std::string bucket)
    : bucket_(std::move(bucket)), dir_(TempPath("sf-s3rver")), port_(FreePort()) {
  // The pinned package files are copied to the build tree and installed there, never in the sources. Test
  // processes run in parallel (ctest -j, the fault suite): one at a time under a lock on the build tree's
  // copy, so none overwrites the files another's npm ci is reading or installs over it.
  fs::create_directories(STREAMFLEET_S3RVER_WORK);
  std::string cmd = std::string("cd ") + STREAMFLEET_S3RVER_WORK + " && flock .install.lock sh -c '" +
                    "test -x node_modules/.bin/s3rver || { cp " + STREAMFLEET_S3RVER_PACKAGE + "/package.json " +
                    STREAMFLEET_S3RVER_PACKAGE + "/package-lock.json . && npm ci --no-audit --no-fund --loglevel=error; }'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  Start();
}

S3Server::~S3Server() {
  Kill();
  fs::remove_all(dir_);
}

void S3Server::Start() {
  fs::create_directories(dir_);
  pid_ = SpawnProcess({"node", std::string(STREAMFLEET_S3RVER_WORK) + "/node_modules/.bin/s3rver", "-d", dir_, "-p",
                       std::to_string(port_), "-a", "127.0.0.1", "--configure-bucket", bucket_, "--silent"});
  // Ready when it answers HTTP.
  for (int i = 0; i < 200; ++i) {
    std::string cmd = "curl -s -o /dev/null " + endpoint() + "/";
    if (std::system(cmd.c_str()) == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "s3rver did not start on port " << port_;
}

void S3Server::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::map<std::string, std::string> S3Server::env(const std::string& prefix) const {
  return {{"ARTIFACT_STORE", "s3://" + bucket_ + "/" + prefix},
          {"ARTIFACT_STORE_ENDPOINT", endpoint()},
          {"AWS_ACCESS_KEY_ID", "S3RVER"},
          {"AWS_SECRET_ACCESS_KEY", "S3RVER"},
          {"ARTIFACT_STORE_TIMEOUT", "2s"}};
}

}  // namespace streamfleet::testing
