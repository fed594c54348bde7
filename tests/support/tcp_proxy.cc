#include "support/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/loopback.h"

namespace streamfleet::testing {

TcpProxy::TcpProxy(int upstream_port) : upstream_(upstream_port) {
  listen_fd_ = ListenOnLoopback(&port_);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  Down();
  shutdown(listen_fd_, SHUT_RDWR);  // wakes the acceptor; closed after it stopped, so it never polls a reused fd
  acceptor_.join();
  close(listen_fd_);
  for (auto& t : threads_) t.join();
  // Closed only now: Down() shuts down every fd in fds_, and one closed earlier could have been reused by
  // then for something of the test's.
  for (int fd : fds_) close(fd);
}

void TcpProxy::Down() {
  down_ = true;
  std::lock_guard<std::mutex> l(mu_);
  for (int fd : fds_) shutdown(fd, SHUT_RDWR);
}

void TcpProxy::AcceptLoop() {
  while (!stop_) {
    int client = AcceptWithTimeout(listen_fd_);
    if (client < 0) continue;
    if (down_) {
      close(client);
      continue;
    }
    int up = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(upstream_));
    if (connect(up, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      close(client);
      close(up);
      continue;
    }
    std::lock_guard<std::mutex> l(mu_);
    if (down_) {  // Down() ran while this one was connecting: it must not outlive the outage
      close(client);
      close(up);
      continue;
    }
    fds_.push_back(client);
    fds_.push_back(up);
    threads_.emplace_back([this, client, up] { Pump(client, up); });
    threads_.emplace_back([this, client, up] { Pump(up, client); });
  }
}

void TcpProxy::Pump(int from, int to) {
  char buf[16384];
  while (true) {
    ssize_t n = read(from, buf, sizeof(buf));
    if (n <= 0) break;
    // MSG_NOSIGNAL: the other side may have been cut by Down() (or closed) while this read was in hand; a
    // write(2) there raises SIGPIPE, which gtest does not ignore, and the whole test binary died.
    if (send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
  }
  shutdown(from, SHUT_RDWR);
  shutdown(to, SHUT_RDWR);
}

}  // namespace streamfleet::testing
