#pragma once
// Test support: a loopback TCP proxy that can cut every connection and refuse new ones, to simulate a
// database (or any server) outage without stopping the shared server.
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace streamfleet::testing {

class TcpProxy {
 public:
  explicit TcpProxy(int upstream_port);
  ~TcpProxy();
  int port() const { return port_; }
  // Down: close every proxied connection and reset new ones until Up().
  void Down();
  void Up() { down_ = false; }

 private:
  void AcceptLoop();
  void Pump(int from, int to);

  int upstream_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> down_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace streamfleet::testing
