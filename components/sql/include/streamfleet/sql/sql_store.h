#pragma once
// The SQL store (SOCI), one code path for SQLite (embedded default) and PostgreSQL (production).
//
// Thread-safety: a SqlStore is safe for concurrent use (one session behind a mutex); give hot paths their
// own store. Errors: kUnavailable for connection loss and SQLite "database is locked" (retry), kInternal
// for invalid statements (a bug), kInvalidArgument for a bad DATABASE_URL.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "streamfleet/base/status.h"

namespace soci {
class session;
}

namespace streamfleet {

enum class SqlDialect { kSqlite, kPostgres };

struct MigrationInfo {
  int version;
  std::string name;
  bool applied;
};

// Runs of consecutive chunk seqs, [first, last] each: which chunks a text is made of.
using SeqRuns = std::vector<std::pair<int64_t, int64_t>>;

// What a finalization writes. metadata_patch is a JSON object merged over the stored metadata (top-level
// keys replaced, other keys kept), so keys set by others (used_instruction, initiator, provider, model)
// survive. llm_response: JSON text, or nullopt to leave the column as it is.
struct GenerationWrite {
  int64_t id = 0;
  int64_t organization_id = 0;
  int64_t scenario_id = 0;  // 0 = NULL
  std::optional<std::string> llm_response;
  std::optional<std::string> compacted;  // base64
  std::string metadata_patch = "{}";
  int64_t chunk_count = 0;
  std::string compacted_at;  // ISO-8601 UTC
  std::string compacted_by;
  // Identity of this finalization; replaying the same one is a no-op (idempotent upsert).
  std::string finalize_id;
  // Every run of seqs the text holds (the metadata lists at most a few of them): a stored row is replaced
  // only by a write that holds all of its chunks. nullopt: unknown (compared by chunk_count).
  std::optional<SeqRuns> seq_runs;
  // The generation's attempt whose chunks the text holds (the control hash's `attempt`: 0 until a producer
  // starts the text over, ChunkWriter::Reset). Recorded in the row's metadata as `attempt` when above 0. A
  // row of an earlier attempt is replaced whatever chunks it has (the retry may be shorter); a write of an
  // earlier attempt than the row's never replaces it. nullopt: not known, chunks alone decide.
  std::optional<int64_t> attempt;
};

struct GenerationRow {
  int64_t id = 0;
  int64_t organization_id = 0;
  std::optional<int64_t> scenario_id;
  std::optional<std::string> llm_response;
  std::optional<std::string> compacted;
  std::string metadata;
  int64_t chunk_count = 0;
  std::optional<std::string> compacted_at;
  std::optional<std::string> compacted_by;
};

struct ChunkRow {
  int64_t generation_id = 0;
  int64_t organization_id = 0;
  int64_t scenario_id = 0;
  int64_t seq = 0;
  std::string data;  // raw bytes (stored base64 so any bytes survive both backends)
};

// One Redis hash as hash.sync writes it: the key and its fields as a JSON object of strings.
struct HashSnapshot {
  std::string key;
  std::string fields_json;
};

enum class UpsertResult {
  kWritten,         // the row was inserted or updated
  kAlreadyApplied,  // this finalize_id was committed before: nothing changed
  kKeptFullerRow,   // the stored row has chunks this write lacks (HoldsEveryChunkOf): nothing changed
  kKeptLaterAttempt,  // the stored row holds a later attempt of the generation than this write: nothing changed
  kOwnedElsewhere,  // the row belongs to another organization: nothing changed (a row never changes owner)
};

// The generation rows as the chunk path's finalizer reads and writes them. An interface so that a unit test
// can put a gMock in place of the database (an outage or a refusal at a chosen step) while Redis stays real;
// SqlStore is the implementation.
class GenerationRepository {
 public:
  virtual ~GenerationRepository() = default;
  // Many rows in one transaction, results in input order; all or nothing.
  virtual StatusOr<std::vector<UpsertResult>> UpsertGenerations(const std::vector<GenerationWrite>& writes) = 0;
  virtual StatusOr<std::optional<GenerationRow>> GetGeneration(int64_t id) = 0;
  virtual StatusOr<std::vector<ChunkRow>> GetChunks(int64_t generation_id) = 0;
};

class SqlStore final : public GenerationRepository {
 public:
  // database_url: "sqlite:PATH" (also sqlite://PATH) or "postgresql://..." (libpq URI).
  static StatusOr<std::unique_ptr<SqlStore>> Open(const std::string& database_url);
  // For a process to which the database is optional (some routes or tasks use it): the store, or null with
  // a warning that says `what_fails` (Open does not connect eagerly; this fails only on a malformed URL).
  static std::unique_ptr<SqlStore> OpenOptional(const std::string& database_url, const std::string& what_fails);
  ~SqlStore();
  SqlStore(const SqlStore&) = delete;
  SqlStore& operator=(const SqlStore&) = delete;

  SqlDialect dialect() const { return dialect_; }

  // Applies pending migrations in order, each in its own transaction. Safe to run concurrently from
  // several processes (PostgreSQL: advisory lock; SQLite: BEGIN IMMEDIATE).
  Status Migrate();
  StatusOr<std::vector<MigrationInfo>> Migrations();

  // Idempotent upsert in one transaction (see UpsertResult).
  StatusOr<UpsertResult> UpsertGeneration(const GenerationWrite& w);
  // The same for many rows in ONE transaction (results in input order): all or nothing, and one commit
  // for a whole batch of finalizations.
  StatusOr<std::vector<UpsertResult>> UpsertGenerations(const std::vector<GenerationWrite>& writes) override;
  // Creates the row with initial metadata if it does not exist (the generation.run path); keeps an
  // existing row's metadata keys and adds the given ones. kFailedPrecondition "generation_owned_elsewhere"
  // when the row belongs to another organization (nothing is written).
  Status MergeGenerationMetadata(int64_t id, int64_t org, int64_t scenario, const std::string& metadata_patch);
  StatusOr<std::optional<GenerationRow>> GetGeneration(int64_t id) override;
  // Which of a row's two large columns a read brings; the other is left unset. A generation may be
  // INGEST_MAX_GENERATION_BYTES and its base64 a third more: a reader that serves one of them (the GET of a
  // generation, its live stream) must not hold the other too.
  enum class LargeColumns { kBoth, kResponseOnly, kCompactedOnly, kNeither };
  StatusOr<std::optional<GenerationRow>> ReadGeneration(int64_t id, LargeColumns columns);
  StatusOr<int64_t> CountGenerations();

  // Idempotent (same generation + seq = same row).
  Status UpsertChunks(const std::vector<ChunkRow>& chunks);
  // kDataLoss when a row's data is not base64 (never an empty chunk in its place).
  StatusOr<std::vector<ChunkRow>> GetChunks(int64_t generation_id) override;
  // Deletes one organization's generation_chunks rows of a generation (a producer starting the text over:
  // the next attempt writes seqs from 0 again, and a stored chunk is never overwritten). Returns how many.
  StatusOr<int64_t> DeleteChunksOf(int64_t generation_id, int64_t organization_id);
  // Moving compacted texts between rows and the object store (components/operations artifact_moves.h).
  // Ids after after_id in order, at most limit: with_compacted_over >= 0 those whose compacted is longer than
  // that; -1 those whose compacted is NULL.
  StatusOr<std::vector<int64_t>> GenerationIdsByCompacted(int64_t after_id, int64_t with_compacted_over, int limit);
  // Sets compacted and metadata only if the row's metadata is still `before.metadata` (a finalization in
  // between changes it: then nothing is written and the answer is false).
  StatusOr<bool> ReplaceCompactedIfUnchanged(const GenerationRow& before, const std::optional<std::string>& compacted,
                                             const std::string& metadata);
  // Rows whose compacted value still lives in metadata.compacted (old layout).
  StatusOr<int64_t> MigrateCompactedFromMetadata(bool preview);

  // Deletes generation_chunks rows created before cutoff_iso (ISO-8601 UTC). Returns how many.
  StatusOr<int64_t> PurgeChunksOlderThan(const std::string& cutoff_iso);
  // For the chunk archive (generation_chunks.purge with an object store): the generations after after_id, in
  // order, at most limit, that have rows created before cutoff_iso; and the deletion of those of one
  // generation's rows, among `seqs` (the ones archived), created before cutoff_iso. Returns how many.
  StatusOr<std::vector<int64_t>> GenerationIdsWithChunksBefore(const std::string& cutoff_iso, int64_t after_id,
                                                               int limit);
  StatusOr<int64_t> DeleteChunksBefore(int64_t generation_id, const std::string& cutoff_iso,
                                       const std::vector<int64_t>& seqs);
  // Upserts rows of the one write-behind table, redis_hash_snapshots (key, fields, synced_at), in one
  // transaction; replaying the same snapshot changes nothing but synced_at. The table name is fixed here:
  // no caller-provided name ever reaches SQL.
  Status UpsertHashSnapshots(const std::vector<HashSnapshot>& rows);
  // The stored fields JSON of one key, or nullopt.
  StatusOr<std::optional<std::string>> GetHashSnapshot(const std::string& key);

  Status Ping();

  // Whether a finalization (its chunk count and runs) holds every chunk of the stored row (its count and
  // metadata, whose "seq_runs" the finalizer wrote), so that it may replace the row: by the runs when both
  // are known, by count otherwise. A row whose "seq_runs" is [] holds no chunk any more (a generation
  // restarted from seq 0: any write with runs replaces it).
  static bool HoldsEveryChunkOf(int64_t write_count, const std::optional<SeqRuns>& write_runs, int64_t row_count,
                                const nlohmann::json& row_md);

 private:
  SqlStore(SqlDialect d, std::string connect);
  Status Connect();
  // A generation row read inside a transaction, locked until COMMIT (FOR UPDATE on PostgreSQL; SQLite's
  // BEGIN IMMEDIATE holds the database write lock already).
  struct LockedRow {
    bool exists = false;
    int64_t organization_id = 0;
    nlohmann::json metadata;  // an object; {} when there is no row or no metadata
    int64_t chunk_count = 0;
  };
  LockedRow ReadForUpdate(soci::session& sql, int64_t id);
  StatusOr<std::vector<UpsertResult>> UpsertGenerationsOnce(const std::vector<GenerationWrite>& writes);
  UpsertResult UpsertLocked(soci::session& sql, const GenerationWrite& w);
  Status MergeGenerationMetadataOnce(int64_t id, int64_t org, int64_t scenario, const std::string& patch);
  template <typename F>
  Status Run(const char* what, F&& f);
  std::string Begin() const;
  std::string TsOut(const std::string& col) const;

  SqlDialect dialect_;
  std::string connect_;
  // Per store; for SQLite shared by every store of the process on the same file (SqlStore::Open).
  std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
  std::unique_ptr<soci::session> sql_;  // guarded by mu_; null while disconnected
};

// "postgresql://user:pass@host:port/db?connect_timeout=5" -> libpq "host=... port=... dbname=..." (SOCI 4.0
// does not accept URIs). Percent-escapes in user and password are decoded.
StatusOr<std::string> PostgresUrlToConninfo(const std::string& url);


}  // namespace streamfleet
