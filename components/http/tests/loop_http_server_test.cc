// LoopHttpServer (streamfleet/http/loop_http_server.h) over real sockets: pipelined requests answered in order across
// the fast (loop-thread, answered from another thread) and worker paths, a client that closes mid-body,
// bodies larger than the pipe streamed with backpressure, many connections at once, graceful Stop.
#include "streamfleet/http/loop_http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "support/raw_http.h"
#include "support/wait.h"

namespace streamfleet::testing {
namespace {

using namespace std::chrono_literals;

std::string Get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}

std::string Post(const std::string& path, const std::string& body, const std::string& extra = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
         "\r\n" + body;
}

// Answers the path ("/a" -> "a"); /slow sleeps first (on purpose), so a pipelined answer behind it would
// overtake it if answers were written as they come.
void EchoPath(HttpExchange& ex) {
  if (ex.path() == "/slow") std::this_thread::sleep_for(200ms);
  auto body = ex.ReadBody(1 << 20);
  ex.Respond(200, "text/plain", ex.path().substr(1) + (body.ok() ? ":" + std::to_string(body->size()) : ":error"));
}

TEST(LoopHttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  std::vector<std::thread> answerers;
  std::mutex mu;
  // /fast is taken on the loop thread and answered 50 ms later from another thread (as ingest's Redis
  // callback does); everything else goes to a worker.
  auto fast = [&](const std::shared_ptr<HttpExchange>& ex) {
    if (ex->path() != "/fast") return false;
    std::lock_guard<std::mutex> lock(mu);
    answerers.emplace_back([ex] {
      std::this_thread::sleep_for(50ms);  // answered later on purpose: the answers behind it must wait
      ex->Respond(200, "text/plain", "fast");
    });
    return true;
  };
  auto server = LoopHttpServer::Start("127.0.0.1:0", 4, EchoPath, 5000, fast).value();
  RawConnection c(server->port());
  ASSERT_TRUE(c.Send(Get("/slow") + Post("/fast", "{}") + Post("/b", "12345") + Get("/fast") + Get("/c")));
  std::vector<std::string> bodies;
  for (int i = 0; i < 5; ++i) bodies.push_back(BodyOf(c.ReadResponse(10000)));
  EXPECT_EQ(bodies, (std::vector<std::string>{"slow:0", "fast", "b:5", "fast", "c:0"}));
  server->Stop();
  for (auto& t : answerers) t.join();
}

TEST(LoopHttpServerTest, ClientClosingMidBodyGivesTheHandlerAReadErrorAndTheServerKeepsServing) {
  std::promise<std::string> seen_chunked, seen_length;
  std::atomic<bool> chunked_started{false};
  auto handler = [&](HttpExchange& ex) {
    if (ex.path() == "/chunked") chunked_started = true;
    auto body = ex.ReadBody(1 << 20);
    if (ex.path() == "/chunked") seen_chunked.set_value(body.ok() ? "complete" : "error");
    if (ex.path() == "/length") seen_length.set_value(body.ok() ? "complete" : "error");
    ex.Respond(400, "text/plain", "cut");
  };
  auto fast = [](const std::shared_ptr<HttpExchange>&) { return false; };
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, handler, 5000, fast).value();
  {
    RawConnection c(server->port());  // chunked: streamed to the worker as it comes
    c.Send("POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nab");
    // Closed once the handler is reading the body (not after a time that is enough on a quiet machine).
    ASSERT_TRUE(WaitUntil([&] { return chunked_started.load(); })) << "the handler never started";
  }
  {
    RawConnection c(server->port());  // Content-Length: collected on the loop for the fast handler first
    c.Send(Post("/length", std::string(100, 'x')).substr(0, 80));
    // A pause on purpose, so the loop normally reads the partial body before the close. (The handler only
    // runs once the body is collected, so there is nothing to wait for; a loaded machine may see the data and
    // the close in one read, and the handler must see the short body either way.)
    std::this_thread::sleep_for(50ms);
  }
  auto chunked = seen_chunked.get_future(), length = seen_length.get_future();
  ASSERT_EQ(chunked.wait_for(20s), std::future_status::ready) << "the handler never saw the chunked body end";
  EXPECT_EQ(chunked.get(), "error");
  ASSERT_EQ(length.wait_for(20s), std::future_status::ready) << "the handler never saw the short body";
  EXPECT_EQ(length.get(), "error");
  RawConnection again(server->port());
  again.Send(Post("/other", ""));
  EXPECT_EQ(StatusOf(again.ReadResponse(10000)), 400);
}

TEST(LoopHttpServerTest, LargeBodiesStreamThroughTheBoundedPipe) {
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, [](HttpExchange& ex) {
    size_t total = 0;
    char buf[1000];
    int n;
    while ((n = ex.Read(buf, sizeof(buf))) > 0) {
      total += static_cast<size_t>(n);
      if (total % 100000 < 1000) std::this_thread::sleep_for(5ms);  // a slow reader on purpose: the pipe fills up
    }
    ex.Respond(n == 0 ? 200 : 400, "text/plain", std::to_string(total));
  }).value();
  RawConnection c(server->port());
  std::string body(3 * 1000 * 1000, 'z');
  std::thread sender([&] { c.Send(Post("/big", body)); });
  std::string answer = c.ReadResponse(10000);
  sender.join();
  EXPECT_EQ(StatusOf(answer), 200) << answer.substr(0, 200);
  EXPECT_EQ(BodyOf(answer), std::to_string(body.size()));
}

// Trailers after a chunked body that is already streaming to a handler are not a second request head: a
// head near the size limit plus trailers must not end in 431 while the handler reads (it did, once).
TEST(LoopHttpServerTest, TrailersOfAStreamedBodyDoNotCountAsHead) {
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, EchoPath).value();
  RawConnection c(server->port());
  std::string pad(LoopHttpServer::kMaxHeaderBytes - 1000, 'p');
  std::string trailer(4000, 't');
  ASSERT_TRUE(c.Send("POST /up HTTP/1.1\r\nHost: t\r\nX-Pad: " + pad +
                     "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: " + trailer +
                     "\r\n\r\n"));
  std::string answer = c.ReadResponse(10000);
  EXPECT_EQ(StatusOf(answer), 200) << answer.substr(0, 200);
  EXPECT_EQ(BodyOf(answer), "up:5");
  ASSERT_TRUE(c.Send(Get("/next")));  // and the connection is still in step
  EXPECT_EQ(BodyOf(c.ReadResponse(10000)), "next:0");
}

// Two threads answering one request at once (ingest's Redis callback and a handler exception on the loop):
// exactly one answer reaches the client, and the next pipelined request gets its own.
TEST(LoopHttpServerTest, ConcurrentAnswersToOneRequestSendOne) {
  auto fast = [](const std::shared_ptr<HttpExchange>& ex) {
    if (ex->path() != "/race") return false;
    std::thread a([ex] { ex->Respond(200, "text/plain", "first"); });
    std::thread b([ex] { ex->Respond(500, "text/plain", "second"); });
    a.join();
    b.join();
    return true;
  };
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, EchoPath, 5000, fast).value();
  RawConnection c(server->port());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(c.Send(Get("/race") + Get("/after")));
    std::string race = c.ReadResponse(10000);
    EXPECT_TRUE(BodyOf(race) == "first" || BodyOf(race) == "second") << race;
    EXPECT_EQ(BodyOf(c.ReadResponse(10000)), "after:0") << "round " << i;
  }
}

// A client that pipelines requests but does not read the answers: the server stops taking its requests
// once answers pile up unsent (instead of buffering without bound), and serves the rest, in order, once the
// client reads again.
TEST(LoopHttpServerTest, AClientThatDoesNotReadIsNotServedWithoutBound) {
  std::atomic<int> handled{0};
  const std::string big(200 * 1000, 'b');
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, [&](HttpExchange& ex) {
    ++handled;
    ex.Respond(200, "text/plain", ex.path() == "/big" ? big : "end");
  }).value();
  RawConnection c(server->port());
  const int n = 150;  // 30 MB of answers: more than the loopback socket buffers hold
  std::string requests;
  for (int i = 0; i < n; ++i) requests += Get("/big");
  requests += Get("/end");
  std::thread sender([&] { c.Send(requests); });
  ASSERT_TRUE(WaitUntil([&] { return handled.load() > 0; })) << "the server took none of the requests";
  // Letting time pass is the point: however long the client does not read, the server must not take all of
  // its requests. (A loaded machine handles fewer in this time, which the assertion allows.)
  std::this_thread::sleep_for(1500ms);
  EXPECT_LT(handled.load(), n) << "every request was answered although the client read nothing";
  for (int i = 0; i < n; ++i) {
    std::string answer = c.ReadResponse(5000);
    ASSERT_EQ(BodyOf(answer).size(), big.size()) << "answer " << i;
  }
  EXPECT_EQ(BodyOf(c.ReadResponse(5000)), "end");
  sender.join();
  EXPECT_EQ(handled.load(), n + 1);
}

// HttpExchange::HoldUntilWritten (what ingest charges an answer to its answer budget with) lives while the
// answer waits for the client's socket: released once the socket took all of it, on a connection kept alive,
// and when the client goes away without reading it.
TEST(LoopHttpServerTest, AnAnswersHoldIsReleasedWhenWrittenOrGivenUp) {
  const std::string big(8 << 20, 'h');  // more than loopback's socket buffers take
  std::mutex mu;
  std::weak_ptr<void> last;
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, [&](HttpExchange& ex) {
    auto hold = std::make_shared<int>(0);
    {
      std::lock_guard<std::mutex> lock(mu);
      last = hold;
    }
    ex.HoldUntilWritten(std::move(hold));
    ex.Respond(200, "text/plain", big);
  }).value();
  auto held = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return !last.expired();
  };
  {
    RawConnection reader(server->port());
    ASSERT_TRUE(reader.Send(Get("/read")));
    std::string answer = reader.ReadResponse(20000);
    EXPECT_EQ(BodyOf(answer).size(), big.size());
    EXPECT_TRUE(WaitUntil([&] { return !held(); })) << "the hold outlived the written answer";
  }
  {
    RawConnection idle(server->port());
    ASSERT_TRUE(idle.Send(Get("/unread")));
    ASSERT_TRUE(WaitUntil(held)) << "the handler never answered";
    std::this_thread::sleep_for(300ms);  // on purpose: nothing is read, so nothing may be released
    EXPECT_TRUE(held()) << "released while most of the answer was still queued";
  }
  EXPECT_TRUE(WaitUntil([&] { return !held(); })) << "the hold outlived its connection";
}

// The server's end of a loopback connection to a server in this process: the descriptor whose peer is the
// client's port; -1 until the server has accepted it.
int ServerEndOf(const RawConnection& client) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::atoi(entry.path().filename().c_str());
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0 && peer.sin_family == AF_INET &&
        ntohs(peer.sin_port) == client.LocalPort()) {
      return fd;
    }
  }
  return -1;
}

// A client that shuts down its sending side after its request (a request piped through `nc -N` does) and
// reads its answer afterwards. When the answer was larger than what the socket took at once but under
// the 256 KiB past which the server stops reading, the server read the end of the stream while the rest was
// still queued and closed the connection, cutting the answer off. It closes once the answer is written. (The
// server's send buffer is made small here, as on a real network: on loopback it takes megabytes.)
TEST(LoopHttpServerTest, AHalfClosedClientGetsItsWholeAnswerBeforeTheClose) {
  const std::string answer(240 * 1024, 'm');
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, [&](HttpExchange& ex) {
    ex.Respond(200, "text/plain", answer);
  }).value();
  RawConnection c(server->port());
  int server_end = -1;
  ASSERT_TRUE(WaitUntil([&] { return (server_end = ServerEndOf(c)) >= 0; })) << "never accepted";
  const int small = 4096;
  ASSERT_EQ(setsockopt(server_end, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  ASSERT_TRUE(c.Send(Get("/mid")));
  // The answer is being written (its head came) before the client shuts down its side.
  std::string got = c.ReadUntil([](const std::string& so_far) { return so_far.find("\r\n\r\n") != std::string::npos; },
                                10000);
  ASSERT_EQ(StatusOf(got), 200) << got.substr(0, 200);
  c.CloseWrite();
  std::this_thread::sleep_for(300ms);  // on purpose: the server sees the end of the stream while it writes
  const auto t0 = std::chrono::steady_clock::now();
  got += c.ReadUntilClosed(10000);
  EXPECT_EQ(BodyOf(got).size(), answer.size()) << "the answer was cut off";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "the connection was not closed after the answer";
}

// A client that shuts down its side while its request runs, with nothing pipelined, still gets its answer, and
// the connection closes right after it, not at the keep-alive timeout.
TEST(LoopHttpServerTest, AClientThatShutsDownWhileItsRequestRunsGetsTheAnswerThenTheClose) {
  std::atomic<bool> started{false}, release{false};
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, [&](HttpExchange& ex) {
    started = true;
    WaitUntil([&] { return release.load(); });
    ex.Respond(200, "text/plain", std::string(ex.path().substr(1)));
  }, /*request_timeout_ms=*/30000).value();
  RawConnection c(server->port());
  ASSERT_TRUE(c.Send(Get("/first")));
  ASSERT_TRUE(WaitUntil([&] { return started.load(); })) << "the handler never ran";
  c.CloseWrite();
  std::this_thread::sleep_for(100ms);  // on purpose: the server reads the end of the stream while answering
  release = true;
  const auto t0 = std::chrono::steady_clock::now();
  std::string got = c.ReadUntilClosed(20000);
  EXPECT_EQ(StatusOf(got), 200) << got.substr(0, 200);
  EXPECT_EQ(BodyOf(got), "first");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s) << "the connection was not closed after the answer";
}

// Requests sent while another is answered wait for it (they are not run before it), are answered in order,
// and the connection stays usable.
TEST(LoopHttpServerTest, ARequestSentWhileAnotherIsAnsweredIsAnsweredAfterIt) {
  std::atomic<int> running{0};
  std::atomic<bool> release{false};
  auto server = LoopHttpServer::Start("127.0.0.1:0", 4, [&](HttpExchange& ex) {
    ++running;
    if (ex.path() == "/held") WaitUntil([&] { return release.load(); });
    auto body = ex.ReadBody(1 << 20);
    ex.Respond(200, "text/plain", ex.path().substr(1) + ":" + std::to_string(body.ok() ? body->size() : 0));
  }).value();
  RawConnection c(server->port());
  ASSERT_TRUE(c.Send(Get("/held")));
  ASSERT_TRUE(WaitUntil([&] { return running.load() == 1; }));
  ASSERT_TRUE(c.Send(Post("/next", std::string(3000, 'n')) + Get("/last")));
  std::this_thread::sleep_for(100ms);  // on purpose: the pipelined bytes arrive while /held is answered
  EXPECT_EQ(running.load(), 1) << "a request ran before the one ahead of it was answered";
  release = true;
  EXPECT_EQ(BodyOf(c.ReadResponse(10000)), "held:0");
  EXPECT_EQ(BodyOf(c.ReadResponse(10000)), "next:3000");
  EXPECT_EQ(BodyOf(c.ReadResponse(10000)), "last:0");
  ASSERT_TRUE(c.Send(Get("/again")));
  EXPECT_EQ(BodyOf(c.ReadResponse(10000)), "again:0");
}

TEST(LoopHttpServerTest, ManyKeepAliveConnectionsAtOnce) {
  std::atomic<int> fast_count{0};
  auto fast = [&](const std::shared_ptr<HttpExchange>& ex) {
    if (ex->path() != "/fast") return false;
    ++fast_count;
    ex->Respond(202, "application/json", "{}");
    return true;
  };
  auto server = LoopHttpServer::Start("127.0.0.1:0", 4, EchoPath, 5000, fast).value();
  constexpr int kClients = 200, kRequests = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      RawConnection c(server->port());
      for (int r = 0; r < kRequests; ++r) {
        bool use_fast = (i + r) % 2 == 0;
        c.Send(use_fast ? Post("/fast", "{\"data\":\"x\"}") : Get("/w"));
        std::string a = c.ReadResponse(10000);
        if (StatusOf(a) == (use_fast ? 202 : 200)) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
  EXPECT_EQ(fast_count.load(), kClients * kRequests / 2);
}

TEST(LoopHttpServerTest, MalformedRequestsAre400AndHugeHeaders431) {
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, EchoPath).value();
  EXPECT_EQ(StatusOf(RawExchange(server->port(), "GARBAGE / HTTP/1.1\r\n\r\n")), 400);
  std::string huge = Get("/x", "X-Big: " + std::string(LoopHttpServer::kMaxHeaderBytes, 'a') + "\r\n");
  EXPECT_EQ(StatusOf(RawExchange(server->port(), huge)), 431);
  std::string many;
  for (size_t i = 0; i <= LoopHttpServer::kMaxHeaderLines; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(StatusOf(RawExchange(server->port(), Get("/x", many))), 431);
  EXPECT_EQ(BodyOf(RawExchange(server->port(), Get("/ok", "Connection: close\r\n"))), "ok:0");
}

// When the server closes after an answer (the client asked, or the body was not read to its end), the answer
// says "Connection: close", so a pooling client does not send its next request into a closing socket.
TEST(LoopHttpServerTest, AnAnswerBeforeAClosingSaysConnectionClose) {
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, [](HttpExchange& ex) {
    ex.Respond(ex.path() == "/unread" ? 413 : 200, "text/plain", "x");  // never reads the body
  }).value();
  std::string asked = RawExchange(server->port(), Get("/a", "Connection: close\r\n"));
  EXPECT_NE(asked.find("\r\nConnection: close\r\n"), std::string::npos) << asked;
  RawConnection c(server->port());
  ASSERT_TRUE(c.Send("POST /unread HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"));
  std::string unread = c.ReadResponse(10000);
  EXPECT_EQ(StatusOf(unread), 413);
  EXPECT_NE(unread.find("\r\nConnection: close\r\n"), std::string::npos) << unread;
  RawConnection kept(server->port());
  ASSERT_TRUE(kept.Send(Get("/k")));
  EXPECT_EQ(kept.ReadResponse(10000).find("Connection: close"), std::string::npos);
}

// A body still arriving when the stop's grace is over is cut off: the handler answers with what it read and
// Stop returns, instead of waiting for the upload (or the request timeout, here 10 s).
TEST(LoopHttpServerTest, StopCutsOffABodyStillArrivingAfterTheGrace) {
  std::atomic<int> read_error{0};
  std::atomic<bool> reading{false};
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, [&](HttpExchange& ex) {
    char buf[256];
    int n, total = 0;
    while ((n = ex.Read(buf, sizeof(buf))) > 0) {
      total += n;
      reading = true;
    }
    if (n < 0) ++read_error;
    ex.Respond(n < 0 ? 400 : 200, "text/plain", std::to_string(total));
  }, 10000).value();
  RawConnection c(server->port());
  ASSERT_TRUE(c.Send("POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"));
  // The handler is reading (it has the first chunk); the upload never ends.
  ASSERT_TRUE(WaitUntil([&] { return reading.load(); })) << "the handler never got the first chunk";
  auto t0 = std::chrono::steady_clock::now();
  server->Stop(300);
  auto took = std::chrono::steady_clock::now() - t0;
  // Grace + a timer tick + the 2 s linger of a connection whose body was not read to its end; without the
  // cut-off it is the 10 s request timeout (the trickling client never lets it fire) or longer.
  EXPECT_LT(took, 6s) << "Stop waited for the upload";
  EXPECT_EQ(read_error.load(), 1);
  std::string answer = c.ReadResponse(1000);
  EXPECT_EQ(StatusOf(answer), 400) << answer;
  EXPECT_EQ(BodyOf(answer), "5");
}

// The trickle is the point (one byte per 40 ms, well within any per-read timeout). The whole head would take
// ~9 s to arrive, so a cut-off well before that is the request timeout (300 ms) with room for a loaded machine.
TEST(LoopHttpServerTest, SlowHeadersAreCutOffAtTheRequestTimeout) {
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, EchoPath, 300).value();
  RawConnection c(server->port());
  auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  for (char ch : "GET /x HTTP/1.1\r\nHost: slow\r\nX-A: " + std::string(180, 'b') + "\r\n") {
    if (!c.Send(std::string(1, ch))) {
      closed = true;
      break;
    }
    std::this_thread::sleep_for(40ms);
  }
  closed = closed || c.WaitClosed(2000);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5000ms);
}

// An answer larger than the socket buffers, read at the client's pace for several request timeouts: the
// keep-alive deadline (a kept-alive connection) or the request's own, never reset (an answer that closes the
// connection), cut it off part way while the client was still reading it. A client that reads nothing is still
// closed. (One that trickles is closed once the kernel's buffers between the two ends are full: what leaves
// the process is all the server sees; it then still gets what those buffers hold, at its own pace.)
TEST(LoopHttpServerTest, AnAnswerReadSlowlyIsWrittenWholePastTheTimeouts) {
  const std::string big(24 << 20, 'r');
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, [&](HttpExchange& ex) { ex.Respond(200, "text/plain", big); },
                                      500).value();
  // Whether `got` holds the whole answer: the head's end is near the start, so this stays cheap per read.
  auto whole = [&](const std::string& got) {
    if (got.size() < big.size()) return false;
    size_t head = got.find("\r\n\r\n");
    return head != std::string::npos && got.size() - head - 4 >= big.size();
  };
  for (const std::string extra : {"", "Connection: close\r\n"}) {
    RawConnection c(server->port());
    ASSERT_TRUE(c.Send(Get("/big", extra)));
    size_t calls = 0;
    const auto t0 = std::chrono::steady_clock::now();
    std::string got = c.ReadUntil([&](const std::string& so_far) {
      if (++calls % 16 == 0) std::this_thread::sleep_for(5ms);  // at most about 12 MB/s
      return whole(so_far);
    }, 60000);
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(whole(got)) << "cut off after " << got.size() << " bytes, "
                            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
    EXPECT_GT(took, 1000ms) << "read faster than two timeouts: proves nothing";
  }
  RawConnection stalled(server->port());
  ASSERT_TRUE(stalled.Send(Get("/big")));
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(stalled.WaitClosed(3000));
}

TEST(LoopHttpServerTest, StopWaitsForAnswersInFlight) {
  std::shared_ptr<HttpExchange> held;
  std::promise<void> taken;
  auto fast = [&](const std::shared_ptr<HttpExchange>& ex) {
    held = ex;
    taken.set_value();
    return true;
  };
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, EchoPath, 5000, fast).value();
  RawConnection c(server->port());
  c.Send(Post("/held", "{}"));
  taken.get_future().wait();
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    server->Stop();
    stopped = true;
  });
  // Letting time pass is the point: Stop must not return while the request is unanswered, however long.
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(stopped.load()) << "Stop returned while a request was still unanswered";
  held->Respond(202, "text/plain", "late");
  std::string answer = c.ReadResponse(10000);
  stopper.join();
  EXPECT_EQ(BodyOf(answer), "late");
}

// A server whose every answer is 8 MiB (more than the socket buffers take) and a client that asked for one
// 300 ms ago: most of the answer waits in the server's write queue.
struct QueuedBigAnswer {
  explicit QueuedBigAnswer(int64_t request_timeout_ms)
      : server(LoopHttpServer::Start("127.0.0.1:0", 2, [this](HttpExchange& ex) {
          ++runs;
          ex.Respond(200, "text/plain", big);
        }, request_timeout_ms).value()),
        client(server->port()) {
    EXPECT_TRUE(client.Send(Get("/big")));
    std::this_thread::sleep_for(300ms);
  }
  // The bytes of the body in what the client read (npos without a whole head).
  static size_t BodyBytes(const std::string& got) {
    size_t head = got.find("\r\n\r\n");
    return head == std::string::npos ? std::string::npos : got.size() - head - 4;
  }

  const std::string big = std::string(8 << 20, 's');
  std::atomic<int> runs{0};
  std::unique_ptr<LoopHttpServer> server;
  RawConnection client;
};

// An answer already handed to the socket but not yet taken by the client when Stop is called is written whole
// before the connection closes: Stop closed every connection not waiting on a handler, and closing a handle
// cancels its queued writes (a large row read just before SIGTERM arrived cut short).
TEST(LoopHttpServerTest, StopFinishesWritingAnAnswerTheClientIsStillReading) {
  QueuedBigAnswer q(5000);
  std::thread stopper([&] { q.server->Stop(); });
  std::this_thread::sleep_for(100ms);
  std::string got = q.client.ReadUntil([&](const std::string& so_far) {
    size_t body = QueuedBigAnswer::BodyBytes(so_far);
    return body != std::string::npos && body >= q.big.size();
  }, 10000);
  stopper.join();
  ASSERT_NE(QueuedBigAnswer::BodyBytes(got), std::string::npos) << got.substr(0, 200);
  EXPECT_EQ(QueuedBigAnswer::BodyBytes(got), q.big.size()) << "the answer was cut off by Stop";
}

// A request that arrives on that connection after Stop is not run: its answer would be lost with the
// connection, and a client without an idempotency key could not tell that it was applied.
TEST(LoopHttpServerTest, ARequestArrivingWhileStopFinishesAnAnswerIsNotRun) {
  QueuedBigAnswer q(5000);
  std::thread stopper([&] { q.server->Stop(); });
  std::this_thread::sleep_for(100ms);
  q.client.Send(Get("/second"));  // may fail once the server closed its reading side
  std::string got = q.client.ReadUntilClosed(10000);
  stopper.join();
  EXPECT_EQ(q.runs.load(), 1) << "a request read after Stop was run";
  ASSERT_NE(QueuedBigAnswer::BodyBytes(got), std::string::npos);
  EXPECT_GE(QueuedBigAnswer::BodyBytes(got), q.big.size()) << "the first answer was cut off";
}

// A client that reads nothing of its answer holds Stop only for the grace it is given, not for the request
// timeout (or, reading a little now and then, for ever).
TEST(LoopHttpServerTest, StopGivesUpAnAnswerTheClientDoesNotReadPastTheGrace) {
  QueuedBigAnswer q(60000);
  const auto t0 = std::chrono::steady_clock::now();
  q.server->Stop(300);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "Stop waited on a client that reads nothing";
}

// A guest shares the loop thread (ingest hosts its fast path's Redis connection there): it starts there
// before the first request, the fast handler reaches it on the same thread, and the server ends only once
// on_finish has closed its handle (a repeating timer here, which would keep the loop alive for good).
TEST(LoopHttpServerTest, AGuestLivesOnTheLoopThreadAndIsClosedWhenTheServerFinishes) {
  uv_timer_t guest_timer;
  std::thread::id guest_thread;
  std::atomic<bool> finished{false};
  LoopGuest guest;
  guest.on_start = [&](uv_loop_s* loop) {
    guest_thread = std::this_thread::get_id();
    uv_timer_init(loop, &guest_timer);
    uv_timer_start(&guest_timer, [](uv_timer_t*) {}, 10, 10);
  };
  guest.on_finish = [&] {
    finished = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&guest_timer), nullptr);
  };
  auto fast = [&](const std::shared_ptr<HttpExchange>& ex) {
    ex->Respond(200, "text/plain", std::this_thread::get_id() == guest_thread ? "same" : "other");
    return true;
  };
  auto server = LoopHttpServer::Start("127.0.0.1:0", 1, EchoPath, 5000, fast, std::move(guest)).value();
  RawConnection c(server->port());
  ASSERT_TRUE(c.Send(Post("/x", "{}")));
  EXPECT_EQ(BodyOf(c.ReadResponse(5000)), "same");
  EXPECT_FALSE(finished.load());
  std::promise<void> stop_returned;
  std::future<void> returned = stop_returned.get_future();
  std::thread stopper([&] {
    server->Stop();
    stop_returned.set_value();
  });
  if (returned.wait_for(10s) != std::future_status::ready) {
    // A hung Stop cannot be joined (nor can std::async's future be dropped): end the binary with the reason
    // instead of waiting for ctest's timeout, which would say nothing about why.
    std::fprintf(stderr, "FAILED: LoopHttpServer::Stop hung: the guest's handle kept the loop alive\n");
    std::abort();
  }
  stopper.join();
  EXPECT_TRUE(finished.load());
}

}  // namespace
}  // namespace streamfleet::testing
