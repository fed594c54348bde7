#pragma once
// Test support: a raw TCP client for HTTP that a well-behaved client (libcurl) will not send: truncated
// requests, oversized headers, broken chunked encoding, a header trickled byte by byte.
#include <functional>
#include <string>
#include <string_view>

namespace streamfleet::testing {

class RawConnection {
 public:
  explicit RawConnection(int port);  // connects to 127.0.0.1:port (throws std::runtime_error on failure)
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Writes all of `bytes`; false when the peer closed or reset the connection.
  bool Send(std::string_view bytes);
  // Half-close: the server sees the end of the request stream but can still answer.
  void CloseWrite();
  // Closes with a reset (SO_LINGER 0): the server's next read fails instead of seeing the stream end.
  void Reset();
  // The port of this end of the connection (what the server sees as its peer's).
  int LocalPort() const;
  // Everything the peer sends until it closes the connection or timeout_ms passes.
  std::string ReadUntilClosed(int timeout_ms);
  // The same, but also stops as soon as done(what was read so far) is true: a stream that stays open (a live
  // route) is read until the test has what it waits for, not until the timeout.
  std::string ReadUntil(const std::function<bool(const std::string&)>& done, int timeout_ms);
  // One answer (head + Content-Length body) on a kept-alive connection; "" on close or timeout. Bytes of the
  // next answer that came with it are kept for the next call.
  std::string ReadResponse(int timeout_ms);
  // True when the peer closed (or reset) the connection within timeout_ms; discards what it sent.
  bool WaitClosed(int timeout_ms);

 private:
  int fd_ = -1;
  std::string pending_;  // read past the end of the last ReadResponse answer
};

// One request over a fresh connection, half-closed after sending; returns the raw answer.
std::string RawExchange(int port, std::string_view request, int timeout_ms = 3000);

// The status code of a raw HTTP answer ("HTTP/1.1 400 Bad Request..." -> 400), 0 when there is none.
int StatusOf(const std::string& answer);

// The body of a raw HTTP answer (after the blank line), "" when there is none.
std::string BodyOf(const std::string& answer);

}  // namespace streamfleet::testing
