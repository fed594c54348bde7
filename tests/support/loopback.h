#pragma once
// Test support: a listening TCP socket on 127.0.0.1 and an accept loop that never blocks shutdown, shared
// by the servers the tests run in-process (TcpProxy, FakeProvider).
namespace streamfleet::testing {

// A listening socket on 127.0.0.1, any free port (written to *port). Returns the fd.
int ListenOnLoopback(int* port);

// Accepts one connection, waiting at most 100 ms. Returns the fd, or -1 when none arrived.
int AcceptWithTimeout(int listen_fd);

}  // namespace streamfleet::testing
