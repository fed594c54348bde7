// The object store and compacted artifacts against a real S3 API server (s3rver: support/s3_server.h) and, for
// the finalizer, a real redis-server and SQLite.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "streamfleet/artifacts/artifact.h"
#include "streamfleet/artifacts/chunk_archive.h"
#include "streamfleet/base/codec.h"
#include "streamfleet/base/compression.h"
#include "streamfleet/chunks/finalizer.h"
#include "streamfleet/operations/artifact_moves.h"
#include "streamfleet/testing/redis_server.h"
#include "support/map_env.h"
#include "support/redis_suite.h"
#include "support/s3_server.h"
#include "support/sql_database.h"

namespace streamfleet {
namespace {

class ArtifactsTest : public testing::RedisSuite<> {
 protected:
  static void SetUpTestSuite() {
    RedisSuite::SetUpTestSuite();
    s3_ = new testing::S3Server();
  }
  static void TearDownTestSuite() {
    delete s3_;
    s3_ = nullptr;
    RedisSuite::TearDownTestSuite();
  }
  Config MakeConfig(std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env = server_->env();
    for (auto& [k, v] : s3_->env()) env.insert({k, v});
    for (auto& [k, v] : extra) env[k] = v;
    auto c = LoadConfig(testing::MapEnv(env), "127.0.0.1:0");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return *c;
  }
  static std::string Text(size_t n) {
    std::string s = "{\"plan\": [";
    for (int i = 0; s.size() < n; ++i) s += "{\"month\": " + std::to_string(i) + ", \"revenue\": 1250.5},";
    return s + "{}]}";
  }
  static inline testing::S3Server* s3_ = nullptr;
};

TEST_F(ArtifactsTest, PutGetUrlsAndErrors) {
  Config c = MakeConfig();
  auto store = OpenObjectStore(c);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("a/b.bin", std::string("x\0y", 3)).ok());
  auto got = store->Get("a/b.bin", 100);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, std::string("x\0y", 3));
  EXPECT_EQ(store->Url("a/b.bin"), "s3://art/fleet-a/a/b.bin");
  EXPECT_EQ(*store->KeyOf("s3://art/fleet-a/a/b.bin"), "a/b.bin");
  EXPECT_EQ(store->KeyOf("s3://other/fleet-a/a/b.bin").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Get("missing", 100).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Get("a/b.bin", 2).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(OpenObjectStore(MakeConfig({{"ARTIFACT_STORE", ""}})), nullptr);
  EXPECT_FALSE(LoadConfig(testing::MapEnv({{"ARTIFACT_STORE", "bucket-without-scheme"}}), "127.0.0.1:0").ok());
}

// One canned HTTP answer to each connection, on loopback: what a proxy or S3 answers that s3rver does not.
class CannedAnswer {
 public:
  explicit CannedAnswer(std::string answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string head;
        char buf[4096];
        while (head.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::read(c, buf, sizeof buf);
          if (n <= 0) break;
          head.append(buf, static_cast<size_t>(n));
        }
        for (size_t at = 0; at < answer_.size();) {
          ssize_t n = ::write(c, answer_.data() + at, answer_.size() - at);
          if (n <= 0) break;
          at += static_cast<size_t>(n);
        }
        ::close(c);
      }
    });
  }
  ~CannedAnswer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string answer_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

std::string HttpAnswer(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

// A proxy's large error page with a 502 was read as "the object is larger than the limit" (ResourceExhausted,
// which the chunk archive reports as over its size limits); a 400 RequestTimeout or ExpiredToken, which a
// retry may get past, was a permanent error. Both are Unavailable: retried.
TEST_F(ArtifactsTest, ErrorAnswersAreClassifiedByStatusAndCode) {
  {
    CannedAnswer proxy(HttpAnswer(502, "<html>" + std::string(100 << 10, 'x') + "</html>"));
    auto store = OpenObjectStore(MakeConfig({{"ARTIFACT_STORE_ENDPOINT", proxy.endpoint()}}));
    auto got = store->Get("a/b.bin", 1 << 20);
    EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << got.status().ToString();
  }
  for (const auto& [status, code] : std::vector<std::pair<int, const char*>>{
           {400, "RequestTimeout"}, {400, "ExpiredToken"}, {403, "RequestTimeTooSkewed"}}) {
    CannedAnswer s3(HttpAnswer(status, std::string("<Error><Code>") + code + "</Code></Error>"));
    auto store = OpenObjectStore(MakeConfig({{"ARTIFACT_STORE_ENDPOINT", s3.endpoint()}}));
    auto got = store->Get("a/b.bin", 1 << 20);
    EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << code << ": " << got.status().ToString();
  }
  CannedAnswer refused(HttpAnswer(400, "<Error><Code>InvalidBucketName</Code></Error>"));
  auto store = OpenObjectStore(MakeConfig({{"ARTIFACT_STORE_ENDPOINT", refused.endpoint()}}));
  EXPECT_EQ(store->Get("a/b.bin", 1 << 20).status().code(), StatusCode::kInternal) << "a request that cannot succeed";
}

TEST_F(ArtifactsTest, CredentialsFromAFileAreReadAtEveryRequest) {
  std::string path = testing::TempPath("sf-aws-credentials");
  auto write = [&](const std::string& key) {
    std::ofstream(path) << "[other]\naws_access_key_id = S3RVER\n\n[default]\naws_access_key_id = " << key
                        << "\naws_secret_access_key = S3RVER\n";
  };
  write("NOT-A-KEY");
  auto store = OpenObjectStore(MakeConfig({{"AWS_ACCESS_KEY_ID", ""},
                                           {"AWS_SECRET_ACCESS_KEY", ""},
                                           {"ARTIFACT_STORE_CREDENTIALS_FILE", path}}));
  Status refused = store->Put("k", "v");
  EXPECT_EQ(refused.code(), StatusCode::kPermissionDenied) << refused.ToString();
  write("S3RVER");  // the Secret was rotated: no restart needed
  EXPECT_TRUE(store->Put("k", "v").ok());
  std::remove(path.c_str());
  auto none = OpenObjectStore(MakeConfig({{"AWS_ACCESS_KEY_ID", ""}, {"AWS_SECRET_ACCESS_KEY", ""}}));
  EXPECT_EQ(none->Put("k", "v").code(), StatusCode::kFailedPrecondition);
}

TEST_F(ArtifactsTest, ArtifactsAreContentAddressedCompressedAndChecked) {
  auto store = OpenObjectStore(MakeConfig());
  std::string text = Text(200000);
  auto ref = StoreArtifact(*store, text);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->sha256, Sha256Hex(text));
  EXPECT_EQ(ref->url, "s3://art/fleet-a/artifacts/" + ref->sha256 + ".zst");
  EXPECT_LT(ref->stored_bytes, ref->bytes / 4);
  EXPECT_EQ(*LoadArtifact(*store, *ref), text);
  auto again = StoreArtifact(*store, text);  // idempotent: the same object
  EXPECT_EQ(again->url, ref->url);

  // The object under the reference is not the text it names: an error, never other data.
  ASSERT_TRUE(store->Put("artifacts/" + ref->sha256 + ".zst", ZstdCompress(Text(1000))).ok());
  EXPECT_EQ(LoadArtifact(*store, *ref).status().code(), StatusCode::kDataLoss);
  ASSERT_TRUE(store->Put("artifacts/" + ref->sha256 + ".zst", "not zstd").ok());
  EXPECT_EQ(LoadArtifact(*store, *ref).status().code(), StatusCode::kDataLoss);

  // ResolveCompacted: a row naming the artifact gets its compacted back.
  auto fresh = StoreArtifact(*store, text);
  ASSERT_TRUE(fresh.ok());
  GenerationRow row;
  row.id = 5;
  row.metadata = R"({"json_valid": true, "artifact": )" + ArtifactJson(*fresh) + "}";
  ASSERT_TRUE(ResolveCompacted(store.get(), row).ok());
  EXPECT_EQ(*row.compacted, Base64Encode(text));
  GenerationRow orphan;
  orphan.metadata = row.metadata;
  EXPECT_EQ(ResolveCompacted(nullptr, orphan).code(), StatusCode::kFailedPrecondition);
}

// The finalizer with ARTIFACT_STORE: a large text goes to the store before its row, the row keeps the
// reference and the digest, and reading it through gives the bytes a store-less fleet keeps in the row. With
// the store down, finalization fails (nothing marked compacted, no row) and succeeds once it is back.
// The chunk archive's object: what a reader accepts (docs/storage.md, "Chunk archive") and what it refuses.
TEST_F(ArtifactsTest, ChunkArchivesAreCheckedLineByLineAndBounded) {
  Config c = MakeConfig();
  auto store = OpenObjectStore(c);
  const size_t max = ChunkArchiveMaxBytes(c);
  EXPECT_EQ(LoadChunkArchive(*store, 900, max).status().code(), StatusCode::kNotFound);
  ASSERT_EQ(*ArchiveChunks(*store, {{900, 1, 0, 1, "b"}, {900, 1, 0, 0, "a"}}, max), 2);
  // The documented form: zstd, one JSON line per chunk in seq order, data base64, scenario null when absent.
  auto text = ZstdDecompress(*store->Get(ChunkArchiveKey(900), 1 << 20), 1 << 20);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "{\"data_base64\":\"YQ==\",\"generation_id\":900,\"organization_id\":1,\"scenario_id\":null,\"seq\":0}\n"
            "{\"data_base64\":\"Yg==\",\"generation_id\":900,\"organization_id\":1,\"scenario_id\":null,\"seq\":1}\n");
  EXPECT_EQ(ArchiveChunks(*store, {{900, 1, 0, 2, "c"}, {901, 1, 0, 0, "x"}}, max).status().code(),
            StatusCode::kInvalidArgument);
  // Over the limit the reader was given: refused on write, and on read before anything is decompressed.
  EXPECT_EQ(ArchiveChunks(*store, {{900, 1, 0, 2, std::string(4096, 'c')}}, 1024).status().code(),
            StatusCode::kResourceExhausted);
  // An archive of larger limits than this configuration's is not a corrupt one: it says which variables to raise.
  auto too_big = LoadChunkArchive(*store, 900, 64);
  EXPECT_EQ(too_big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(too_big.status().message().find("INGEST_MAX_GENERATION_BYTES"), std::string::npos) << too_big.status().ToString();
  EXPECT_EQ(LoadChunkArchive(*store, 900, max)->size(), 2u) << "a refused write left the archive as it was";
  // Lines of another generation, a negative seq, data that is not base64, not JSON: each is data loss.
  for (const std::string bad :
       {"{\"data_base64\":\"YQ==\",\"generation_id\":7,\"organization_id\":1,\"seq\":0}\n",
        "{\"data_base64\":\"YQ==\",\"generation_id\":902,\"organization_id\":1,\"seq\":-1}\n",
        "{\"data_base64\":\"**\",\"generation_id\":902,\"organization_id\":1,\"seq\":0}\n", "[1,\n"}) {
    ASSERT_TRUE(store->Put(ChunkArchiveKey(902), ZstdCompress(bad)).ok());
    auto got = LoadChunkArchive(*store, 902, max);
    EXPECT_EQ(got.status().code(), StatusCode::kDataLoss) << bad;
    EXPECT_NE(got.status().message().find("line 1"), std::string::npos) << got.status().ToString();
    EXPECT_EQ(ArchiveChunks(*store, {{902, 1, 0, 0, "a"}}, max).status().code(), StatusCode::kDataLoss)
        << "an unreadable archive is never overwritten";
  }
}

TEST_F(ArtifactsTest, FinalizerStoresLargeTextsBeforeTheRowAndRetriesWhileTheStoreIsDown) {
  Config config = MakeConfig({{"ARTIFACT_INLINE_MAX_BYTES", "4096"}});
  std::string db = testing::TempPath("sf-artifacts") + ".db";
  auto sql = SqlStore::Open("sqlite:" + db);
  ASSERT_TRUE(sql.ok());
  ASSERT_TRUE((*sql)->Migrate().ok());
  RedisServerClock clock;
  ChunkBuffer buffer(config, clock);
  Finalizer fin(config, buffer, **sql, "test");
  auto buffered = [&](int64_t gen, const std::string& text) {
    GenerationId g{7, 0, gen};
    std::vector<ChunkItem> items;
    for (size_t at = 0, seq = 0; at < text.size(); at += 3000, ++seq) {
      ChunkItem it;
      it.gen = g;
      it.seq = static_cast<int64_t>(seq);
      it.data = text.substr(at, 3000);
      it.final = at + 3000 >= text.size();
      items.push_back(it);
    }
    EXPECT_TRUE(buffer.Apply(*redis_, items).ok());
    return g;
  };
  std::string big = Text(60000), small = Text(1000);
  GenerationId g_big = buffered(81, big), g_small = buffered(82, small);

  s3_->Kill();
  FinalizeDependency failed = FinalizeDependency::kRedis;
  auto down = fin.FinalizeBatch(*redis_, {{g_big, "complete", "1-0"}}, &failed);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable) << down.status().ToString();
  EXPECT_EQ(failed, FinalizeDependency::kArtifactStore);
  EXPECT_FALSE((*sql)->GetGeneration(81)->has_value()) << "no row may name an object the store did not take";
  s3_->Start();

  auto out = fin.FinalizeBatch(*redis_, {{g_big, "complete", "1-0"}, {g_small, "complete", "2-0"}}, &failed);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE((*out)[0].marked_compacted);
  auto row = (*sql)->GetGeneration(81);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_FALSE((*row)->compacted.has_value()) << "the blob is in the store, not the row";
  auto ref = ArtifactOfMetadata((*row)->metadata);
  ASSERT_TRUE(ref.has_value()) << (*row)->metadata;
  EXPECT_EQ(ref->sha256, Sha256Hex(big));
  EXPECT_EQ(ref->bytes, static_cast<int64_t>(big.size()));
  EXPECT_EQ(nlohmann::json::parse(*(*row)->llm_response), nlohmann::json::parse(big));
  auto store = OpenObjectStore(config);
  ASSERT_TRUE(ResolveCompacted(store.get(), **row).ok());
  EXPECT_EQ(*(*row)->compacted, Base64Encode(big)) << "compacted consumers get the same bytes either way";

  auto inline_row = (*sql)->GetGeneration(82);
  ASSERT_TRUE(inline_row.ok() && inline_row->has_value());
  EXPECT_EQ(*(*inline_row)->compacted, Base64Encode(small));
  EXPECT_TRUE(nlohmann::json::parse((*inline_row)->metadata)["artifact"].is_null());
  std::remove(db.c_str());
}

// streamfleetctl migrate-artifacts: rows written before the store was turned on move out (preview first),
// a second run moves nothing, the texts come back byte for byte, and a row a finalization rewrote meanwhile
// is left to it.
class ArtifactMovesTest : public ArtifactsTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void TearDown() override {
    sql_.reset();
    if (!db_.empty()) std::remove(db_.c_str());
    ArtifactsTest::TearDown();
  }
  // A migrated database of this test's backend, in sql_ (an SQLite file removed after the test).
  void OpenFreshStore(const std::string& name) {
    std::string url = testing::FreshDatabaseUrl(GetParam(), name, &db_);
    if (url.empty()) GTEST_FAIL() << "STREAMFLEET_TEST_PG_URL is not set (scripts/test.sh sets it)";
    auto sql = SqlStore::Open(url);
    ASSERT_TRUE(sql.ok()) << sql.status().ToString();
    sql_ = std::move(*sql);
    ASSERT_TRUE(sql_->Migrate().ok());
  }
  // A finalized row of organization 7 as an earlier release wrote it (compacted_by "old").
  void WriteRow(int64_t id, std::optional<std::string> compacted, const std::string& metadata_patch,
                int64_t chunk_count) {
    GenerationWrite w;
    w.id = id;
    w.organization_id = 7;
    w.compacted = std::move(compacted);
    w.metadata_patch = metadata_patch;
    w.chunk_count = chunk_count;
    w.compacted_at = "2026-12-03T10:00:00.000Z";
    w.compacted_by = "old";
    w.finalize_id = "f" + std::to_string(id);
    ASSERT_TRUE(sql_->UpsertGeneration(w).ok());
  }
  std::string db_;
  std::unique_ptr<SqlStore> sql_;
};

TEST_P(ArtifactMovesTest, MigrateArtifactsMovesLargeRowsOutAndBackIdempotently) {
  Config config = MakeConfig({{"ARTIFACT_INLINE_MAX_BYTES", "4096"}});
  ASSERT_NO_FATAL_FAILURE(OpenFreshStore("sf-artifacts-move"));
  SqlStore* sql = sql_.get();
  std::map<int64_t, std::string> texts = {{1, Text(20000)}, {2, Text(100)}, {3, Text(9000) + "x"}, {4, Text(5000).substr(0, 4096)}};
  for (auto& [id, text] : texts) ASSERT_NO_FATAL_FAILURE(WriteRow(id, Base64Encode(text), R"({"json_valid": false})", 3));
  auto store = OpenObjectStore(config);
  auto preview = MoveArtifacts(*sql, *store, config, ArtifactMoveDirection::kToStore, true, 2);
  ASSERT_TRUE(preview.ok()) << preview.status().ToString();
  EXPECT_EQ(preview->rows, 2);  // 1 and 3; 4 is exactly at the limit and stays
  EXPECT_TRUE((*sql->GetGeneration(1))->compacted.has_value()) << "a preview changes nothing";

  auto moved = MoveArtifacts(*sql, *store, config, ArtifactMoveDirection::kToStore, false, 2);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->rows, 2);
  EXPECT_EQ(moved->text_bytes, static_cast<int64_t>(texts[1].size() + texts[3].size()));
  for (int64_t id : {1, 3}) {
    auto row = **sql->GetGeneration(id);
    EXPECT_FALSE(row.compacted.has_value());
    EXPECT_EQ(nlohmann::json::parse(row.metadata)["finalize_id"], "f" + std::to_string(id)) << "the rest is kept";
    ASSERT_TRUE(ResolveCompacted(store.get(), row).ok());
    EXPECT_EQ(*row.compacted, Base64Encode(texts[id]));
  }
  EXPECT_TRUE((*sql->GetGeneration(4))->compacted.has_value());
  EXPECT_EQ(MoveArtifacts(*sql, *store, config, ArtifactMoveDirection::kToStore, false)->rows, 0) << "idempotent";

  // A finalization rewrites row 3 between the listing and the move back: its metadata changed, so the move
  // leaves it (the optimistic check), and the next run has nothing left for it.
  auto before = **sql->GetGeneration(3);
  GenerationWrite again;
  again.id = 3;
  again.organization_id = 7;
  again.compacted = Base64Encode("newer");
  again.metadata_patch = R"({"artifact": null})";
  again.chunk_count = 4;
  again.compacted_at = "2026-12-03T11:00:00.000Z";
  again.compacted_by = "c2";
  again.finalize_id = "f3-later";
  ASSERT_TRUE(sql->UpsertGeneration(again).ok());
  auto stale = sql->ReplaceCompactedIfUnchanged(before, Base64Encode(texts[3]), before.metadata);
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(*stale);
  EXPECT_EQ(*(*sql->GetGeneration(3))->compacted, Base64Encode("newer"));

  auto back = MoveArtifacts(*sql, *store, config, ArtifactMoveDirection::kToDatabase, false);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->rows, 1);
  auto row1 = **sql->GetGeneration(1);
  EXPECT_EQ(*row1.compacted, Base64Encode(texts[1]));
  EXPECT_TRUE(nlohmann::json::parse(row1.metadata)["artifact"].is_null());
  EXPECT_EQ(MoveArtifacts(*sql, *store, config, ArtifactMoveDirection::kToDatabase, false)->rows, 0);
}

// A row whose text cannot be read (its object deleted, or compacted that is not base64) stopped the run, and
// every rerun started again from the first id and stopped at the same row: the rows after it never moved.
// It is skipped and listed; the others move.
TEST_P(ArtifactMovesTest, ARowWhoseTextCannotBeReadIsSkippedAndTheOthersMove) {
  Config config = MakeConfig({{"ARTIFACT_INLINE_MAX_BYTES", "4096"}});
  ASSERT_NO_FATAL_FAILURE(OpenFreshStore("sf-artifacts-skip"));
  SqlStore* sql = sql_.get();
  ASSERT_NO_FATAL_FAILURE(WriteRow(1, std::string(9000, '!'), "{}", 1));  // not base64
  ASSERT_NO_FATAL_FAILURE(WriteRow(2, Base64Encode(Text(9000)), "{}", 1));
  auto store = OpenObjectStore(config);
  auto out = MoveArtifacts(*sql, *store, config, ArtifactMoveDirection::kToStore, false, 1);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->rows, 1);
  EXPECT_EQ(out->skipped, 1);
  EXPECT_EQ(out->skipped_ids, (std::vector<int64_t>{1}));
  EXPECT_NE(out->first_skip_reason.find("not base64"), std::string::npos) << out->first_skip_reason;
  EXPECT_FALSE((*sql->GetGeneration(2))->compacted.has_value()) << "the row after the bad one moved";

  // Back: row 3 names an object nobody stored (deleted by a lifecycle rule, say).
  ArtifactRef gone{store->Url("artifacts/" + std::string(64, 'a') + ".zst"), std::string(64, 'a'), 10, 10};
  ASSERT_NO_FATAL_FAILURE(WriteRow(3, std::nullopt, R"({"artifact": )" + ArtifactJson(gone) + "}", 1));
  // Row 4 names another bucket (this store's credentials cannot read it): InvalidArgument, which stopped every
  // run at it.
  ArtifactRef elsewhere{"s3://another-bucket/artifacts/" + std::string(64, 'b') + ".zst", std::string(64, 'b'), 10, 10};
  ASSERT_NO_FATAL_FAILURE(WriteRow(4, std::nullopt, R"({"artifact": )" + ArtifactJson(elsewhere) + "}", 1));
  auto back = MoveArtifacts(*sql, *store, config, ArtifactMoveDirection::kToDatabase, false, 1);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->rows, 1);
  EXPECT_EQ(back->skipped_ids, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(*(*sql->GetGeneration(2))->compacted, Base64Encode(Text(9000)));
  EXPECT_FALSE((*sql->GetGeneration(3))->compacted.has_value()) << "left as it was";
}

INSTANTIATE_TEST_SUITE_P(Backends, ArtifactMovesTest, ::testing::Values("sqlite", "postgresql"));

}  // namespace
}  // namespace streamfleet
