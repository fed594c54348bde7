// Malformed HTTP against a real ingest, over raw TCP sockets (libcurl would not send these): each gets a
// clear answer or a closed connection, writes nothing to Redis, and the server keeps serving.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "streamfleet/redis/redis.h"
#include "support/ingest_harness.h"
#include "support/raw_http.h"
#include "support/wait.h"
#include "streamfleet/testing/chunk_envelope.h"
#include "streamfleet/testing/redis_server.h"

namespace streamfleet::testing {
namespace {

using Clk = std::chrono::steady_clock;

class MalformedHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new RedisServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    redis_ = RedisClient::Connect(server_->config()).value();
    ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
  }
  // Chunks in the stream (a request's chunks share one entry).
  int64_t StreamLength() {
    return static_cast<int64_t>(testing::ChunksInStream(*redis_, "streamfleet:chunks:0").size());
  }
  int64_t Keys() { return redis_->Command({"DBSIZE"})->integer; }
  // A well-formed request still succeeds: the server survived whatever came before.
  void ExpectStillServing(IngestHarness& ingest) {
    auto r = ingest.Post("/v1/orgs/9/generations/9/chunks", R"({"data": "still serving"})");
    EXPECT_EQ(r.status, 202) << r.body << r.error;
  }
  // The answer to `request` sent as two writes, cut at `cut`, with a pause between them so that the second part
  // normally arrives in a read of its own. (A loaded server may still read both at once; what is refused must
  // be refused either way, which is what the callers assert.)
  static std::string AnswerInTwoReads(IngestHarness& ingest, const std::string& request, size_t cut) {
    RawConnection conn(ingest.port());
    EXPECT_TRUE(conn.Send(std::string_view(request).substr(0, cut)));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(conn.Send(std::string_view(request).substr(cut)));
    conn.CloseWrite();
    return conn.ReadUntilClosed(3000);
  }
  static std::string ChunkPost(const std::string& extra_headers, const std::string& body) {
    return "POST /v1/orgs/1/generations/1/chunks HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" +
           extra_headers + "\r\n" + body;
  }

  inline static RedisServer* server_ = nullptr;
  std::unique_ptr<RedisClient> redis_;
};

TEST_F(MalformedHttpTest, TruncatedRequestsWriteNothing) {
  IngestHarness ingest(server_->port());
  // Headers cut off mid-line, then the client half-closes: civetweb answers 400 without calling a handler.
  std::string cut = RawExchange(ingest.port(), "POST /v1/orgs/1/generations/1/chunks HTTP/1.1\r\nHost: t\r\nCont");
  EXPECT_TRUE(StatusOf(cut) == 400 || StatusOf(cut) == 0) << cut;
  // A body shorter than its Content-Length.
  std::string short_body = RawExchange(ingest.port(), ChunkPost("Content-Length: 100\r\n", R"({"data": "cut)"));
  int status = StatusOf(short_body);
  EXPECT_TRUE(status == 0 || status == 400) << short_body;
  // An NDJSON stream cut in the middle of its third line: the two complete lines are durable (and reported
  // when the client is still there to read it), the partial line is not applied.
  std::string ndjson = "POST /v1/orgs/1/generations/2/chunks HTTP/1.1\r\nHost: t\r\n"
                       "Content-Type: application/x-ndjson\r\nContent-Length: 500\r\n\r\n"
                       "{\"seq\": 0, \"data\": \"a\"}\n{\"seq\": 1, \"data\": \"b\"}\n{\"seq\": 2, \"da";
  std::string answer = RawExchange(ingest.port(), ndjson);
  EXPECT_EQ(StatusOf(answer), 400) << answer;
  auto j = nlohmann::json::parse(BodyOf(answer), nullptr, false);
  EXPECT_EQ(j.value("error", ""), "bad_body") << answer;
  EXPECT_EQ(j.value("accepted", -1), 2) << answer;
  EXPECT_EQ(StreamLength(), 2) << "only the complete lines";
  ExpectStillServing(ingest);
}

TEST_F(MalformedHttpTest, HugeHeadersAreRefusedAndTheServerKeepsServing) {
  IngestHarness ingest(server_->port());
  std::string huge = ChunkPost("X-Padding: " + std::string(64 * 1024, 'a') + "\r\nContent-Length: 13\r\n",
                               R"({"data": "x"})");
  std::string answer = RawExchange(ingest.port(), huge);
  int status = StatusOf(answer);
  // civetweb answers 413 or 431 for a request head over its 16 KiB limit, or drops the connection.
  EXPECT_TRUE(status == 0 || status == 413 || status == 431 || status == 400) << answer.substr(0, 200);
  std::string many;
  for (int i = 0; i < 200; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";  // more than civetweb's 64
  answer = RawExchange(ingest.port(), ChunkPost(many + "Content-Length: 13\r\n", R"({"data": "x"})"));
  status = StatusOf(answer);
  EXPECT_TRUE(status == 0 || status == 400 || status == 413 || status == 431) << answer.substr(0, 200);
  EXPECT_EQ(Keys(), 0);
  ExpectStillServing(ingest);
}

TEST_F(MalformedHttpTest, BadChunkedEncodingIsA400AndWritesNothing) {
  IngestHarness ingest(server_->port());
  // Not hexadecimal chunk sizes: refused with the head when they come in its read (RequestFramingScanner),
  // by the handler's body read otherwise.
  std::string answer = RawExchange(ingest.port(), ChunkPost("Transfer-Encoding: chunked\r\n", "zz\r\n{\"data\": \"x\"}\r\n0\r\n\r\n"));
  EXPECT_TRUE(StatusOf(answer) == 400 || StatusOf(answer) == 0) << answer;
  if (StatusOf(answer) == 400) {
    const std::string error = nlohmann::json::parse(BodyOf(answer), nullptr, false).value("error", "");
    EXPECT_TRUE(error == "bad_request" || error == "bad_body") << answer;
  }
  // A chunk longer than its declared size, on the streamed (NDJSON) path.
  std::string nd = "POST /v1/orgs/1/generations/3/chunks HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"data\": \"abcdefgh\"}\n\r\n0\r\n\r\n";
  answer = RawExchange(ingest.port(), nd);
  EXPECT_TRUE(StatusOf(answer) == 400 || StatusOf(answer) == 0) << answer;
  // A chunk size so large it would overflow.
  answer = RawExchange(ingest.port(), ChunkPost("Transfer-Encoding: chunked\r\n", "ffffffffffffffffff\r\nx\r\n"));
  EXPECT_NE(StatusOf(answer), 202) << answer;
  EXPECT_NE(StatusOf(answer), 500) << answer;
  EXPECT_EQ(StreamLength(), 0);
  ExpectStillServing(ingest);
}

// http_parser 2.9 is lenient where a proxy in front of the server may not be: a request it would frame
// differently from such a proxy (request smuggling) is refused with 400 before any handler sees it. http_parser
// alone accepted each of these (202).
TEST_F(MalformedHttpTest, AmbiguouslyFramedRequestsAreRefused) {
  IngestHarness ingest(server_->port());
  const std::string json = R"({"data": "x"})";  // 13 bytes
  const std::string chunked = "d\r\n" + json + "\r\n0\r\n\r\n";
  struct Case {
    std::string request, detail;
  };
  const Case cases[] = {
      // Chunked to http_parser, which forgives the space; a proxy that does not sees no body and takes the
      // chunks for the next request.
      {ChunkPost("Transfer-Encoding : chunked\r\n", chunked),
       "header name \"Transfer-Encoding \" is not an RFC 9110 token"},
      {ChunkPost("X-Note: a\r\n continued\r\nContent-Length: 13\r\n", json), "obs-fold"},
      {ChunkPost("X-Note: a\r\n\tcontinued\r\nContent-Length: 13\r\n", json), "obs-fold"},
      {ChunkPost("Transfer-Encoding: gzip, chunked\r\n", chunked),
       "Transfer-Encoding \"gzip, chunked\" is not supported"},
      {ChunkPost("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked),
       "more than one Transfer-Encoding header"},
      // Chunked framing the parser forgives: a bare LF inside a chunk extension (a proxy ending the size line
      // there reads the rest as data), any byte taken for the LF after a size line's CR, any two bytes taken
      // for the CRLF after chunk data, a trailer line ending in a bare LF.
      {ChunkPost("Transfer-Encoding: chunked\r\n", "d;x\n\r\n" + json + "\r\n0\r\n\r\n"), "chunk extension"},
      {ChunkPost("Transfer-Encoding: chunked\r\n", "d\rX" + json + "\r\n0\r\n\r\n"),
       "chunk-size line not ending in CRLF"},
      {ChunkPost("Transfer-Encoding: chunked\r\n", "d\r\n" + json + "XX0\r\n\r\n"),
       "chunk data not followed by CRLF"},
      {ChunkPost("Transfer-Encoding: chunked\r\n", "d\r\n" + json + "\r\n0\r\nX-T: 1\n\r\n"),
       "trailer line ending in a bare LF"},
  };
  for (const Case& c : cases) {
    std::string answer = RawExchange(ingest.port(), c.request);
    EXPECT_EQ(StatusOf(answer), 400) << c.request << "\n" << answer;
    auto j = nlohmann::json::parse(BodyOf(answer), nullptr, false);
    EXPECT_EQ(j.value("error", ""), "bad_request") << answer;
    EXPECT_NE(j.value("detail", "").find(c.detail), std::string::npos) << answer;
  }
  EXPECT_EQ(StreamLength(), 0);
  EXPECT_EQ(Keys(), 0);
  ExpectStillServing(ingest);
}

// The fold is found on the raw bytes of the head, also when the folded line arrives in a read of its own.
TEST_F(MalformedHttpTest, ObsFoldIsRefusedAcrossReadBoundaries) {
  IngestHarness ingest(server_->port());
  std::string request = ChunkPost("X-Note: a\r\n continued\r\nContent-Length: 13\r\n", R"({"data": "x"})");
  std::string answer = AnswerInTwoReads(ingest, request, request.find("\r\n continued") + 2);
  EXPECT_EQ(StatusOf(answer), 400) << answer;
  EXPECT_NE(BodyOf(answer).find("obs-fold"), std::string::npos) << answer;
  EXPECT_EQ(StreamLength(), 0);
}

// A CR not followed by LF in the head: the parser (not built strict) takes it as a line end where a proxy in
// front may not, so the two would see different headers. Refused, also when the CR ends a read.
TEST_F(MalformedHttpTest, ABareCrInTheHeadIsRefusedAcrossReadBoundaries) {
  IngestHarness ingest(server_->port());
  std::string request = ChunkPost("X-A: 1\rX-B: 2\r\nContent-Length: 13\r\n", R"({"data": "x"})");
  std::string answer = AnswerInTwoReads(ingest, request, request.find("1\r") + 2);  // cut after the bare CR
  EXPECT_EQ(StatusOf(answer), 400) << answer;
  EXPECT_NE(BodyOf(answer).find("bare CR"), std::string::npos) << answer;
  EXPECT_EQ(StreamLength(), 0);
  ExpectStillServing(ingest);
}

// Chunk data whose CRLF is wrong, arriving after the request went to its handler (a read of its own): the
// handler's body read fails and it answers 400; nothing is written.
TEST_F(MalformedHttpTest, BadChunkFramingAfterTheHeadIsRefusedToo) {
  IngestHarness ingest(server_->port());
  std::string request = ChunkPost("Transfer-Encoding: chunked\r\n", "d\r\n{\"data\": \"x\"}XX0\r\n\r\n");
  std::string answer = AnswerInTwoReads(ingest, request, request.find("\r\n\r\n") + 4);
  EXPECT_EQ(StatusOf(answer), 400) << answer;
  EXPECT_EQ(StreamLength(), 0);
  ExpectStillServing(ingest);
}

TEST_F(MalformedHttpTest, ChunkedUploadsStillWork) {
  IngestHarness ingest(server_->port());
  const std::string chunked = "d\r\n{\"data\": \"x\"}\r\n0\r\n\r\n";
  for (const char* te : {"Transfer-Encoding: chunked\r\n", "transfer-encoding: Chunked \r\n"}) {
    std::string answer = RawExchange(ingest.port(), ChunkPost(te, chunked));
    EXPECT_EQ(StatusOf(answer), 202) << te << answer;
  }
  // Well-formed extensions (with BWS and a quoted value) and trailers are framing too, and accepted.
  for (const char* body : {"d;a=1\r\n{\"data\": \"x\"}\r\n0\r\n\r\n", "d ; a=\"b c\"\r\n{\"data\": \"x\"}\r\n0;e\r\n\r\n",
                           "d\r\n{\"data\": \"x\"}\r\n0\r\nX-Trailer: 1\r\n\r\n"}) {
    std::string answer = RawExchange(ingest.port(), ChunkPost("Transfer-Encoding: chunked\r\n", body));
    EXPECT_EQ(StatusOf(answer), 202) << body << answer;
  }
  // Two pipelined requests on one connection: the second head is checked as strictly as the first.
  RawConnection conn(ingest.port());
  ASSERT_TRUE(conn.Send(ChunkPost("Transfer-Encoding: chunked\r\n", chunked) +
                        ChunkPost("X-Note: a\r\n continued\r\nContent-Length: 13\r\n", R"({"data": "y"})")));
  EXPECT_EQ(StatusOf(conn.ReadResponse(3000)), 202);
  EXPECT_EQ(StatusOf(conn.ReadResponse(3000)), 400);
  EXPECT_EQ(StreamLength(), 6);
}

// A slowloris client trickles its headers; it holds one worker thread until INGEST_REQUEST_TIMEOUT, then is
// cut off. Meanwhile other clients are served as usual. The bounds leave room for a loaded machine: a normal
// request held behind the slow client would wait the whole timeout (2s), so it must take less than half of
// it; and the slow client must be cut off well before its whole header (~27s at one byte per 100ms).
TEST_F(MalformedHttpTest, SlowlorisIsCutOffAndDoesNotBlockOthers) {
  IngestHarness ingest(server_->port(), {{"INGEST_REQUEST_TIMEOUT", "2s"}, {"INGEST_THREADS", "4"}});
  RawConnection slow(ingest.port());
  std::atomic<bool> closed{false};
  auto started = Clk::now();
  std::thread trickle([&] {
    std::string head = "POST /v1/orgs/1/generations/1/chunks HTTP/1.1\r\nHost: t\r\nX-Slow: " + std::string(200, 's');
    for (char c : head) {
      if (!slow.Send(std::string_view(&c, 1))) {
        closed = true;
        return;
      }
      // Trickling is the point: one byte per 100ms, well within any per-read timeout.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (Clk::now() - started > std::chrono::seconds(12)) return;
    }
  });
  for (int i = 0; i < 20; ++i) {
    auto t0 = Clk::now();
    auto r = ingest.Post("/v1/orgs/2/generations/" + std::to_string(i + 1) + "/chunks", R"({"data": "fast"})");
    EXPECT_EQ(r.status, 202) << r.body << r.error;
    EXPECT_LT(Clk::now() - t0, std::chrono::milliseconds(1000)) << "a normal request waited on the slow client";
  }
  bool cut = slow.WaitClosed(10000);
  trickle.join();
  auto held = Clk::now() - started;
  EXPECT_TRUE(cut || closed) << "the slow client was never cut off";
  EXPECT_LT(held, std::chrono::seconds(8)) << "cut off near INGEST_REQUEST_TIMEOUT (2s), not after the whole header";
  EXPECT_EQ(StreamLength(), 20);
}

// A small body (buffered on the HTTP loop, its token checked once it is complete) trickled a byte at a time
// used to push the deadline on with each byte: a client without a token held its connection slot for ever
// (thousands of them, every slot). The whole body now has INGEST_REQUEST_TIMEOUT from the end of the head.
TEST_F(MalformedHttpTest, ATrickledSmallBodyIsCutOffAtTheRequestTimeout) {
  IngestHarness ingest(server_->port(), {{"INGEST_REQUEST_TIMEOUT", "2s"}});
  RawConnection slow(ingest.port());
  const std::string body(100, 'x');
  ASSERT_TRUE(slow.Send("POST /v1/orgs/1/generations/1/chunks HTTP/1.1\r\nHost: t\r\nContent-Type: "
                        "application/json\r\nContent-Length: 100\r\n\r\n"));
  const auto started = Clk::now();
  std::atomic<bool> cut{false};
  std::thread trickle([&] {
    for (char c : body) {
      // One byte per 300 ms: each well within the timeout, the whole body (30 s) far beyond it.
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      if (!slow.Send(std::string_view(&c, 1)) || Clk::now() - started > std::chrono::seconds(12)) {
        cut = true;
        return;
      }
    }
  });
  std::string answer = slow.ReadResponse(12000);
  const auto held = Clk::now() - started;
  trickle.join();
  EXPECT_EQ(StatusOf(answer), 400) << answer;
  EXPECT_LT(held, std::chrono::seconds(8)) << "cut off near INGEST_REQUEST_TIMEOUT (2s), not after the whole body";
  EXPECT_EQ(StreamLength(), 0);
}

// A streamed upload holds a worker thread while its body lasts, and may trickle legitimately (an LLM's deltas
// relayed as they come). One organization's slow uploads once held every worker: another organization's
// streamed uploads and progress reads waited for INGEST_REQUEST_TIMEOUT. Now an organization holds at most
// INGEST_ORG_MAX_WORKERS (by default all but an eighth, at least one: 3 of 4 here) and its next request is
// answered 429 at once.
TEST_F(MalformedHttpTest, OneOrganizationsSlowUploadsLeaveWorkersForTheOthers) {
  IngestHarness ingest(server_->port(), {{"INGEST_THREADS", "4"}, {"INGEST_REQUEST_TIMEOUT", "20s"}});
  auto head = [](int org, int gen) {
    return "POST /v1/orgs/" + std::to_string(org) + "/generations/" + std::to_string(gen) +
           "/chunks HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";
  };
  auto chunk = [](const std::string& s) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", s.size());
    return std::string(size) + "\r\n" + s + "\r\n";
  };
  const std::string line = "{\"data\":\"a\"}\n";
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(std::make_unique<RawConnection>(ingest.port()));
    ASSERT_TRUE(slow.back()->Send(head(1, 10 + i) + chunk(line)));  // and then nothing, for now
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the three reach their worker threads
  RawConnection fourth(ingest.port());
  ASSERT_TRUE(fourth.Send(head(1, 13) + chunk(line)));
  std::string refused = fourth.ReadResponse(3000);
  EXPECT_EQ(StatusOf(refused), 429) << refused;
  EXPECT_NE(refused.find("INGEST_ORG_MAX_WORKERS"), std::string::npos) << refused;
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos) << refused;
  // Another organization meanwhile: a streamed upload and a progress read, each on the free worker.
  auto t0 = Clk::now();
  std::string other = RawExchange(ingest.port(), head(2, 20) + chunk(line) + "0\r\n\r\n", 3000);
  EXPECT_EQ(StatusOf(other), 202) << other;
  EXPECT_EQ(ingest.Get("/v1/orgs/2/generations/20/progress").status, 200);
  EXPECT_LT(Clk::now() - t0, std::chrono::milliseconds(2500)) << "waited on the first organization's uploads";
  // The slow uploads were only slow: they end normally.
  for (auto& c : slow) {
    ASSERT_TRUE(c->Send("0\r\n\r\n"));
    EXPECT_EQ(StatusOf(c->ReadResponse(3000)), 202);
  }
  EXPECT_EQ(StreamLength(), 4);
}

// Refused connections are open too while their 503 goes out and the client closes: in a flood, past the cap
// by a tenth (and 16), they are closed at once and unanswered, so they cannot take every descriptor.
TEST_F(MalformedHttpTest, AFloodPastTheCapIsClosedUnanswered) {
  IngestHarness ingest(server_->port(), {{"INGEST_MAX_CONNECTIONS", "3"}});
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 3 + 16; ++i) held.push_back(std::make_unique<RawConnection>(ingest.port()));  // 3 + 0 + 16
  ASSERT_TRUE(testing::WaitUntil([&] { return ingest.service().open_connections() >= 19; }, 3000))
      << ingest.service().open_connections();
  RawConnection flood(ingest.port());
  EXPECT_EQ(flood.ReadUntilClosed(3000), "") << "answered past the flood line";
  EXPECT_TRUE(testing::WaitUntil([&] { return ingest.service().open_connections() <= 19; }, 3000))
      << ingest.service().open_connections();
  held.clear();
  ASSERT_TRUE(testing::WaitUntil([&] { return ingest.service().open_connections() == 0; }, 5000));
  ExpectStillServing(ingest);
}

// Upgrade is not spoken here: such a request is answered as plain HTTP and the connection ends with it. The
// parser flags the upgrade as soon as the head is read; acting on it then cut off a body that came in a later
// read (no answer until INGEST_REQUEST_TIMEOUT, then a 400 for a valid request).
TEST_F(MalformedHttpTest, AnUpgradeRequestIsAnsweredAsPlainHttpWithABodyInALaterRead) {
  IngestHarness ingest(server_->port(), {{"INGEST_REQUEST_TIMEOUT", "20s"}});
  const std::string body = R"({"data": "upgrade ignored"})";
  RawConnection c(ingest.port());
  ASSERT_TRUE(c.Send(ChunkPost("Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: " +
                                   std::to_string(body.size()) + "\r\n",
                               "")));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the body in a read of its own
  ASSERT_TRUE(c.Send(body));
  auto t0 = Clk::now();
  std::string answer = c.ReadResponse(5000);
  EXPECT_EQ(StatusOf(answer), 202) << answer;
  EXPECT_LT(Clk::now() - t0, std::chrono::seconds(3));
  EXPECT_TRUE(c.WaitClosed(3000)) << "the connection ends with the answer";
  EXPECT_EQ(StreamLength(), 1);
  // A body-less upgrade request (curl --http2 sends Upgrade: h2c) is answered too.
  std::string probe = RawExchange(ingest.port(), "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, "
                                                 "HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n");
  EXPECT_EQ(StatusOf(probe), 200) << probe;
  ExpectStillServing(ingest);
}

// A duplicate key longer than the 64 bytes the refusal quotes, cut inside a UTF-8 character: the line is
// refused with 400 and what was accepted before it (its quote made dump() throw: a 500 without either).
TEST_F(MalformedHttpTest, ADuplicateLongNonAsciiKeyIsA400WithWhatWasAccepted) {
  IngestHarness ingest(server_->port());
  std::string key = "a";
  for (int i = 0; i < 40; ++i) key += "\xc3\xa9";  // é: 81 bytes, the 64th byte inside a character
  const std::string ndjson = "{\"data\":\"first\"}\n{\"data\":\"x\",\"" + key + "\":1,\"" + key + "\":2}\n";
  auto r = ingest.Post("/v1/orgs/1/generations/5/chunks", ndjson, "application/x-ndjson");
  EXPECT_EQ(r.status, 400) << r.body;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.body;
  EXPECT_EQ(j.value("error", ""), "malformed_line") << r.body;
  EXPECT_EQ(j.value("accepted", -1), 1) << r.body;
  EXPECT_EQ(j.value("line", -1), 2) << r.body;
  EXPECT_EQ(StreamLength(), 1);
}

// Every connection holds a file descriptor and memory: past INGEST_MAX_CONNECTIONS a new one is answered 503
// too_many_connections and closed, and counted; once a connection closes, a new one is served again.
TEST_F(MalformedHttpTest, ConnectionsPastTheCapAreAnswered503AndTheRestServed) {
  IngestHarness ingest(server_->port(), {{"INGEST_MAX_CONNECTIONS", "3"}});
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(std::make_unique<RawConnection>(ingest.port()));
  // The three are accepted (and counted) before the fourth arrives: accepts are handled in order.
  {
    RawConnection fourth(ingest.port());
    std::string refused = fourth.ReadUntilClosed(3000);
    EXPECT_EQ(StatusOf(refused), 503) << refused;
    EXPECT_NE(refused.find("too_many_connections"), std::string::npos) << refused;
    EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos) << refused;
    EXPECT_NE(refused.find("Connection: close"), std::string::npos) << refused;
  }
  // The connections inside the cap are served.
  const std::string body = R"({"data": "served"})";
  const std::string post = ChunkPost("Content-Length: " + std::to_string(body.size()) + "\r\n", body);
  ASSERT_TRUE(idle[0]->Send(post));
  EXPECT_EQ(StatusOf(idle[0]->ReadResponse(3000)), 202);
  double counted = 0;
  for (const auto& f : ingest.registry().Collect()) {
    if (f.name != "streamfleet_ingest_rejections_total") continue;
    for (const auto& m : f.metric) {
      if (!m.label.empty() && m.label[0].value == "too_many_connections") counted = m.counter.value;
    }
  }
  EXPECT_EQ(counted, 1);
  // One closes: a new connection is served.
  idle.pop_back();
  ASSERT_TRUE(testing::WaitUntil([&] { return ingest.service().open_connections() <= 2; }, 3000));
  std::string served = RawExchange(ingest.port(), post);
  EXPECT_EQ(StatusOf(served), 202) << served;
  EXPECT_EQ(StreamLength(), 2);
}

// JSON text is UTF-8: a body with other bytes is refused with the offset of the first bad byte, on every
// body format, before anything from it is written.
TEST_F(MalformedHttpTest, NonUtf8BodiesAreRefusedWithTheByteOffset) {
  IngestHarness ingest(server_->port());
  std::string body = std::string(R"({"data": "ok )") + "\xff\xfe" + "\"}";
  auto r = ingest.Post("/v1/orgs/1/generations/1/chunks", body);
  EXPECT_EQ(r.status, 400) << r.body;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  EXPECT_EQ(j.value("error", ""), "invalid_utf8");
  EXPECT_EQ(j.value("offset", -1), 13);
  // A truncated multi-byte character (the first two bytes of "€") is just as invalid.
  r = ingest.Post("/v1/orgs/1/generations/1/chunks", std::string(R"({"data": ")") + "\xe2\x82" + "\"}");
  EXPECT_EQ(nlohmann::json::parse(r.body, nullptr, false).value("offset", -1), 10) << r.body;

  std::string nd = "{\"data\": \"fine\"}\n{\"data\": \"x\xc3\"}\n{\"data\": \"never\"}\n";
  r = ingest.Post("/v1/orgs/1/generations/2/chunks", nd, "application/x-ndjson");
  EXPECT_EQ(r.status, 400) << r.body;
  j = nlohmann::json::parse(r.body, nullptr, false);
  EXPECT_EQ(j.value("error", ""), "invalid_utf8");
  EXPECT_EQ(j.value("line", -1), 2);
  EXPECT_EQ(j.value("offset", -1), 17 + 11);
  EXPECT_EQ(j.value("accepted", -1), 1) << "the line before is durable";

  std::string sse = "data: {\"choices\":[{\"delta\":{\"content\":\"\xc0\xaf\"}}]}\n\n";  // overlong '/'
  r = ingest.Post("/v1/orgs/1/generations/3/chunks", sse, "text/event-stream");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body, nullptr, false).value("error", ""), "invalid_utf8");

  r = ingest.Post("/v1/orgs/1/generations", std::string(R"({"instruction": {"content": ")") + "\xff\"}}");
  EXPECT_EQ(r.status, 400) << r.body;
  // U+0000 in what goes into the row's metadata (PostgreSQL's jsonb refuses it: generation.run failed every
  // attempt after a 202, and the generation never got a row), however deep in the initiator.
  for (const std::string body : {R"({"instruction": {"content": "a\u0000b"}})",
                                 R"({"instruction": {"content": "a"}, "initiator": {"user": {"name": "x\u0000"}}})",
                                 R"({"instruction": {"content": "a"}, "initiator": {"k\u0000": 1}})"}) {
    r = ingest.Post("/v1/orgs/1/generations", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_NE(r.body.find("U+0000"), std::string::npos) << r.body;
  }
  // Bytes that are not UTF-8 in an id (%FF decodes to 0xFF) are a 400 naming the id, never a 500.
  r = ingest.Post("/v1/orgs/%FF/generations/1/chunks", R"({"data": "x"})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body, nullptr, false).value("error", ""), "invalid_id") << r.body;
  EXPECT_EQ(StreamLength(), 1) << "only the NDJSON line before the bad one";
  ExpectStillServing(ingest);
}

TEST_F(MalformedHttpTest, OversizedLinesAndDeltasAnswer413) {
  IngestHarness ingest(server_->port(), {{"INGEST_MAX_CHUNK_BYTES", "100"}});
  // An NDJSON line that never ends: cut off once it passes what any chunk of the limit could need.
  auto r = ingest.Post("/v1/orgs/1/generations/1/chunks", "{\"data\": \"" + std::string(20000, 'x'),
                       "application/x-ndjson");
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body, nullptr, false).value("error", ""), "chunk_too_large");
  std::string sse = "data: {\"choices\":[{\"delta\":{\"content\":\"" + std::string(101, 'y') + "\"}}]}\n\n";
  r = ingest.Post("/v1/orgs/1/generations/2/chunks", sse, "text/event-stream");
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(StreamLength(), 0);
  ExpectStillServing(ingest);
}

}  // namespace
}  // namespace streamfleet::testing
