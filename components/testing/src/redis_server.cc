#include "streamfleet/testing/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "streamfleet/redis/redis.h"

namespace streamfleet::testing {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

std::string TempPath(const std::string& stem) {
  static int counter = 0;
  return (std::filesystem::temp_directory_path() /
          (stem + "-" + std::to_string(getpid()) + "-" + std::to_string(++counter)))
      .string();
}

std::string PostgresUrl() {
  const char* v = std::getenv("STREAMFLEET_TEST_PG_URL");
  return v ? v : "";
}

RedisServer::RedisServer(std::string extra_args) : extra_(std::move(extra_args)) {
  dir_ = TempPath("sf-redis");
  std::filesystem::create_directories(dir_);
  port_ = FreePort();
  Start();
}

RedisServer::~RedisServer() {
  Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

RedisConfig RedisServer::config() const {
  RedisConfig c;
  c.host = "127.0.0.1";
  c.port = port_;
  c.connect_timeout_ms = 1000;
  c.command_timeout_ms = 3000;
  return c;
}

void RedisServer::Start() {
  StartLoading();
  for (int i = 0; i < 200; ++i) {
    auto c = RedisClient::Connect(config());
    if (c.ok()) {
      auto p = (*c)->Command({"PING"});
      if (p.ok() || p.status().code() == StatusCode::kUnauthenticated) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  throw std::runtime_error("redis-server did not start on port " + std::to_string(port_));
}

void RedisServer::StartLoading() {
  std::vector<std::string> args = {"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", dir_, "--daemonize", "no",
                                   "--loglevel", "warning", "--logfile", dir_ + "/redis.log"};
  std::istringstream extra(extra_);
  for (std::string a; extra >> a;) args.push_back(a);
  pid_ = SpawnProcess(args);
}

int SpawnProcess(const std::vector<std::string>& argv) {
  std::vector<std::string> args = argv;  // execvp takes char*
  int pid = fork();
  if (pid == 0) {
    // The servers log to their own files. Their stdout and stderr must not be the test's: ctest reads a test's
    // output until every holder closes it, so a server outliving a test that crashed (no destructor ran to
    // stop it) turned the crash into a 600 s "Timeout" with the cause lost.
    // The test's stderr, kept (closed on a successful exec) to say why an exec failed.
    int err_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      dup2(null_fd, STDIN_FILENO);
      dup2(null_fd, STDOUT_FILENO);
      dup2(null_fd, STDERR_FILENO);
      if (null_fd > STDERR_FILENO) close(null_fd);
    }
    std::vector<char*> ptrs;
    for (auto& a : args) ptrs.push_back(a.data());
    ptrs.push_back(nullptr);
    execvp(ptrs[0], ptrs.data());
    if (err_fd >= 0) {  // why, on the test's stderr
      const char* why = std::strerror(errno);
      const char* parts[] = {"cannot run ", ptrs[0], ": ", why, "\n"};
      for (const char* part : parts) (void)!write(err_fd, part, std::strlen(part));
    }
    _exit(127);
  }
  return pid;
}

void RedisServer::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

void RedisServer::Pause() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void RedisServer::Resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

void RedisServer::Stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

int64_t ServerStat(RedisClient& client, const std::string& field) {
  auto info = client.Command({"INFO", "stats"});
  const std::string key = field + ":";
  const size_t at = info.ok() ? info->str.find(key) : std::string::npos;
  return at == std::string::npos ? -1 : std::stoll(info->str.substr(at + key.size()));
}

}  // namespace streamfleet::testing
