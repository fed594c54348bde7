// Streamed answers on LoopHttpServer (HttpExchange::StartStream, streamfleet/http/http_exchange.h) over real
// sockets: chunks written from another thread after the handler returned, the end of the body, a client
// that goes away (the writer sees `closed`), a client that does not read (`buffered` grows, memory stays
// bounded by what the writer allows), writes held by an HttpWriteBatch, and Stop ending every stream with a
// complete last chunk. Streams run on a loop of their own (src/http_stream_loop.h): their events flow while the
// requests' loop is busy, a stream whose client left before its head is closed for its writer, and an ended
// stream whose client reads nothing is closed after HttpStreamLoop::kEndFlushMs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "../src/http_stream_loop.h"
#include "streamfleet/http/loop_http_server.h"
#include "support/raw_http.h"
#include "support/wait.h"

namespace streamfleet::testing {
namespace {

using namespace std::chrono_literals;

// Keeps the streams the handler opened, for the test to write to from its own thread.
struct Streams {
  std::mutex mu;
  std::vector<std::shared_ptr<HttpStream>> all;
  void Add(std::shared_ptr<HttpStream> s) {
    std::lock_guard<std::mutex> lock(mu);
    all.push_back(std::move(s));
  }
  std::shared_ptr<HttpStream> At(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    return i < all.size() ? all[i] : nullptr;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return all.size();
  }
};

std::unique_ptr<LoopHttpServer> StreamingServer(Streams& streams) {
  return LoopHttpServer::Start("127.0.0.1:0", 2, [&](HttpExchange& ex) {
           if (ex.path() != "/stream") {
             ex.Respond(200, "text/plain", "plain");
             return;
           }
           auto s = ex.StartStream(200, "text/event-stream", {{"Cache-Control", "no-store"}});
           ASSERT_NE(s, nullptr);
           ex.Respond(500, "text/plain", "ignored: the stream answered");  // must not reach the client
           streams.Add(std::move(s));
         }).value();
}

// Asks for a stream on c and waits for the handler to have opened it: the stream, or nullptr.
std::shared_ptr<HttpStream> OpenStream(RawConnection& c, Streams& streams) {
  const size_t before = streams.size();
  if (!c.Send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")) return nullptr;
  if (!WaitUntil([&] { return streams.size() > before; })) return nullptr;
  return streams.At(before);
}

// Writes 64 KiB pieces (for at most 10 s) until more than `bound` bytes are buffered: the client reads nothing.
// Returns how many pieces went out.
int WriteUntilBuffered(HttpStream& s, int64_t bound) {
  const std::string piece(64 * 1024, 'x');
  int written = 0;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && s.buffered() <= bound) {
    EXPECT_TRUE(s.Write(piece));
    ++written;
    std::this_thread::sleep_for(1ms);
  }
  return written;
}

TEST(LoopHttpStreamTest, ChunksWrittenLaterFromAnotherThreadReachTheClientThenTheEnd) {
  Streams streams;
  auto server = StreamingServer(streams);
  RawConnection c(server->port());
  ASSERT_TRUE(c.Send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(WaitUntil([&] { return streams.size() == 1; }));
  std::thread writer([&] {
    auto s = streams.At(0);
    EXPECT_TRUE(s->Write("data: one\n\n"));
    EXPECT_TRUE(s->Write(""));  // nothing, and not the end of the body
    EXPECT_TRUE(s->Write("data: two\n\n"));
    s->End();
    EXPECT_FALSE(s->Write("data: after the end\n\n"));
  });
  writer.join();
  std::string raw = c.ReadUntilClosed(5000);
  EXPECT_EQ(StatusOf(raw), 200) << raw;
  EXPECT_NE(raw.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << raw;
  EXPECT_NE(raw.find("Cache-Control: no-store\r\n"), std::string::npos) << raw;
  EXPECT_EQ(BodyOf(raw), "b\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n0\r\n\r\n");
  EXPECT_EQ(raw.find("ignored"), std::string::npos);
  server->Stop();
}

TEST(LoopHttpStreamTest, WritesInABatchWaitForItsEndAndKeepTheirOrder) {
  Streams streams;
  auto server = StreamingServer(streams);
  RawConnection c(server->port());
  auto s = OpenStream(c, streams);
  ASSERT_NE(s, nullptr);
  std::string held;
  {
    HttpWriteBatch outer;
    EXPECT_TRUE(s->Write("data: one\n\n"));
    {
      HttpWriteBatch inner;
      EXPECT_TRUE(s->Write("data: two\n\n"));
    }  // the inner batch's end sends nothing: the outer one holds everything
    EXPECT_TRUE(s->Write("data: three\n\n"));
    EXPECT_GT(s->buffered(), 0) << "held bytes count as buffered: the live hub bounds readers with it";
    s->End();
    held = c.ReadUntilClosed(300);  // the head only: nothing of the batch, and not closed
  }
  std::string rest = c.ReadUntilClosed(5000);
  EXPECT_EQ(StatusOf(held), 200) << held;
  EXPECT_EQ(BodyOf(held), "") << held;
  EXPECT_EQ(rest, "b\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\nd\r\ndata: three\n\n\r\n0\r\n\r\n");
  // A batch on another thread holds only that thread's writes.
  RawConnection c2(server->port());
  auto s2 = OpenStream(c2, streams);
  ASSERT_NE(s2, nullptr);
  HttpWriteBatch not_the_writers;
  std::thread([&] {
    s2->Write("data: free\n\n");
    s2->End();
  }).join();
  EXPECT_EQ(BodyOf(c2.ReadUntilClosed(5000)), "c\r\ndata: free\n\n\r\n0\r\n\r\n");
  server->Stop();
}

TEST(LoopHttpStreamTest, AClientThatGoesAwayClosesTheStreamForItsWriter) {
  Streams streams;
  auto server = StreamingServer(streams);
  {
    RawConnection c(server->port());
    ASSERT_TRUE(c.Send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(WaitUntil([&] { return streams.size() == 1; }));
    ASSERT_TRUE(streams.At(0)->Write("data: x\n\n"));
  }  // closed by the client
  auto s = streams.At(0);
  ASSERT_TRUE(WaitUntil([&] { return s->closed(); })) << "the writer was never told";
  EXPECT_FALSE(s->Write("data: y\n\n"));
  EXPECT_TRUE(WaitUntil([&] { return s->buffered() == 0; }));
  // The server goes on serving.
  EXPECT_EQ(BodyOf(RawExchange(server->port(), "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n")), "plain");
  server->Stop();
}

TEST(LoopHttpStreamTest, AClientThatDoesNotReadShowsAsBufferedBytes) {
  Streams streams;
  auto server = StreamingServer(streams);
  RawConnection c(server->port());
  auto s = OpenStream(c, streams);
  ASSERT_NE(s, nullptr);
  // A writer that stops at its bound (as the live hub does): the client reads nothing, so past the socket
  // buffers the bytes stay counted instead of vanishing into an unbounded queue.
  const int written = WriteUntilBuffered(*s, 1024 * 1024);
  EXPECT_GT(s->buffered(), 1024 * 1024) << "the bytes were not counted while the client did not read";
  std::this_thread::sleep_for(200ms);
  EXPECT_GT(s->buffered(), 0) << "no client read them; they cannot have been written";
  // Reading drains it.
  std::string raw = c.ReadUntilClosed(300);
  EXPECT_TRUE(WaitUntil([&] { return s->buffered() < 1024 * 1024; }));
  EXPECT_GT(written, 10);
  server->Stop();
  EXPECT_TRUE(s->closed());
}

TEST(LoopHttpStreamTest, StopEndsOpenStreamsWithTheLastChunk) {
  Streams streams;
  auto server = StreamingServer(streams);
  RawConnection a(server->port()), b(server->port());
  ASSERT_TRUE(a.Send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(b.Send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(WaitUntil([&] { return streams.size() == 2; }));
  ASSERT_TRUE(streams.At(0)->Write("data: a\n\n"));
  auto started = std::chrono::steady_clock::now();
  server->Stop();  // streams never end by themselves: Stop must not wait for its grace
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  for (RawConnection* c : {&a, &b}) {
    std::string raw = c->ReadUntilClosed(3000);
    EXPECT_EQ(StatusOf(raw), 200);
    EXPECT_NE(raw.find("0\r\n\r\n"), std::string::npos) << raw;
  }
  EXPECT_TRUE(streams.At(0)->closed());
  EXPECT_TRUE(streams.At(1)->closed());
  EXPECT_FALSE(streams.At(1)->Write("late"));
}


TEST(LoopHttpStreamTest, StopEndsStreamsAtOnceWhileARequestIsStillBeingAnswered) {
  Streams streams;
  std::atomic<bool> slow_started{false};
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, [&](HttpExchange& ex) {
                  if (ex.path() == "/slow") {
                    slow_started.store(true);
                    std::this_thread::sleep_for(2s);  // Stop waits for this answer
                    ex.Respond(200, "text/plain", "slow");
                    return;
                  }
                  auto s = ex.StartStream(200, "text/event-stream");
                  ASSERT_NE(s, nullptr);
                  streams.Add(std::move(s));
                }).value();
  RawConnection c(server->port());
  auto s = OpenStream(c, streams);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(StatusOf(c.ReadUntilClosed(300)), 200);
  RawConnection slow(server->port());
  ASSERT_TRUE(slow.Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(WaitUntil([&] { return slow_started.load(); }));
  std::thread stopper([&] { server->Stop(); });
  // The stream's client is told at once, so it reconnects elsewhere instead of waiting out the grace.
  EXPECT_EQ(c.ReadUntilClosed(1000), "0\r\n\r\n");
  EXPECT_TRUE(s->closed());
  EXPECT_EQ(BodyOf(slow.ReadResponse(5000)), "slow");
  stopper.join();
}

TEST(LoopHttpStreamTest, EventsFlowWhileTheRequestLoopIsBusy) {
  Streams streams;
  std::atomic<bool> slow_started{false};
  auto server = LoopHttpServer::Start(
                    "127.0.0.1:0", 2,
                    [&](HttpExchange& ex) {
                      auto s = ex.StartStream(200, "text/event-stream");
                      ASSERT_NE(s, nullptr);
                      streams.Add(std::move(s));
                    },
                    60000,
                    [&](const std::shared_ptr<HttpExchange>& ex) {
                      if (ex->path() != "/slow") return false;
                      slow_started.store(true);
                      std::this_thread::sleep_for(1500ms);  // on the requests' loop thread: it reads nothing meanwhile
                      ex->Respond(200, "text/plain", "slow");
                      return true;
                    })
                    .value();
  RawConnection c(server->port());
  auto s = OpenStream(c, streams);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(StatusOf(c.ReadUntilClosed(300)), 200);
  RawConnection slow(server->port());
  ASSERT_TRUE(slow.Send("POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
  ASSERT_TRUE(WaitUntil([&] { return slow_started.load(); }));
  ASSERT_TRUE(s->Write("data: meanwhile\n\n"));
  EXPECT_EQ(c.ReadUntilClosed(700), "11\r\ndata: meanwhile\n\n\r\n")
      << "the event waited for the requests' loop";
  EXPECT_EQ(BodyOf(slow.ReadResponse(5000)), "slow");
  server->Stop();
}

TEST(LoopHttpStreamTest, AStreamWhoseClientLeftBeforeItsHeadIsClosedForItsWriter) {
  Streams streams;
  std::atomic<bool> client_gone{false};
  auto server = LoopHttpServer::Start("127.0.0.1:0", 2, [&](HttpExchange& ex) {
                  while (!client_gone.load()) std::this_thread::sleep_for(5ms);
                  std::this_thread::sleep_for(100ms);  // the server's loop has seen the close by now
                  auto s = ex.StartStream(200, "text/event-stream");
                  ASSERT_NE(s, nullptr);
                  s->Write("data: early\n\n");  // before the hand-over was refused: dropped with it
                  streams.Add(std::move(s));
                }).value();
  {
    RawConnection c(server->port());
    ASSERT_TRUE(c.Send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
    std::this_thread::sleep_for(50ms);
  }
  client_gone.store(true);
  ASSERT_TRUE(WaitUntil([&] { return streams.size() == 1; }));
  auto s = streams.At(0);
  ASSERT_TRUE(WaitUntil([&] { return s->closed(); })) << "the writer was never told";
  EXPECT_FALSE(s->Write("data: late\n\n"));
  EXPECT_TRUE(WaitUntil([&] { return s->buffered() == 0; })) << "the dropped bytes stayed counted";
  // The next client's stream works (its handler finds client_gone set and opens at once).
  EXPECT_EQ(BodyOf(RawExchange(server->port(), "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")).rfind("d\r\ndata: early", 0), 0u);
  server->Stop();
}

TEST(LoopHttpStreamTest, AnEndedStreamWhoseClientReadsNothingIsClosedAnyway) {
  Streams streams;
  auto server = StreamingServer(streams);
  RawConnection c(server->port());
  auto s = OpenStream(c, streams);
  ASSERT_NE(s, nullptr);
  // Fill the socket buffers and leave more queued on the server than they take.
  WriteUntilBuffered(*s, 512 * 1024);
  ASSERT_TRUE(WaitUntil([&] { return s->buffered() > 256 * 1024; }));
  s->End();
  std::this_thread::sleep_for(std::chrono::milliseconds(HttpStreamLoop::kEndFlushMs) + 1s);
  EXPECT_EQ(s->buffered(), 0) << "what the socket never took is let go with it";
  std::string raw = c.ReadUntilClosed(5000);
  EXPECT_TRUE(c.WaitClosed(100)) << "the server did not close the socket";
  EXPECT_EQ(raw.find("0\r\n\r\n"), std::string::npos) << "the last chunk cannot have come after what was dropped";
  auto started = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

}  // namespace
}  // namespace streamfleet::testing
