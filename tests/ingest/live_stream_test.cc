// The live routes (docs/live.md) in-process, on a single redis-server and, as ingest_cluster_test, on the
// 3+3 cluster (the tail reads each shard's chunk stream on its own master): a subscriber before the first
// chunk, chunks out of order across four chunk streams, the compactor running; the subscriber's text is the
// row's, and the organization's events stream shows the generation's start and compaction.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "compactor/compactor_service.h"
#include "ingest/ingest_service.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/base/keys.h"
#include "streamfleet/base/time.h"
#include "streamfleet/chunks/chunk_writer.h"
#include "streamfleet/chunks/fleet_events.h"
#include "streamfleet/live/signed_link.h"
#include "support/http_client.h"
#include "support/map_env.h"
#include "support/raw_http.h"
#include "support/redis_suite.h"
#include "support/sse_events_of.h"
#include "support/wait.h"

namespace streamfleet::ingest {
namespace {

using testing::SseEventsOf;

// A read's stop condition: the raw answer holds `text`, and the event it is in is complete.
std::function<bool(const std::string&)> HasEventWith(const std::string& text) {
  return [text](const std::string& raw) {
    size_t at = raw.find(text);
    return at != std::string::npos && raw.find("\n\n", at) != std::string::npos;
  };
}

class LiveStreamTest : public testing::RedisSuite<> {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
    std::map<std::string, std::string> env = server_->env();
    env.insert({{"INGEST_LISTEN", "127.0.0.1:0"}, {"CHUNK_STREAMS", "4"}, {"REDIS_TIMEOUT", "2s"}});
    for (const auto& [k, v] : extra_env_) env[k] = v;
    config_ = std::make_unique<Config>(LoadConfig(testing::MapEnv(env), "127.0.0.1:0").value());
    db_ = testing::TempPath("sf-live") + ".db";
    config_->database_url = "sqlite:" + db_;
    config_->consumer_name = "c";
    store_ = SqlStore::Open(config_->database_url).value();
    ASSERT_TRUE(store_->Migrate().ok());
    service_ = std::make_unique<IngestService>(*config_, registry_, store_.get());
    ASSERT_TRUE(service_->Start().ok());
    compactor::LoopOptions lo;
    lo.block_ms = 20;
    compactor_ = std::make_unique<compactor::CompactorService>(*config_, clock_, *store_, registry_, lo);
    compacting_ = std::thread([this] {
      while (!stop_.load()) (void)compactor_->RunOnce(stop_);
    });
  }
  void TearDown() override {
    stop_ = true;
    if (compacting_.joinable()) compacting_.join();
    service_->Stop();
    std::remove(db_.c_str());
  }
  int Post(const std::string& path, const std::string& body, const std::string& type = "application/json") {
    testing::HttpRequest r;
    r.method = "POST";
    r.url = "http://127.0.0.1:" + std::to_string(service_->port()) + path;
    r.body = body;
    r.headers = {"Content-Type: " + type};
    return testing::Send(r).status;
  }

  std::map<std::string, std::string> extra_env_;  // a derived fixture's variables, set in its constructor
  std::unique_ptr<Config> config_;
  prometheus::Registry registry_;
  std::string db_;
  std::unique_ptr<SqlStore> store_;
  std::unique_ptr<IngestService> service_;
  RedisServerClock clock_;
  std::unique_ptr<compactor::CompactorService> compactor_;
  std::atomic<bool> stop_{false};
  std::thread compacting_;
};

TEST_F(LiveStreamTest, ASubscriberGetsTheRowsTextInOrderAndTheOrganizationItsEvents) {
  testing::RawConnection sub(service_->port());
  ASSERT_TRUE(sub.Send("GET /v1/orgs/12/generations/4242/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  testing::RawConnection events(service_->port());
  ASSERT_TRUE(events.Send("GET /v1/orgs/12/events?after=0 HTTP/1.1\r\nHost: t\r\n\r\n"));
  testing::RawConnection other_org(service_->port());
  ASSERT_TRUE(other_org.Send("GET /v1/orgs/13/events?after=0 HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // subscribed before the first chunk
  const std::vector<std::string> texts = {"{\"a\": ", "[1, ", "2]", "}"};
  for (int seq : {2, 0, 3, 1}) {
    nlohmann::json body = {{"seq", seq}, {"data", texts[seq]}, {"final", seq == 3}};
    ASSERT_EQ(Post("/v1/orgs/12/generations/4242/chunks", body.dump()), 202);
  }
  std::string raw = sub.ReadUntilClosed(20000);
  ASSERT_NE(raw.find("HTTP/1.1 200"), std::string::npos) << raw;
  std::string text;
  std::vector<int64_t> seqs;
  std::string last_event;
  for (auto& [event, data] : SseEventsOf(raw)) {
    if (event == "chunk") {
      seqs.push_back(data["seq"].get<int64_t>());
      text += data["text"].get<std::string>();
    }
    last_event = event;
  }
  EXPECT_EQ(seqs, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(last_event, "compacted") << raw;
  auto row = store_->GetGeneration(4242);
  ASSERT_TRUE(row.ok() && row->has_value() && (*row)->compacted);
  EXPECT_EQ(text, *Base64Decode(*(*row)->compacted));

  std::string ev = events.ReadUntil(HasEventWith("event: generation.compacted"), 5000);
  std::vector<std::string> kinds;
  for (auto& [event, data] : SseEventsOf(ev)) {
    EXPECT_EQ(data["organization_id"], 12);
    EXPECT_EQ(data["generation_id"], 4242);
    kinds.push_back(event);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"generation.started", "generation.compacted"})) << ev;
  EXPECT_TRUE(SseEventsOf(other_org.ReadUntilClosed(300)).empty()) << "organization 13 saw organization 12's events";
}

// An NDJSON request's chunks share one chunk-stream entry: the live tail delivers every one of them. The
// compactor is stopped first, so the tail is the only way they can reach the subscriber (no buffer to read).
TEST_F(LiveStreamTest, EveryChunkOfAnNdjsonRequestReachesTheSubscriberFromTheTail) {
  stop_ = true;
  compacting_.join();
  testing::RawConnection sub(service_->port());
  ASSERT_TRUE(sub.Send("GET /v1/orgs/12/generations/4444/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // subscribed before the first chunk
  std::string body, want;
  for (int i = 0; i < 5; ++i) {
    std::string t = "line " + std::to_string(i) + ";";
    body += nlohmann::json{{"data", t}}.dump() + "\n";
    want += t;
  }
  ASSERT_EQ(Post("/v1/orgs/12/generations/4444/chunks", body, "application/x-ndjson"), 202);
  std::string text;
  std::vector<int64_t> seqs;
  for (auto& [event, data] : SseEventsOf(sub.ReadUntil(HasEventWith("line 4;"), 5000))) {
    if (event != "chunk") continue;
    seqs.push_back(data["seq"].get<int64_t>());
    text += data["text"].get<std::string>();
  }
  EXPECT_EQ(seqs, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(text, want);
}

// A producer that starts the text over (generation.run retrying a provider stream from scratch, or after a
// worker died mid-stream: ChunkWriter::Reset) writes seqs from 0 again. A subscriber that was shown the first
// attempt's chunks is sent a reset and then only the new attempt's, whose ids say the attempt, so its text is
// the row's; a reconnect with an id of the first attempt gets the reset too, one with the new attempt's id
// resumes after it. The new attempt's chunks come as one chunk per request and as a batch (NDJSON).
TEST_F(LiveStreamTest, AProducerThatStartsTheTextOverIsShownOnlyTheNewAttempt) {
  const std::string path = "/v1/orgs/12/generations/4545";
  testing::RawConnection sub(service_->port());
  ASSERT_TRUE(sub.Send("GET " + path + "/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // subscribed before the first chunk
  for (const char* t : {"old 0;", "old 1;", "old 2;"}) {
    ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", t}}.dump()), 202);
  }
  std::string first;
  ASSERT_TRUE(testing::WaitUntil([&] {
    first += sub.ReadUntilClosed(200);
    return first.find("old 2;") != std::string::npos;
  })) << first;
  // The compactor applied the first attempt (Reset waits for that), and the producer starts over.
  ChunkWriter writer(*config_);
  const GenerationId gen{12, 0, 4545};
  ASSERT_TRUE(testing::WaitUntil([&] { return writer.Reset(*redis_, gen).ok(); }));
  auto ctl = redis_->Command({"HGET", writer.keys().ControlKey(gen), "attempt"});
  ASSERT_TRUE(ctl.ok());
  EXPECT_EQ(ctl->str, "1");
  ASSERT_EQ(Post(path + "/chunks", "{\"data\":\"new 0;\"}\n{\"data\":\"new 1;\"}\n", "application/x-ndjson"), 202);
  ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", "new 2;"}}.dump()), 202);
  ASSERT_EQ(Post(path + "/finish", nlohmann::json{{"total_chunks", 3}}.dump()), 202);

  std::string rest = sub.ReadUntilClosed(20000);
  std::vector<std::string> kinds;
  std::string text;
  for (auto& [event, data] : SseEventsOf(rest)) {
    kinds.push_back(event == "chunk" ? "chunk " + data["seq"].dump() + "." + data.value("attempt", nlohmann::json(0)).dump()
                                     : event);
    if (event == "reset") {
      EXPECT_EQ(data, nlohmann::json({{"attempt", 1}}));
    }
    if (event == "chunk") text += data["text"].get<std::string>();
  }
  std::erase(kinds, "progress");
  EXPECT_EQ(kinds, (std::vector<std::string>{"reset", "chunk 0.1", "chunk 1.1", "chunk 2.1", "compacted"})) << rest;
  EXPECT_NE(rest.find("id: 1.2\n"), std::string::npos) << "a later attempt's ids name it: " << rest;
  auto row = store_->GetGeneration(4545);
  ASSERT_TRUE(row.ok() && row->has_value() && (*row)->compacted);
  EXPECT_EQ(text, *Base64Decode(*(*row)->compacted));
  EXPECT_EQ(text, "new 0;new 1;new 2;");

  // Reconnects (the buffer is still there after the compaction): the texts and events (but progress) of a
  // stream opened with `query` and `header`.
  auto reopen = [&](const std::string& query, const std::string& header) {
    testing::RawConnection again(service_->port());
    EXPECT_TRUE(again.Send("GET " + path + "/stream" + query + " HTTP/1.1\r\nHost: t\r\n" + header + "\r\n"));
    std::vector<std::string> got;
    for (auto& [event, data] : SseEventsOf(again.ReadUntilClosed(10000))) {
      if (event != "progress") got.push_back(event == "chunk" ? data["text"].get<std::string>() : event);
    }
    return got;
  };
  auto resume = [&](const std::string& last_id) { return reopen("", "Last-Event-ID: " + last_id + "\r\n"); };
  auto from = [&](const std::string& query) { return reopen("?" + query, ""); };
  // With the first attempt's last id, and with the new attempt's id of seq 1.
  EXPECT_EQ(resume("2"), (std::vector<std::string>{"reset", "new 0;", "new 1;", "new 2;", "compacted"}));
  EXPECT_EQ(resume("1.1"), (std::vector<std::string>{"new 2;", "compacted"}));
  // A client's own position: with the attempt it is of, and without (a page from before attempts: it takes
  // the current attempt, as it did then).
  EXPECT_EQ(from("from_seq=2&attempt=0"), (std::vector<std::string>{"reset", "new 0;", "new 1;", "new 2;", "compacted"}));
  EXPECT_EQ(from("from_seq=2&attempt=1"), (std::vector<std::string>{"new 2;", "compacted"}));
  EXPECT_EQ(from("from_seq=2"), (std::vector<std::string>{"new 2;", "compacted"}));
}

// The producer started over and then failed for good before the new attempt's first chunk (generation.run's
// last attempt could not reach the provider): a viewer that was shown the first attempt's chunks is sent the
// reset and then the failure, instead of keep-alives for ever.
TEST_F(LiveStreamTest, AFailureAfterAResetEndsTheStreamsOfTheFirstAttemptsViewers) {
  const std::string path = "/v1/orgs/12/generations/4646";
  testing::RawConnection sub(service_->port());
  ASSERT_TRUE(sub.Send("GET " + path + "/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // subscribed before the first chunk
  ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", "cut short"}}.dump()), 202);
  std::string first = sub.ReadUntil(HasEventWith("cut short"), 5000);
  ASSERT_NE(first.find("cut short"), std::string::npos) << first;
  ChunkWriter writer(*config_);
  const GenerationId gen{12, 0, 4646};
  ASSERT_TRUE(testing::WaitUntil([&] { return writer.Reset(*redis_, gen).ok(); }));
  nlohmann::json md = {{"status", "failed"}, {"error", "provider answered 503"}, {"provider_chunks", 0}};
  ASSERT_TRUE(store_->MergeGenerationMetadata(4646, 12, 0, md.dump()).ok());
  KeySchema k = KeySchema::FromConfig(*config_);
  ASSERT_TRUE(redis_->Command(GenerationFailedCommand(k, gen, "provider answered 503", WallClockMs())).ok());
  auto events = SseEventsOf(sub.ReadUntilClosed(10000));
  std::vector<std::string> kinds;
  for (auto& [event, data] : events) {
    if (event != "progress") kinds.push_back(event);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"reset", "closing"}));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().second["reason"], "failed");
}

// The same failure seen by a viewer who comes after its generation.failed event went by: opening the stream,
// or reconnecting with the first attempt's id. The control hash says the next attempt (unbound) failed
// (ChunkWriter::MarkFailed), and the stream ends with the row's reason at once: it waited out the restart's
// 60 s and LIVE_START_WAIT, then said not_found. Without the row's failure, the hash alone ends it.
TEST_F(LiveStreamTest, AViewerAfterTheFailureOfAStartedOverGenerationIsToldAtOnce) {
  for (int64_t id : {4647, 4648}) {
    const std::string path = "/v1/orgs/12/generations/" + std::to_string(id);
    ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", "cut short"}}.dump()), 202);
    ChunkWriter writer(*config_);
    const GenerationId gen{12, 0, id};
    ASSERT_TRUE(testing::WaitUntil([&] { return writer.Reset(*redis_, gen).ok(); }));
    const bool row_says_so = id == 4647;
    if (row_says_so) {
      nlohmann::json md = {{"status", "failed"}, {"error", "provider answered 503"}, {"provider_chunks", 0}};
      ASSERT_TRUE(store_->MergeGenerationMetadata(id, 12, 0, md.dump()).ok());
    }
    ASSERT_TRUE(writer.MarkFailed(*redis_, gen).ok());
    KeySchema k = KeySchema::FromConfig(*config_);
    ASSERT_TRUE(redis_->Command(GenerationFailedCommand(k, gen, "provider answered 503", WallClockMs())).ok());
    for (const char* resume : {"", "Last-Event-ID: 0\r\n"}) {
      testing::RawConnection sub(service_->port());
      ASSERT_TRUE(sub.Send("GET " + path + "/stream HTTP/1.1\r\nHost: t\r\n" + resume + "\r\n"));
      auto events = SseEventsOf(sub.ReadUntilClosed(10000));
      ASSERT_FALSE(events.empty()) << id << " " << resume;
      EXPECT_EQ(events.back().first, "closing") << id << " " << resume;
      EXPECT_EQ(events.back().second["reason"], "failed") << id << " " << resume << events.back().second.dump();
      if (row_says_so) {
        EXPECT_NE(events.back().second.dump().find("503"), std::string::npos) << events.back().second.dump();
      }
      for (auto& [event, data] : events) EXPECT_NE(event, "chunk") << "the cut attempt's text is not the answer";
    }
  }
}

class LiveStreamRestartTest : public LiveStreamTest {
 protected:
  LiveStreamRestartTest() { extra_env_ = {{"LIVE_START_WAIT", "1s"}, {"LIVE_RESTART_WAIT", "1s"}}; }
};

// A started-over generation whose next attempts fail before their first chunk, one after another (each
// resets the generation, then waits out a backoff): the stream waited LIVE_START_WAIT + 60 s from the first
// reset and said not_found, although the text came later. Each reset now starts the wait again (the
// control hash counts resets), so the viewer gets the attempt that finally writes.
TEST_F(LiveStreamRestartTest, EachResetOfAStartedOverGenerationStartsTheWaitAgain) {
  const std::string path = "/v1/orgs/12/generations/4650";
  testing::RawConnection sub(service_->port());
  ASSERT_TRUE(sub.Send("GET " + path + "/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", "cut short"}}.dump()), 202);
  std::string seen = sub.ReadUntil(HasEventWith("cut short"), 5000);
  ASSERT_NE(seen.find("cut short"), std::string::npos) << seen;
  ChunkWriter writer(*config_);
  const GenerationId gen{12, 0, 4650};
  ASSERT_TRUE(testing::WaitUntil([&] { return writer.Reset(*redis_, gen).ok(); }));
  for (int i = 0; i < 6; ++i) {  // 4.2 s of retries that fail before their first chunk: twice the waits
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    ASSERT_TRUE(writer.Reset(*redis_, gen).ok());
  }
  KeySchema k = KeySchema::FromConfig(*config_);
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(gen), "attempt"})->str, "1") << "no new attempt: nothing appended";
  EXPECT_EQ(redis_->Command({"HGET", k.ControlKey(gen), "resets"})->str, "7");
  ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", "the answer"}}.dump()), 202);
  std::string rest = sub.ReadUntil(HasEventWith("the answer"), 5000);
  EXPECT_NE(rest.find("the answer"), std::string::npos) << rest;
  EXPECT_EQ(rest.find("not_found"), std::string::npos) << rest;
}

class LiveStreamStartWaitTest : public LiveStreamTest {
 protected:
  LiveStreamStartWaitTest() { extra_env_ = {{"LIVE_START_WAIT", "2s"}}; }
};

// LIVE_START_WAIT is each reader's: one that joins a generation another reader has waited on for 1.2 s waits
// its own 2 s. It was counted from the first reader's arrival, so the second got not_found 0.8 s after it came
// and missed the text that started right after.
TEST_F(LiveStreamStartWaitTest, EachReaderWaitsItsOwnStartWait) {
  const std::string path = "/v1/orgs/12/generations/4660";
  testing::RawConnection first(service_->port());
  ASSERT_TRUE(first.Send("GET " + path + "/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  testing::RawConnection second(service_->port());
  ASSERT_TRUE(second.Send("GET " + path + "/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::string gone = first.ReadUntilClosed(10000);
  ASSERT_NE(gone.find("not_found"), std::string::npos) << gone;
  ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", "late start"}}.dump()), 202);
  std::string seen = second.ReadUntil(HasEventWith("late start"), 5000);
  EXPECT_NE(seen.find("late start"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("not_found"), std::string::npos) << seen;
}

// Compressed chunks (CHUNK_COMPRESSION=zstd, the default, for chunks of 1 KiB and more): a subscriber before the
// first chunk reads them from the stream tail, one after compaction from the buffer list; both get the text.
TEST_F(LiveStreamTest, CompressedChunksReachSubscribersAsText) {
  testing::RawConnection early(service_->port());
  ASSERT_TRUE(early.Send("GET /v1/orgs/12/generations/4343/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<std::string> texts;
  for (int i = 0; i < 4; ++i) {
    std::string t = i == 0 ? "{\"plan\": [" : "";
    for (int r = 0; r < 60; ++r) t += "{\"part\": " + std::to_string(i) + ", \"line\": \"revenue grows\"},";
    texts.push_back(t);
  }
  texts.back() += "{}]}";
  for (int seq : {2, 0, 3, 1}) {
    nlohmann::json body = {{"seq", seq}, {"data", texts[seq]}, {"final", seq == 3}};
    ASSERT_EQ(Post("/v1/orgs/12/generations/4343/chunks", body.dump()), 202);
  }
  std::string all = texts[0] + texts[1] + texts[2] + texts[3];
  auto text_of = [](const std::string& raw) {
    std::string text;
    for (auto& [event, data] : SseEventsOf(raw)) {
      // "text": the whole answer from the row, when the live hub serves a compacted generation that way
      if (event == "chunk" || event == "text") text += data["text"].get<std::string>();
    }
    return text;
  };
  EXPECT_EQ(text_of(early.ReadUntilClosed(20000)), all);
  auto row = store_->GetGeneration(4343);
  ASSERT_TRUE(row.ok() && row->has_value() && (*row)->compacted);
  EXPECT_EQ(*Base64Decode(*(*row)->compacted), all);

  KeySchema k = KeySchema::FromConfig(*config_);
  GenerationId g{12, 0, 4343};
  auto list = RedisClient::Connect(config_->redis).value()->Command({"LRANGE", k.BufferKey(g), "0", "-1"});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->elements.size(), 4u);
  for (const auto& e : list->elements) EXPECT_NE(e.str.find("z:"), std::string::npos) << "stored compressed";

  testing::RawConnection late(service_->port());
  ASSERT_TRUE(late.Send("GET /v1/orgs/12/generations/4343/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(text_of(late.ReadUntilClosed(20000)), all);
}

// GENERATION_DELETE_AFTER_COMPACT: the buffer expires after its grace while the control hash, still bound, lives
// on for the chunk TTL. A stream opened then read the empty list and ended with compacted and no text; the
// row is the text, as when nothing of the generation is left in Redis.
TEST_F(LiveStreamTest, ACompactedGenerationWhoseBufferExpiredIsServedFromItsRow) {
  const std::string path = "/v1/orgs/12/generations/4444";
  ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", "[\"kept in "}}.dump()), 202);
  ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", "the row\"]"}, {"final", true}}.dump()), 202);
  std::optional<GenerationRow> row;
  ASSERT_TRUE(testing::WaitUntil([&] {
    auto r = store_->GetGeneration(4444);
    if (r.ok() && r->has_value()) row = **r;
    return row.has_value();
  }));
  KeySchema k = KeySchema::FromConfig(*config_);
  GenerationId g{12, 0, 4444};
  ASSERT_TRUE(testing::WaitUntil([&] { return redis_->Command({"HGET", k.ControlKey(g), "state"})->str == "compacted"; }));
  ASSERT_TRUE(redis_->Command({"DEL", k.BufferKey(g), k.MetaKey(g), k.SeenKey(g)}).ok());  // the grace passed
  testing::RawConnection sub(service_->port());
  ASSERT_TRUE(sub.Send("GET " + path + "/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::string text, last;
  for (auto& [event, data] : SseEventsOf(sub.ReadUntilClosed(10000))) {
    if (event == "chunk" || event == "text") text += data["text"].get<std::string>();
    last = event;
  }
  EXPECT_EQ(text, "[\"kept in the row\"]");
  EXPECT_EQ(text, *Base64Decode(*row->compacted));
  EXPECT_EQ(last, "compacted");
}

// A stream opened after compaction while the buffer is still there reads the row only for its facts (chunk
// count, json_valid). A row that cannot be read (here its table is gone; before the hub read the facts
// without the text, a corrupt `compacted` or an artifact whose store this ingest lacks did the same) kept the
// stream open for ever with the whole text sent, the row re-read every second. After a few tries it ends
// without the facts.
TEST_F(LiveStreamTest, ACompactedStreamWhoseRowCannotBeReadEndsWithItsText) {
  const std::string path = "/v1/orgs/12/generations/4445";
  ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", "all "}}.dump()), 202);
  ASSERT_EQ(Post(path + "/chunks", nlohmann::json{{"data", "here"}, {"final", true}}.dump()), 202);
  ASSERT_TRUE(testing::WaitUntil([&] {
    auto r = store_->GetGeneration(4445);
    return r.ok() && r->has_value();
  }));
  KeySchema k = KeySchema::FromConfig(*config_);
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return redis_->Command({"HGET", k.ControlKey({12, 0, 4445}), "state"})->str == "compacted"; }));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  EXPECT_EQ(sqlite3_exec(db, "ALTER TABLE scenario_generations RENAME TO hidden_generations", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  testing::RawConnection sub(service_->port());
  ASSERT_TRUE(sub.Send("GET " + path + "/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::string text, last;
  for (auto& [event, data] : SseEventsOf(sub.ReadUntilClosed(15000))) {
    if (event == "chunk" || event == "text") text += data["text"].get<std::string>();
    last = event;
  }
  EXPECT_EQ(text, "all here");
  EXPECT_EQ(last, "compacted") << "the stream never ended";
}

// Readers resuming from far back read the events stream itself, a page at a time on the hub's thread; the
// pages are shared out per tick (kCatchUpPagesPerTick, the first reader turning), so one organization's many
// `?after=0` readers cannot stall every stream. Each still gets every event once, in order.
TEST_F(LiveStreamTest, ReadersCatchingUpFromFarBackEachGetEveryEventInOrder) {
  KeySchema k = KeySchema::FromConfig(*config_);
  constexpr int kEvents = 2600;  // more than five pages of 500
  std::vector<std::vector<std::string>> adds;
  for (int i = 1; i <= kEvents; ++i) adds.push_back(GenerationStartedCommand(k, {12, 0, i}, 1'800'000'000'000 + i));
  ASSERT_TRUE(redis_->Pipeline(adds).ok());
  std::vector<std::unique_ptr<testing::RawConnection>> readers;
  for (int r = 0; r < 3; ++r) {
    readers.push_back(std::make_unique<testing::RawConnection>(service_->port()));
    ASSERT_TRUE(readers.back()->Send("GET /v1/orgs/12/events?after=0 HTTP/1.1\r\nHost: t\r\n\r\n"));
  }
  const std::string last = "\"generation_id\":" + std::to_string(kEvents) + ",";
  for (auto& reader : readers) {
    std::string raw = reader->ReadUntil(HasEventWith(last), 30000);
    std::vector<int64_t> ids;
    for (auto& [event, data] : SseEventsOf(raw)) {
      if (event == "generation.started") ids.push_back(data["generation_id"].get<int64_t>());
    }
    ASSERT_EQ(ids.size(), static_cast<size_t>(kEvents));
    for (int i = 0; i < kEvents; ++i) ASSERT_EQ(ids[i], i + 1) << "at " << i;
  }
}

// A resume point with a part past UINT64_MAX is refused: Redis refuses every read from it, and the route used
// to accept it and then send nothing for good. The largest id Redis can hold is still a resume point.
TEST_F(LiveStreamTest, AnEventsResumePointThatDoesNotFitIn64BitsIsA400) {
  auto answer = [this](const std::string& target, const std::string& header, int timeout_ms) {
    testing::RawConnection c(service_->port());
    EXPECT_TRUE(c.Send("GET " + target + " HTTP/1.1\r\nHost: t\r\n" + header + "\r\n"));
    // A 400 is kept alive and a 200 streams: read until its error or its stream's preamble.
    return c.ReadUntil([](const std::string& raw) {
      return raw.find("invalid_resume_point") != std::string::npos || raw.find("retry: 1000") != std::string::npos;
    }, timeout_ms);
  };
  for (const auto& [target, header] : std::vector<std::pair<std::string, std::string>>{
           {"/v1/orgs/12/events", "Last-Event-ID: 99999999999999999999-0\r\n"},
           {"/v1/orgs/12/events", "Last-Event-ID: 18446744073709551616-0\r\n"},
           {"/v1/orgs/12/events?after=0-18446744073709551616", ""}}) {
    std::string raw = answer(target, header, 3000);
    EXPECT_EQ(testing::StatusOf(raw), 400) << target << " " << header << raw;
    EXPECT_NE(raw.find("invalid_resume_point"), std::string::npos) << raw;
  }
  std::string max = answer("/v1/orgs/12/events", "Last-Event-ID: 18446744073709551615-18446744073709551615\r\n", 3000);
  EXPECT_EQ(testing::StatusOf(max), 200) << max;
}

// A second tab (or a reconnect) opened while the count stands still: progress went out only when it changed,
// so the newcomer saw none until the next chunk, and none at all once the last chunk had come.
TEST_F(LiveStreamTest, AReaderThatJoinsLaterIsSentTheProgressRightAfterItsReplay) {
  stop_ = true;  // no compaction: the generation stays open with its count unchanged
  compacting_.join();
  testing::RawConnection first(service_->port());
  ASSERT_TRUE(first.Send("GET /v1/orgs/12/generations/4545/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // subscribed before the first chunk
  for (int seq : {0, 1}) {
    nlohmann::json body = {{"seq", seq}, {"data", "part " + std::to_string(seq)}, {"total_chunks", 4}};
    ASSERT_EQ(Post("/v1/orgs/12/generations/4545/chunks", body.dump()), 202);
  }
  auto progress_of = [](const std::string& raw) {
    std::vector<nlohmann::json> out;
    for (auto& [event, data] : SseEventsOf(raw)) {
      if (event == "progress") out.push_back(data);
    }
    return out;
  };
  std::string seen;  // until the first reader was told of both chunks (one progress per LIVE_PROGRESS_INTERVAL)
  for (int i = 0; i < 20; ++i) {
    seen += first.ReadUntilClosed(300);
    auto p = progress_of(seen);
    if (!p.empty() && p.back()["received_chunks"] == 2) break;
  }
  auto told = progress_of(seen);
  ASSERT_FALSE(told.empty()) << "the first reader got no progress\n" << seen;
  ASSERT_EQ(told.back()["received_chunks"], 2) << seen;

  testing::RawConnection second(service_->port());  // the first stays open: the generation stays watched
  ASSERT_TRUE(second.Send("GET /v1/orgs/12/generations/4545/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::string raw = second.ReadUntil(HasEventWith("event: progress"), 5000);
  auto events = SseEventsOf(raw);
  std::vector<std::string> kinds;
  for (auto& [event, data] : events) kinds.push_back(event);
  EXPECT_EQ(kinds, (std::vector<std::string>{"chunk", "chunk", "progress"})) << raw;
  auto late = progress_of(raw);
  ASSERT_EQ(late.size(), 1u) << raw;
  EXPECT_EQ(late[0]["received_chunks"], 2);
  EXPECT_EQ(late[0]["total_chunks"], 4);
  EXPECT_EQ(late[0]["percent"], 50);
  EXPECT_TRUE(progress_of(first.ReadUntilClosed(300)).empty()) << "the first reader got its progress again";
}

// A generation that fails before its first chunk (generation.run: the provider refused it for good) has no
// text to wait for. Its streams waited LIVE_START_WAIT (30 s) and ended with not_found, and an EventSource
// reconnected and waited again. They now end with closing "failed" when the generation.failed event comes,
// and a stream opened later learns it from the row.
TEST_F(LiveStreamTest, AGenerationThatFailedBeforeItsFirstChunkEndsItsStreams) {
  KeySchema k = KeySchema::FromConfig(*config_);
  auto watch = [this](testing::RawConnection& c, int64_t gen) {
    EXPECT_TRUE(c.Send("GET /v1/orgs/12/generations/" + std::to_string(gen) + "/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  };
  // As generation.run does it: the row's status, then the event.
  auto fail = [&](int64_t gen, int64_t chunks) {
    nlohmann::json md = {{"status", "failed"}, {"error", "provider answered 503"}, {"provider_chunks", chunks}};
    ASSERT_TRUE(store_->MergeGenerationMetadata(gen, 12, 0, md.dump()).ok());
    ASSERT_TRUE(redis_->Command(GenerationFailedCommand(k, {12, 0, gen}, "provider answered 503", WallClockMs())).ok());
  };
  auto closing_of = [](const std::string& raw) {
    auto events = SseEventsOf(raw);
    return events.empty() || events.back().first != "closing" ? nlohmann::json() : events.back().second;
  };
  testing::RawConnection sub(service_->port());
  watch(sub, 4848);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // watching before the failure
  fail(4848, 0);
  std::string raw = sub.ReadUntilClosed(10000);  // LIVE_START_WAIT is 30 s: this is the failure's end
  auto closing = closing_of(raw);
  ASSERT_TRUE(closing.is_object()) << raw;
  EXPECT_EQ(closing["reason"], "failed");
  EXPECT_NE(closing["detail"].get<std::string>().find("provider answered 503"), std::string::npos) << raw;

  // Opened after the failure (no event to see): the row says so.
  nlohmann::json md = {{"status", "failed"}, {"error", "refused"}, {"provider_chunks", 0}};
  ASSERT_TRUE(store_->MergeGenerationMetadata(4850, 12, 0, md.dump()).ok());
  testing::RawConnection late(service_->port());
  watch(late, 4850);
  closing = closing_of(late.ReadUntilClosed(10000));
  ASSERT_TRUE(closing.is_object());
  EXPECT_EQ(closing["reason"], "failed");

  // Failed after some chunks (a provider stream cut mid-answer): they are finalized, so the text comes, even
  // when the event is seen before them.
  testing::RawConnection partial(service_->port());
  watch(partial, 4949);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  fail(4949, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(Post("/v1/orgs/12/generations/4949/chunks", R"({"seq":0,"data":"partial","final":true})"), 202);
  std::string text;
  auto events = SseEventsOf(partial.ReadUntilClosed(20000));
  for (auto& [event, data] : events) {
    if (event == "chunk") text += data["text"].get<std::string>();
  }
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().first, "compacted");
  EXPECT_EQ(text, "partial");
}

// A per-connection buffer of 4 KiB, and two streams per organization.
class LiveStreamLimitsTest : public LiveStreamTest {
 protected:
  LiveStreamLimitsTest() { extra_env_ = {{"LIVE_MAX_BUFFERED_BYTES", "4096"}, {"LIVE_ORG_MAX_STREAMS", "2"}}; }
};

// A generation whose buffer is gone is served from its row. The whole text went out as one event, past the
// connection's buffer: a row of INGEST_MAX_GENERATION_BYTES, escaped, once per reader. It now comes in pieces
// that fit the buffer; the first replaces what the client has (a resumed client, or one that reconnected
// after a few pieces, which carry no id), the others append.
TEST_F(LiveStreamLimitsTest, ARowIsServedInPiecesThatFitTheConnectionsBuffer) {
  std::string part;  // multibyte characters and characters JSON escapes, so pieces are cut between sequences
  while (part.size() < 5000) part += "caf\xC3\xA9 \xE2\x82\xAC\xF0\x9F\x98\x80 \"q\"\n\t";
  for (int seq = 0; seq < 40; ++seq) {
    nlohmann::json body = {{"seq", seq}, {"data", std::to_string(seq) + part}, {"final", seq == 39}};
    ASSERT_EQ(Post("/v1/orgs/12/generations/4646/chunks", body.dump()), 202);
  }
  std::optional<GenerationRow> row;
  ASSERT_TRUE(testing::WaitUntil([&] {
    auto r = store_->GetGeneration(4646);
    if (r.ok() && r->has_value() && (*r)->chunk_count == 40) row = **r;
    return row.has_value();
  }, 20000));
  const std::string want = *Base64Decode(*row->compacted);
  KeySchema k = KeySchema::FromConfig(*config_);
  GenerationId g{12, 0, 4646};
  ASSERT_TRUE(redis_->Command({"DEL", k.BufferKey(g), k.MetaKey(g), k.SeenKey(g), k.ControlKey(g), k.IngestKey(g)}).ok());

  for (const std::string resume : {"", "Last-Event-ID: 5\r\n"}) {
    testing::RawConnection sub(service_->port());
    ASSERT_TRUE(sub.Send("GET /v1/orgs/12/generations/4646/stream HTTP/1.1\r\nHost: t\r\n" + resume + "\r\n"));
    std::string raw = sub.ReadUntilClosed(20000);
    auto events = SseEventsOf(raw);
    ASSERT_GE(events.size(), 3u) << raw.substr(0, 2000);
    EXPECT_EQ(events.back().first, "compacted");
    EXPECT_EQ(events.back().second["chunk_count"], 40);
    std::string text;
    for (size_t i = 0; i + 1 < events.size(); ++i) {
      const auto& [event, data] = events[i];
      ASSERT_EQ(event, "text") << i;
      EXPECT_EQ(data["replaces"], i == 0) << i;
      // A piece's data line, as sent: at most half the buffer (a sixth of the budget, escaped).
      EXPECT_LE(data.dump().size(), 4096u / 2 + 64) << i;
      text += data["text"].get<std::string>();
    }
    EXPECT_EQ(text, want) << resume;
    EXPECT_EQ(raw.find("\xEF\xBF\xBD"), std::string::npos) << "a character was cut between two pieces";
  }
}

// One organization holds at most LIVE_ORG_MAX_STREAMS streams on a server (both routes): the next is a 429,
// another organization is served, and a stream the client closes frees its place.
TEST_F(LiveStreamLimitsTest, OneOrganizationsStreamsAreCappedAndTheOthersServed) {
  auto open = [this](testing::RawConnection& c, const std::string& target) {
    EXPECT_TRUE(c.Send("GET " + target + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    return c.ReadUntilClosed(300);  // a stream does not end: its head and preamble
  };
  auto first = std::make_unique<testing::RawConnection>(service_->port());
  testing::RawConnection second(service_->port()), third(service_->port()), other(service_->port());
  EXPECT_EQ(testing::StatusOf(open(*first, "/v1/orgs/12/events")), 200);
  EXPECT_EQ(testing::StatusOf(open(second, "/v1/orgs/12/generations/88/stream")), 200);
  std::string refused = open(third, "/v1/orgs/12/generations/89/stream");
  EXPECT_EQ(testing::StatusOf(refused), 429) << refused;
  EXPECT_NE(refused.find("too_many_streams"), std::string::npos) << refused;
  EXPECT_NE(refused.find("Retry-After: 5"), std::string::npos) << refused;
  EXPECT_EQ(testing::StatusOf(open(other, "/v1/orgs/13/events")), 200) << "another organization was refused";

  first.reset();  // the client leaves: its place is free once the server sees it gone
  int status = 0;
  EXPECT_TRUE(testing::WaitUntil([&] {
    testing::RawConnection again(service_->port());
    status = testing::StatusOf(open(again, "/v1/orgs/12/events"));
    return status == 200;
  }, 10000)) << status;
}

// One organization's watched generations hold at most LIVE_ORG_MAX_HELD_BYTES of text (64 KiB here): past it
// the streams of its most recently watched generation are closed with a reason, its first keeps going, and
// another organization's stream of as much text is not touched.
class LiveStreamHeldTextTest : public LiveStreamTest {
 protected:
  LiveStreamHeldTextTest() { extra_env_ = {{"LIVE_ORG_MAX_HELD_BYTES", "65536"}}; }
};

TEST_F(LiveStreamHeldTextTest, AnOrganizationPastItsHeldTextLosesItsNewestStreamsOnly) {
  const std::string part(10000, 'x');
  auto fill = [&](int org, int gen) {
    for (int seq = 0; seq < 4; ++seq) {  // 40 KB: under the cap alone, over it with another
      nlohmann::json body = {{"seq", seq}, {"data", part}};
      ASSERT_EQ(Post("/v1/orgs/" + std::to_string(org) + "/generations/" + std::to_string(gen) + "/chunks",
                     body.dump()),
                202);
    }
  };
  auto open = [this](testing::RawConnection& c, const std::string& target) {
    ASSERT_TRUE(c.Send("GET " + target + " HTTP/1.1\r\nHost: t\r\n\r\n"));
  };
  testing::RawConnection first(service_->port()), newest(service_->port()), other(service_->port());
  fill(12, 5001);
  open(first, "/v1/orgs/12/generations/5001/stream");
  ASSERT_NE(first.ReadUntil(HasEventWith("id: 3"), 10000).find("id: 3"), std::string::npos);
  fill(13, 5003);
  open(other, "/v1/orgs/13/generations/5003/stream");
  ASSERT_NE(other.ReadUntil(HasEventWith("id: 3"), 10000).find("id: 3"), std::string::npos);
  fill(12, 5002);
  open(newest, "/v1/orgs/12/generations/5002/stream");
  std::string closed = newest.ReadUntilClosed(10000);
  EXPECT_NE(closed.find("event: closing"), std::string::npos) << closed.substr(0, 500);
  EXPECT_NE(closed.find("org_text_limit"), std::string::npos) << closed.substr(0, 500);
  // The first stream of the organization and the other organization's stream go on.
  ASSERT_EQ(Post("/v1/orgs/12/generations/5001/chunks", R"({"seq":4,"data":"more"})"), 202);
  EXPECT_NE(first.ReadUntil(HasEventWith("id: 4"), 10000).find("id: 4"), std::string::npos);
  ASSERT_EQ(Post("/v1/orgs/13/generations/5003/chunks", R"({"seq":4,"data":"more"})"), 202);
  std::string still = other.ReadUntil(HasEventWith("id: 4"), 10000);
  EXPECT_NE(still.find("id: 4"), std::string::npos);
  EXPECT_EQ(still.find("org_text_limit"), std::string::npos);
}

// Tokens, and a page on https://app.example allowed to read the live routes.
class LiveStreamCorsTest : public LiveStreamTest {
 protected:
  LiveStreamCorsTest() {
    extra_env_ = {{"INGEST_TOKENS", "12:tok-12,13:tok-13"}, {"LIVE_CORS_ORIGINS", "https://app.example"}};
  }
  // The raw answer to one request (whatever came within timeout_ms: a stream does not end).
  std::string Answer(const std::string& method, const std::string& target, const std::string& headers,
                     int timeout_ms = 300) {
    return testing::RawExchange(service_->port(),
                                method + " " + target + " HTTP/1.1\r\nHost: t\r\n" + headers + "\r\n", timeout_ms);
  }
  static bool HasHeader(const std::string& raw, const std::string& line) {
    return raw.substr(0, raw.find("\r\n\r\n") + 2).find("\r\n" + line + "\r\n") != std::string::npos;
  }
};

// A browser hides an answer without Access-Control-Allow-Origin from the page, status included: the 204 that
// ends an EventSource after compacted was logged as a CORS error, and an expired link could not be told from
// a network error. Only the 200 stream carried it.
TEST_F(LiveStreamCorsTest, EveryAnswerOfTheLiveRoutesCarriesCorsForAnAllowedOrigin) {
  ASSERT_TRUE(redis_->Command({"SET", KeySchema::FromConfig(*config_).OwnerKey(77), "12"}).ok());
  const std::string gen = "/v1/orgs/12/generations/77/stream";
  const std::string auth = "Authorization: Bearer tok-12\r\n";
  const int64_t now_s = WallClockMs() / 1000;
  const std::string expired = gen + "?exp=" + std::to_string(now_s - 5) +
                              "&sig=" + live::SignLink("tok-12", gen, now_s - 5);
  struct Case {
    std::string method, target, headers;
    int status;
  };
  const std::vector<Case> cases = {
      {"GET", gen, auth + "Last-Event-ID: end\r\n", 204},  // the reconnect after compacted
      {"GET", gen, "", 401},
      {"GET", gen, "Authorization: Bearer tok-13\r\n", 403},
      {"GET", expired, "", 403},
      {"GET", gen + "?exp=soon&sig=00", "", 400},
      {"GET", "/v1/orgs/x/events", auth, 400},
      {"GET", gen, auth + "Last-Event-ID: -3\r\n", 400},
      {"GET", "/v1/orgs/12/events?after=1-2-3", auth, 400},
      {"GET", "/v1/orgs/13/generations/77/stream", "Authorization: Bearer tok-13\r\n", 404},
      {"POST", gen, auth + "Content-Length: 0\r\n", 405},
      {"GET", gen, auth, 200},
      {"GET", "/v1/orgs/12/events", auth, 200},
  };
  for (const auto& c : cases) {
    std::string raw = Answer(c.method, c.target, c.headers + "Origin: https://app.example\r\n");
    EXPECT_EQ(testing::StatusOf(raw), c.status) << c.method << " " << c.target << "\n" << raw;
    EXPECT_TRUE(HasHeader(raw, "Access-Control-Allow-Origin: https://app.example")) << c.target << "\n" << raw;
    EXPECT_TRUE(HasHeader(raw, "Vary: Origin")) << raw;
    std::string other = Answer(c.method, c.target, c.headers + "Origin: https://evil.example\r\n");
    EXPECT_EQ(testing::StatusOf(other), c.status) << other;
    EXPECT_EQ(other.find("Access-Control-"), std::string::npos) << "an origin that is not allowed got CORS\n" << other;
  }
  EXPECT_FALSE(HasHeader(Answer("GET", "/v1/orgs/12/generations/77", auth + "Origin: https://app.example\r\n"),
                         "Access-Control-Allow-Origin: https://app.example"))
      << "CORS is for the live routes only";

  if (server_->cluster()) return;  // stalls one redis-server process
  server_->server()->Pause();      // the owner check cannot answer within REDIS_TIMEOUT
  std::string unavailable = Answer("GET", gen, auth + "Origin: https://app.example\r\n", 5000);
  server_->server()->Resume();
  EXPECT_EQ(testing::StatusOf(unavailable), 503) << unavailable;
  EXPECT_TRUE(HasHeader(unavailable, "Access-Control-Allow-Origin: https://app.example")) << unavailable;
}

// fetch-based SSE clients send Authorization and Last-Event-ID, which are not CORS-safelisted: the browser
// asks first with OPTIONS, which was answered 405, so they never got to the GET.
TEST_F(LiveStreamCorsTest, APreflightFromAnAllowedOriginIsAnswered204) {
  const std::string preflight =
      "Origin: https://app.example\r\nAccess-Control-Request-Method: GET\r\n"
      "Access-Control-Request-Headers: authorization,last-event-id\r\n";
  for (const std::string target : {"/v1/orgs/12/generations/77/stream", "/v1/orgs/12/events?after=0",
                                   "/v1/orgs/x/events"}) {
    std::string raw = Answer("OPTIONS", target, preflight);
    EXPECT_EQ(testing::StatusOf(raw), 204) << target << "\n" << raw;
    EXPECT_TRUE(HasHeader(raw, "Access-Control-Allow-Origin: https://app.example")) << raw;
    EXPECT_TRUE(HasHeader(raw, "Access-Control-Allow-Methods: GET")) << raw;
    EXPECT_TRUE(HasHeader(raw, "Access-Control-Allow-Headers: Authorization, Last-Event-ID")) << raw;
    EXPECT_TRUE(HasHeader(raw, "Access-Control-Max-Age: 600")) << raw;
  }
  // Another origin (or none): 403 with the reason, and nothing that would let the browser go on.
  for (const std::string origin : {"Origin: https://evil.example\r\n", ""}) {
    std::string raw = Answer("OPTIONS", "/v1/orgs/12/events", origin + "Access-Control-Request-Method: GET\r\n");
    EXPECT_EQ(testing::StatusOf(raw), 403) << raw;
    EXPECT_NE(raw.find("origin_not_allowed"), std::string::npos) << raw;
    EXPECT_EQ(raw.find("Access-Control-"), std::string::npos) << raw;
  }
  // The other routes are as they were.
  EXPECT_EQ(testing::StatusOf(Answer("OPTIONS", "/v1/orgs/12/generations/77/chunks", preflight)), 405);
}

}  // namespace
}  // namespace streamfleet::ingest
