// What a server that breaks the protocol does to AsyncRedis's handed-over connection (UvRespConnection:
// TLS, and every connection behind Sentinel). A real redis-server never sends such input, so a fake one
// does: a tiny RESP server playing the sentinel and the master. Expected: the command on the broken
// connection fails with kUnavailable naming the cause, every command pending on it is answered exactly
// once, nothing crashes, and the next command connects again.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "streamfleet/redis/async_redis.h"
#include "support/loopback.h"
#include "support/wait.h"

namespace streamfleet {
namespace {

using namespace std::chrono_literals;

std::string Bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }

// Accepts connections on a free loopback port; each request (a RESP array of bulk strings, as clients send)
// is answered with whatever `answer` returns, written as is.
class FakeRespServer {
 public:
  using Answer = std::function<std::string(const std::vector<std::string>& argv)>;
  explicit FakeRespServer(Answer answer) : answer_(std::move(answer)) {
    listener_ = testing::ListenOnLoopback(&port_);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~FakeRespServer() {
    stopping_ = true;
    acceptor_.join();
    close(listener_);
    std::lock_guard<std::mutex> l(mu_);
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    for (auto& t : conns_) t.join();
    for (int fd : fds_) close(fd);
  }
  int port() const { return port_; }
  std::string node() const { return "127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_.load(); }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      int fd = testing::AcceptWithTimeout(listener_);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard<std::mutex> l(mu_);
      fds_.push_back(fd);
      conns_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  void Serve(int fd) {
    std::string in;
    char buf[4096];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return;
      in.append(buf, static_cast<size_t>(n));
      std::vector<std::string> argv;
      size_t used;
      while ((used = Parse(in, argv)) > 0) {
        in.erase(0, used);
        std::string out = answer_(argv);
        if (!out.empty() && send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) return;
      }
    }
  }
  // One complete "*N\r\n($len\r\nbytes\r\n)*N" at the front of `in`: its length, or 0 if incomplete.
  static size_t Parse(const std::string& in, std::vector<std::string>& argv) {
    argv.clear();
    if (in.empty() || in[0] != '*') return 0;
    size_t at = in.find("\r\n");
    if (at == std::string::npos) return 0;
    int n = std::stoi(in.substr(1, at - 1));
    at += 2;
    for (int i = 0; i < n; ++i) {
      size_t eol = in.find("\r\n", at);
      if (eol == std::string::npos || in[at] != '$') return 0;
      size_t len = std::stoul(in.substr(at + 1, eol - at - 1));
      if (in.size() < eol + 2 + len + 2) return 0;
      argv.push_back(in.substr(eol + 2, len));
      at = eol + 2 + len + 2;
    }
    return at;
  }

  Answer answer_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> conns_;
};

TEST(MalformedServerTest, AProtocolErrorOrAReplyNobodyAskedForDropsTheConnectionAndAnswersEachCommandOnce) {
  FakeRespServer master([](const std::vector<std::string>& argv) -> std::string {
    if (argv.empty()) return "-ERR empty\r\n";
    if (argv[0] == "ROLE") return "*3\r\n" + Bulk("master") + ":0\r\n*0\r\n";
    if (argv[0] == "GET" && argv.size() == 2) {
      if (argv[1] == "garbage") return "?this is not RESP\r\n";
      if (argv[1] == "twice") return Bulk("once") + Bulk("unasked");  // one reply too many
      if (argv[1] == "slow") {
        std::this_thread::sleep_for(50ms);  // so that the commands after it are queued behind it
        return "?garbage again\r\n";
      }
      return Bulk("value of " + argv[1]);
    }
    return "+OK\r\n";
  });
  const int master_port = master.port();
  FakeRespServer sentinel([master_port](const std::vector<std::string>& argv) -> std::string {
    if (!argv.empty() && argv[0] == "SENTINEL") return "*2\r\n" + Bulk("127.0.0.1") + Bulk(std::to_string(master_port));
    if (!argv.empty() && argv[0] == "SUBSCRIBE") return "*3\r\n" + Bulk("subscribe") + Bulk(argv[1]) + ":1\r\n";
    return "+PONG\r\n";
  });

  RedisConfig c;
  c.host = "unused.invalid";
  c.port = 1;
  c.connect_timeout_ms = 1000;
  c.command_timeout_ms = 2000;
  c.sentinel.master = "mymaster";
  c.sentinel.nodes = {sentinel.node()};
  AsyncRedis async(c);

  auto ok = async.Command({"GET", "a"});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->str, "value of a");

  auto bad = async.Command({"GET", "garbage"});
  EXPECT_EQ(bad.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(bad.status().ToString().find("protocol error"), std::string::npos) << bad.status().ToString();
  auto again = async.Command({"GET", "b"});
  ASSERT_TRUE(again.ok()) << "connects again after a protocol error: " << again.status().ToString();
  EXPECT_EQ(again->str, "value of b");

  // The command gets its own reply; the one nobody asked for brings the connection down, not a later command.
  auto twice = async.Command({"GET", "twice"});
  ASSERT_TRUE(twice.ok()) << twice.status().ToString();
  EXPECT_EQ(twice->str, "once");
  auto after = async.Command({"GET", "c"});
  if (!after.ok()) after = async.Command({"GET", "c"});  // the drop may race this command: then the next one
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->str, "value of c") << "never the unasked reply";

  // Commands queued behind a broken reply: each callback runs exactly once.
  constexpr int kQueued = 20;
  std::atomic<int> calls[kQueued + 1] = {};
  std::atomic<int> failed{0};
  async.Send({"GET", "slow"}, [&](StatusOr<RedisValue> r) {
    ++calls[kQueued];
    if (!r.ok()) ++failed;
  });
  for (int i = 0; i < kQueued; ++i) {
    async.Send({"GET", "k" + std::to_string(i)}, [&, i](StatusOr<RedisValue> r) {
      ++calls[i];
      if (!r.ok()) ++failed;
    });
  }
  ASSERT_TRUE(testing::WaitUntil([&] {
    for (auto& n : calls) {
      if (n.load() == 0) return false;
    }
    return true;
  }));
  std::this_thread::sleep_for(100ms);  // a second answer would come now
  for (int i = 0; i <= kQueued; ++i) EXPECT_EQ(calls[i].load(), 1) << "command " << i;
  EXPECT_GE(failed.load(), 1) << "at least the command whose reply was garbage failed";
  auto last = async.Command({"GET", "d"});
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(last->str, "value of d");
  EXPECT_GE(master.accepted(), 4) << "one connection per break, plus the first";
}

}  // namespace
}  // namespace streamfleet
