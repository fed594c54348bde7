#include "streamfleet/sql/sql_store.h"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <map>
#include <ctime>
#include <nlohmann/json.hpp>

#include "streamfleet/base/codec.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/text.h"
#include "streamfleet/base/time.h"
#include "streamfleet/sql/owned_elsewhere.h"
#include "streamfleet/base/json_input.h"

namespace streamfleet {

namespace {

struct Migration {
  int version;
  const char* name;
  std::vector<std::string> sqlite;
  std::vector<std::string> postgres;
};

// Versioned migrations; never edit an applied one, add a new version.
const std::vector<Migration>& AllMigrations() {
  static const std::vector<Migration> m = {
      {1,
       "scenario_generations and generation_chunks",
       {
           "CREATE TABLE IF NOT EXISTS scenario_generations ("
           " id INTEGER PRIMARY KEY, organization_id INTEGER NOT NULL, scenario_id INTEGER NULL,"
           " llm_response TEXT NULL, compacted TEXT NULL, metadata TEXT NOT NULL DEFAULT '{}',"
           " chunk_count INTEGER NOT NULL DEFAULT 0, compacted_at TEXT NULL, compacted_by TEXT NULL,"
           " created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
           "CREATE INDEX IF NOT EXISTS idx_scenario_generations_chunk_count ON scenario_generations(chunk_count)",
           "CREATE INDEX IF NOT EXISTS idx_scenario_generations_compacted_at ON scenario_generations(compacted_at)",
           "CREATE INDEX IF NOT EXISTS idx_scenario_generations_organization_id ON "
           "scenario_generations(organization_id)",
           "CREATE TABLE IF NOT EXISTS generation_chunks ("
           " generation_id INTEGER NOT NULL, organization_id INTEGER NOT NULL, scenario_id INTEGER NULL,"
           " seq INTEGER NOT NULL, data_base64 TEXT NOT NULL, created_at TEXT NOT NULL,"
           " PRIMARY KEY (generation_id, seq))",
           "CREATE INDEX IF NOT EXISTS idx_generation_chunks_created_at ON generation_chunks(created_at)",
       },
       {
           "CREATE TABLE IF NOT EXISTS scenario_generations ("
           " id BIGINT PRIMARY KEY, organization_id BIGINT NOT NULL, scenario_id BIGINT NULL,"
           " llm_response JSONB NULL, compacted TEXT NULL, metadata JSONB NOT NULL DEFAULT '{}'::jsonb,"
           " chunk_count BIGINT NOT NULL DEFAULT 0, compacted_at TIMESTAMPTZ NULL, compacted_by TEXT NULL,"
           " created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now())",
           "CREATE INDEX IF NOT EXISTS idx_scenario_generations_chunk_count ON scenario_generations(chunk_count)",
           "CREATE INDEX IF NOT EXISTS idx_scenario_generations_compacted_at ON scenario_generations(compacted_at)",
           "CREATE INDEX IF NOT EXISTS idx_scenario_generations_organization_id ON "
           "scenario_generations(organization_id)",
           "CREATE TABLE IF NOT EXISTS generation_chunks ("
           " generation_id BIGINT NOT NULL, organization_id BIGINT NOT NULL, scenario_id BIGINT NULL,"
           " seq BIGINT NOT NULL, data_base64 TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
           " PRIMARY KEY (generation_id, seq))",
           "CREATE INDEX IF NOT EXISTS idx_generation_chunks_created_at ON generation_chunks(created_at)",
       }},
      {2,
       "redis_hash_snapshots (hash.sync write-behind)",
       {
           "CREATE TABLE IF NOT EXISTS redis_hash_snapshots ("
           " key TEXT PRIMARY KEY, fields TEXT NOT NULL, synced_at TEXT NOT NULL)",
       },
       {
           "CREATE TABLE IF NOT EXISTS redis_hash_snapshots ("
           " key TEXT PRIMARY KEY, fields JSONB NOT NULL, synced_at TIMESTAMPTZ NOT NULL)",
       }},
  };
  return m;
}

// SQLite primary result codes (soci-sqlite3.h brings sqlite3.h's macros) that say the database as a whole
// cannot serve the call now, whatever the row: another writer holds the lock (BUSY), or the file or the machine
// refuses (READONLY file or mount, FULL disk or quota, IOERR, CANTOPEN of the file or its -wal/-shm, NOMEM).
// The same row succeeds once that is over, so they are an outage: retried with backoff and reported to the
// health check, never a reason to dead-letter the row. LOCKED is not among them: without a shared cache it is
// a conflict inside one connection, which waiting does not end.
bool IsSqliteOutage(int primary_code) {
  switch (primary_code) {
    case SQLITE_BUSY:
    case SQLITE_READONLY:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
      return true;
    default:
      return false;
  }
}

// The same outages by SQLite's own text (sqlite3_errstr) for an error that carries no result code. Only for
// SQLite: PostgreSQL also says "out of memory", and its classification stays as it was.
bool IsSqliteOutageMessage(const std::string& msg) {
  for (const char* text :
       {"database or disk is full", "disk I/O error", "unable to open database file", "out of memory"}) {
    if (msg.find(text) != std::string::npos) return true;
  }
  return false;
}

Status FromSoci(SqlDialect dialect, const char* what, const soci::soci_error& e) {
  std::string msg = std::string(what) + ": " + e.get_error_message();
  // The phrases below are looked for before PostgreSQL's DETAIL, HINT and CONTEXT lines only: those quote the
  // data (a refused JSON value's text), and a row whose text says "connection" or "busy" must not turn a
  // permanent refusal into an outage retried for ever. (libpq's own messages of a lost connection, several
  // lines long, come before any of them.)
  size_t data_from = msg.size();
  for (const char* field : {"\nDETAIL:", "\nHINT:", "\nCONTEXT:"}) data_from = std::min(data_from, msg.find(field));
  const std::string head = msg.substr(0, data_from);
  // soci 4.0.3 gives SQLite errors no category (get_error_category() is `unknown`), but its SQLite backend
  // throws the database's own failures as sqlite3_soci_error with SQLite's result code: decide by the code,
  // not by the text. The low byte of an extended code is its primary code.
  if (const auto* lite = dynamic_cast<const soci::sqlite3_soci_error*>(&e)) {
    if (IsSqliteOutage(lite->result() & 0xff)) return Status::Unavailable(msg);
  } else if (dialect == SqlDialect::kSqlite && IsSqliteOutageMessage(head)) {
    return Status::Unavailable(msg);
  }
  // SQLite under several writers: retryable, not a failure of the data.
  if (head.find("database is locked") != std::string::npos || head.find("busy") != std::string::npos) {
    return Status::Unavailable(msg);
  }
  // The whole database refuses writes (a read-only SQLite file or mount, a PostgreSQL standby or
  // default_transaction_read_only): an outage until an operator fixes it, not a property of the row.
  if (head.find("readonly database") != std::string::npos || head.find("read-only transaction") != std::string::npos) {
    return Status::Unavailable(msg);
  }
  switch (e.get_error_category()) {
    case soci::soci_error::connection_error:
      return Status::Unavailable(msg);
    case soci::soci_error::constraint_violation:
      return {StatusCode::kAlreadyExists, msg};
    case soci::soci_error::no_privilege:
      return Status::PermissionDenied(msg);
    case soci::soci_error::unknown_transaction_state:
      return Status::Unavailable(msg);
    default:
      break;
  }
  // libpq reports a dropped server as a generic error with these phrases.
  if (head.find("server closed") != std::string::npos || head.find("connection") != std::string::npos ||
      head.find("terminating") != std::string::npos || head.find("could not") != std::string::npos) {
    return Status::Unavailable(msg);
  }
  return Status::Internal(msg);
}

nlohmann::json ParseObject(const std::string& text) {
  auto j = ParseJsonInput(text, kGeneratedJsonLimits);
  if (!j.ok() || !j->is_object()) return nlohmann::json::object();
  return std::move(*j);
}

}  // namespace

StatusOr<std::string> PostgresUrlToConninfo(const std::string& url) {
  std::string rest;
  for (const char* scheme : {"postgresql://", "postgres://"}) {
    if (url.rfind(scheme, 0) == 0) rest = url.substr(std::string(scheme).size());
  }
  if (rest.empty()) return Status::InvalidArgument("DATABASE_URL: expected postgresql://user@host:port/db");
  // A malformed escape ("%zz" in a password) stays as it is: std::stoi threw there, and the exception ended
  // the process at start instead of an error, and "%4x" decoded to the wrong byte.
  auto decode = [](const std::string& s) { return UrlDecode(s, /*plus_is_space=*/false); };
  auto quote = [](const std::string& v) {
    std::string q = "'";
    for (char c : v) {
      if (c == '\\' || c == '\'') q += '\\';
      q += c;
    }
    return q + "'";
  };
  std::string query;
  if (auto qm = rest.find('?'); qm != std::string::npos) {
    query = rest.substr(qm + 1);
    rest = rest.substr(0, qm);
  }
  std::string dbname;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    dbname = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string conninfo;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = auth.find(':');
    conninfo += "user=" + quote(decode(auth.substr(0, colon)));
    if (colon != std::string::npos) conninfo += " password=" + quote(decode(auth.substr(colon + 1)));
  }
  // The host is percent-decoded (a socket directory: %2Fvar%2Frun%2Fpostgresql) and an IPv6 address is in
  // brackets ([::1]:5432), whose colons are not the port's.
  std::string host = rest, port;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("DATABASE_URL: unclosed [ in the host");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return Status::InvalidArgument("DATABASE_URL: expected :port after the ]");
      port = rest.substr(close + 2);
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  host = decode(host);
  if (!host.empty()) conninfo += " host=" + quote(host);
  if (!port.empty()) conninfo += " port=" + quote(port);
  if (!dbname.empty()) conninfo += " dbname=" + quote(decode(dbname));
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    pos = amp == std::string::npos ? query.size() : amp + 1;
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    conninfo += " " + kv.substr(0, eq) + "=" + quote(decode(kv.substr(eq + 1)));
  }
  if (conninfo.find("connect_timeout") == std::string::npos) conninfo += " connect_timeout=5";
  return conninfo;
}

namespace {

// SQLite has one writer per file, and a session that finds the file locked sleeps in its busy handler
// (1, 2, 5, 10, ... ms) instead of waking when the lock is released: with several sessions in one process
// (the compactor's loops) those sleeps, not the writes, made finalize latency. Sessions of one process on
// one file take turns on a mutex instead; other processes still meet the busy handler.
std::shared_ptr<std::mutex> SqliteFileLock(const std::string& path) {
  static std::mutex registry_mu;
  static std::map<std::string, std::weak_ptr<std::mutex>> locks;
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec || key.empty()) key = path;
  std::lock_guard<std::mutex> l(registry_mu);
  for (auto it = locks.begin(); it != locks.end();) it = it->second.expired() ? locks.erase(it) : std::next(it);
  auto& slot = locks[key];
  auto lock = slot.lock();
  if (!lock) {
    lock = std::make_shared<std::mutex>();
    slot = lock;
  }
  return lock;
}

}  // namespace

std::unique_ptr<SqlStore> SqlStore::OpenOptional(const std::string& database_url, const std::string& what_fails) {
  auto s = Open(database_url);
  if (s.ok()) return std::move(*s);
  SF_LOG_WARN("DATABASE_URL: {}; {}", s.status().ToString(), what_fails);
  return nullptr;
}

StatusOr<std::unique_ptr<SqlStore>> SqlStore::Open(const std::string& url) {
  std::unique_ptr<SqlStore> s;
  if (url.rfind("sqlite:", 0) == 0) {
    std::string path = url.substr(7);
    if (path.rfind("//", 0) == 0) path = path.substr(2);
    if (path.empty()) return Status::InvalidArgument("DATABASE_URL: empty sqlite path");
    s.reset(new SqlStore(SqlDialect::kSqlite, "db=" + path + " timeout=10"));
    s->mu_ = SqliteFileLock(path);
  } else if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    auto conninfo = PostgresUrlToConninfo(url);
    if (!conninfo.ok()) return conninfo.status();
    s.reset(new SqlStore(SqlDialect::kPostgres, *conninfo));
  } else {
    return Status::InvalidArgument("DATABASE_URL must start with sqlite: or postgresql://");
  }
  std::lock_guard<std::mutex> l(*s->mu_);
  // An unreachable database is not a startup failure: calls report kUnavailable and reconnect later.
  (void)s->Connect();
  return s;
}

SqlStore::SqlStore(SqlDialect d, std::string connect) : dialect_(d), connect_(std::move(connect)) {}

SqlStore::~SqlStore() = default;

Status SqlStore::Connect() {
  try {
    if (dialect_ == SqlDialect::kSqlite) {
      sql_ = std::make_unique<soci::session>(soci::sqlite3, connect_);
      // WAL + busy timeout: several compactors may write the same file.
      *sql_ << "PRAGMA journal_mode=WAL";
      *sql_ << "PRAGMA synchronous=NORMAL";
      *sql_ << "PRAGMA busy_timeout=10000";
    } else {
      sql_ = std::make_unique<soci::session>(soci::postgresql, connect_);
      *sql_ << "SET client_min_messages=warning";
    }
    return Status::Ok();
  } catch (const soci::soci_error& e) {
    sql_.reset();
    return Status::Unavailable(std::string("database connect: ") + e.get_error_message());
  } catch (const std::exception& e) {
    sql_.reset();
    return Status::Unavailable(std::string("database connect: ") + e.what());
  }
}

template <typename F>
Status SqlStore::Run(const char* what, F&& f) {
  if (!sql_) SF_RETURN_IF_ERROR(Connect());
  try {
    f(*sql_);
    return Status::Ok();
  } catch (const soci::soci_error& e) {
    Status s = FromSoci(dialect_, what, e);
    try {
      *sql_ << "ROLLBACK";
    } catch (...) {
      // Not in a transaction, or the connection is gone; either way nothing to undo.
    }
    if (s.code() == StatusCode::kUnavailable && dialect_ == SqlDialect::kPostgres) sql_.reset();
    return s;
  } catch (const std::exception& e) {
    try {
      *sql_ << "ROLLBACK";
    } catch (...) {
    }
    return Status::Internal(std::string(what) + ": " + e.what());
  }
}

std::string SqlStore::Begin() const {
  // SQLite: take the write lock up front so read-modify-write transactions cannot deadlock on upgrade.
  return dialect_ == SqlDialect::kSqlite ? "BEGIN IMMEDIATE" : "BEGIN";
}

std::string SqlStore::TsOut(const std::string& col) const {
  if (dialect_ == SqlDialect::kSqlite) return col;
  return "to_char(" + col + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

Status SqlStore::Migrate() {
  std::lock_guard<std::mutex> l(*mu_);
  return Run("migrate", [&](soci::session& sql) {
    sql << Begin();
    if (dialect_ == SqlDialect::kPostgres) sql << "SELECT pg_advisory_xact_lock(4242001)";
    sql << "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
           " applied_at TEXT NOT NULL)";
    for (const auto& m : AllMigrations()) {
      int count = 0;
      int version = m.version;
      sql << "SELECT COUNT(*) FROM schema_migrations WHERE version = :v", soci::use(version), soci::into(count);
      if (count > 0) continue;
      for (const auto& stmt : dialect_ == SqlDialect::kSqlite ? m.sqlite : m.postgres) sql << stmt;
      std::string name = m.name;
      std::string now = IsoUtcNow();
      sql << "INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)", soci::use(version),
          soci::use(name), soci::use(now);
    }
    sql << "COMMIT";
  });
}

StatusOr<std::vector<MigrationInfo>> SqlStore::Migrations() {
  std::lock_guard<std::mutex> l(*mu_);
  std::vector<MigrationInfo> out;
  Status s = Run("migrations", [&](soci::session& sql) {
    bool table = false;
    int n = 0;
    if (dialect_ == SqlDialect::kSqlite) {
      sql << "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='schema_migrations'", soci::into(n);
    } else {
      sql << "SELECT COUNT(*) FROM information_schema.tables WHERE table_name='schema_migrations'", soci::into(n);
    }
    table = n > 0;
    for (const auto& m : AllMigrations()) {
      int count = 0;
      int version = m.version;
      if (table) {
        sql << "SELECT COUNT(*) FROM schema_migrations WHERE version = :v", soci::use(version), soci::into(count);
      }
      out.push_back({m.version, m.name, count > 0});
    }
  });
  if (!s.ok()) return s;
  return out;
}

StatusOr<UpsertResult> SqlStore::UpsertGeneration(const GenerationWrite& w) {
  auto r = UpsertGenerations({w});
  if (!r.ok()) return r.status();
  return r->at(0);
}

StatusOr<std::vector<UpsertResult>> SqlStore::UpsertGenerations(const std::vector<GenerationWrite>& writes) {
  // Two finalizers may both find no row and both INSERT; the loser sees a unique violation and retries
  // the whole transaction, which then finds the row (and its finalize id).
  for (int attempt = 0;; ++attempt) {
    auto r = UpsertGenerationsOnce(writes);
    if (r.ok() || r.status().code() != StatusCode::kAlreadyExists || attempt >= 3) return r;
  }
}

SqlStore::LockedRow SqlStore::ReadForUpdate(soci::session& sql, int64_t id) {
  LockedRow row;
  std::string metadata;
  soci::indicator mind = soci::i_null;
  long long count = 0, org = 0;
  std::string lock = dialect_ == SqlDialect::kPostgres ? " FOR UPDATE" : "";
  std::string meta_col = dialect_ == SqlDialect::kPostgres ? "metadata::text" : "metadata";
  sql << "SELECT " + meta_col + ", chunk_count, organization_id FROM scenario_generations WHERE id = :id" + lock,
      soci::use(id), soci::into(metadata, mind), soci::into(count), soci::into(org);
  row.exists = sql.got_data();
  row.organization_id = org;
  row.metadata = row.exists && mind == soci::i_ok ? ParseObject(metadata) : nlohmann::json::object();
  row.chunk_count = count;
  return row;
}

namespace {

// [first, last] runs from a row's metadata ("seq_runs", written by the finalizer); nullopt when it has none
// (a row from before them, one with more runs than are listed, or metadata written by hand).
std::optional<SeqRuns> StoredSeqRuns(const nlohmann::json& md) {
  auto it = md.find("seq_runs");
  if (it == md.end() || !it->is_array()) return std::nullopt;
  SeqRuns runs;
  for (const auto& r : *it) {
    if (!r.is_array() || r.size() != 2 || !r[0].is_number_integer() || !r[1].is_number_integer()) return std::nullopt;
    runs.emplace_back(r[0].get<int64_t>(), r[1].get<int64_t>());
  }
  return runs;
}

// The attempt a row's text belongs to (metadata "attempt", written above 0 only); anything else is 0.
int64_t RowAttempt(const nlohmann::json& md) {
  auto it = md.find("attempt");
  return it != md.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

}  // namespace

bool SqlStore::HoldsEveryChunkOf(int64_t write_count, const std::optional<SeqRuns>& write_runs, int64_t row_count,
                                 const nlohmann::json& row_md) {
  auto had = StoredSeqRuns(row_md);
  if (!write_runs || !had) return row_count <= write_count;  // by count alone
  // Every run of the row lies within one run of the write: the write's run that starts last at or before
  // the row's run must reach its end (the finalizer's runs are maximal, so a run of the row cannot be held
  // by two of the write's together). Exact runs on both sides: the count follows.
  SeqRuns have = *write_runs;
  std::sort(have.begin(), have.end());
  for (const auto& [first, last] : *had) {
    auto it = std::upper_bound(have.begin(), have.end(), std::make_pair(first, std::numeric_limits<int64_t>::max()));
    if (it == have.begin() || std::prev(it)->second < last) return false;
  }
  return true;
}

StatusOr<std::vector<UpsertResult>> SqlStore::UpsertGenerationsOnce(const std::vector<GenerationWrite>& writes) {
  std::lock_guard<std::mutex> l(*mu_);
  std::vector<UpsertResult> results(writes.size(), UpsertResult::kAlreadyApplied);
  // Rows are locked in id order, so two compactors committing overlapping batches on PostgreSQL wait for
  // each other instead of deadlocking.
  std::vector<size_t> order(writes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return writes[a].id < writes[b].id; });
  Status s = Run("upsert generations", [&](soci::session& sql) {
    // One transaction for the batch: on SQLite one WAL commit instead of one per generation.
    sql << Begin();
    for (size_t i : order) results[i] = UpsertLocked(sql, writes[i]);
    sql << "COMMIT";
  });
  if (!s.ok()) return s;
  return results;
}

UpsertResult SqlStore::UpsertLocked(soci::session& sql, const GenerationWrite& w) {
  LockedRow row = ReadForUpdate(sql, w.id);
  // A generation id belongs to the organization whose row it is: another organization's finalization of the
  // same id (its own chunks, or a hand-written envelope) never replaces or re-owns it.
  if (row.exists && row.organization_id != w.organization_id) return UpsertResult::kOwnedElsewhere;
  nlohmann::json patch = ParseObject(w.metadata_patch);
  // Which attempt of the generation each side holds decides first: a retry from scratch starts again at seq
  // 0 and may write fewer chunks than the attempt it replaces, and a finalization of a dead attempt may
  // commit after the retry's (it read its buffer before the reset). A row without the field is attempt 0.
  int64_t row_attempt = row.exists ? RowAttempt(row.metadata) : 0;
  if (row.exists && w.attempt && *w.attempt < row_attempt) return UpsertResult::kKeptLaterAttempt;
  bool later_attempt = row.exists && w.attempt && *w.attempt > row_attempt;
  if (row.exists && !later_attempt && !HoldsEveryChunkOf(w.chunk_count, w.seq_runs, row.chunk_count, row.metadata)) {
    // A buffer only grows, unless it was deleted or expired and a late chunk re-created it: never replace a
    // row with a write that lacks some of its chunks. Checked here, under the row lock, not before the write.
    return UpsertResult::kKeptFullerRow;
  }
  if (!w.finalize_id.empty() && row.metadata.value("finalize_id", std::string()) == w.finalize_id) {
    return UpsertResult::kAlreadyApplied;  // this finalization was already applied: replay changes nothing
  }
  nlohmann::json& merged = row.metadata;
  for (auto it = patch.begin(); it != patch.end(); ++it) merged[it.key()] = it.value();
  if (!w.finalize_id.empty()) merged["finalize_id"] = w.finalize_id;
  std::string merged_text = merged.dump();
  int64_t id = w.id;
  int64_t org = w.organization_id;
  int64_t scenario = w.scenario_id;
  soci::indicator sind = scenario > 0 ? soci::i_ok : soci::i_null;
  std::string llm = w.llm_response.value_or("");
  soci::indicator lind = w.llm_response ? soci::i_ok : soci::i_null;
  std::string compacted = w.compacted.value_or("");
  soci::indicator cind = w.compacted ? soci::i_ok : soci::i_null;
  int64_t chunk_count = w.chunk_count;
  std::string at = w.compacted_at;
  std::string by = w.compacted_by;
  std::string now = IsoUtcNow();
  if (row.exists) {
    // llm_response stays unchanged when this finalization could not decode JSON.
    std::string set_llm = w.llm_response ? "llm_response = :llm, " : "";
    // The organization is part of the condition, never of the SET: the row keeps its owner whatever happens.
    std::string q = "UPDATE scenario_generations SET scenario_id = :sc, " + set_llm +
                    "compacted = :cmp, metadata = :md, chunk_count = :cc, compacted_at = :at, "
                    "compacted_by = :by, updated_at = :now WHERE id = :id AND organization_id = :org";
    if (w.llm_response) {
      sql << q, soci::use(scenario, sind), soci::use(llm, lind), soci::use(compacted, cind),
          soci::use(merged_text), soci::use(chunk_count), soci::use(at), soci::use(by), soci::use(now),
          soci::use(id), soci::use(org);
    } else {
      sql << q, soci::use(scenario, sind), soci::use(compacted, cind), soci::use(merged_text),
          soci::use(chunk_count), soci::use(at), soci::use(by), soci::use(now), soci::use(id), soci::use(org);
    }
  } else {
    sql << "INSERT INTO scenario_generations (id, organization_id, scenario_id, llm_response, compacted,"
           " metadata, chunk_count, compacted_at, compacted_by, created_at, updated_at) VALUES"
           " (:id, :org, :sc, :llm, :cmp, :md, :cc, :at, :by, :now1, :now2)",
        soci::use(id), soci::use(org), soci::use(scenario, sind), soci::use(llm, lind), soci::use(compacted, cind),
        soci::use(merged_text), soci::use(chunk_count), soci::use(at), soci::use(by), soci::use(now),
        soci::use(now);
  }
  return UpsertResult::kWritten;
}

Status SqlStore::MergeGenerationMetadata(int64_t id, int64_t org, int64_t scenario, const std::string& patch_text) {
  for (int attempt = 0;; ++attempt) {
    Status s = MergeGenerationMetadataOnce(id, org, scenario, patch_text);
    if (s.ok() || s.code() != StatusCode::kAlreadyExists || attempt >= 3) return s;
  }
}

Status SqlStore::MergeGenerationMetadataOnce(int64_t id, int64_t org, int64_t scenario,
                                             const std::string& patch_text) {
  std::lock_guard<std::mutex> l(*mu_);
  bool owned_elsewhere = false;
  Status s = Run("merge metadata", [&](soci::session& sql) {
    sql << Begin();
    LockedRow row = ReadForUpdate(sql, id);
    if (row.exists && row.organization_id != org) {
      owned_elsewhere = true;
      sql << "ROLLBACK";
      return;
    }
    nlohmann::json patch = ParseObject(patch_text);
    for (auto it = patch.begin(); it != patch.end(); ++it) row.metadata[it.key()] = it.value();
    std::string md = row.metadata.dump();
    std::string now = IsoUtcNow();
    int64_t rid = id, o = org, sc = scenario;
    soci::indicator sind = sc > 0 ? soci::i_ok : soci::i_null;
    if (row.exists) {
      sql << "UPDATE scenario_generations SET metadata = :md, updated_at = :now WHERE id = :id AND organization_id = :org",
          soci::use(md), soci::use(now), soci::use(rid), soci::use(o);
    } else {
      sql << "INSERT INTO scenario_generations (id, organization_id, scenario_id, metadata, chunk_count,"
             " created_at, updated_at) VALUES (:id, :org, :sc, :md, 0, :n1, :n2)",
          soci::use(rid), soci::use(o), soci::use(sc, sind), soci::use(md), soci::use(now), soci::use(now);
    }
    sql << "COMMIT";
  });
  if (!s.ok()) return s;
  if (owned_elsewhere) {
    return OwnedElsewhereError(id);
  }
  return Status::Ok();
}

StatusOr<std::optional<GenerationRow>> SqlStore::GetGeneration(int64_t id) {
  return ReadGeneration(id, LargeColumns::kBoth);
}

StatusOr<std::optional<GenerationRow>> SqlStore::ReadGeneration(int64_t id, LargeColumns columns) {
  std::lock_guard<std::mutex> l(*mu_);
  std::optional<GenerationRow> out;
  Status s = Run("get generation", [&](soci::session& sql) {
    GenerationRow r;
    long long org = 0, sc = 0, cc = 0;
    std::string llm, cmp, md, at, by;
    soci::indicator sind, lind, cind, mind, aind, bind;
    std::string text = dialect_ == SqlDialect::kPostgres ? "::text" : "";
    int64_t rid = id;
    // A column left out is read as a NULL of its type (both dialects), so the statement keeps its shape.
    const bool with_response = columns == LargeColumns::kBoth || columns == LargeColumns::kResponseOnly;
    const bool with_compacted = columns == LargeColumns::kBoth || columns == LargeColumns::kCompactedOnly;
    const std::string response = with_response ? "llm_response" + text : "CAST(NULL AS TEXT)";
    const std::string compacted = with_compacted ? "compacted" : "CAST(NULL AS TEXT)";
    sql << "SELECT organization_id, scenario_id, " + response + ", " + compacted + ", metadata" + text +
               ", chunk_count, " + TsOut("compacted_at") + ", compacted_by FROM scenario_generations WHERE id = :id",
        soci::use(rid), soci::into(org), soci::into(sc, sind), soci::into(llm, lind), soci::into(cmp, cind),
        soci::into(md, mind), soci::into(cc), soci::into(at, aind), soci::into(by, bind);
    if (!sql.got_data()) return;
    r.id = id;
    r.organization_id = org;
    if (sind == soci::i_ok) r.scenario_id = sc;
    if (lind == soci::i_ok) r.llm_response = llm;
    if (cind == soci::i_ok) r.compacted = cmp;
    r.metadata = mind == soci::i_ok ? md : "{}";
    r.chunk_count = cc;
    if (aind == soci::i_ok) r.compacted_at = at;
    if (bind == soci::i_ok) r.compacted_by = by;
    out = std::move(r);
  });
  if (!s.ok()) return s;
  return out;
}

StatusOr<std::vector<int64_t>> SqlStore::GenerationIdsByCompacted(int64_t after_id, int64_t with_compacted_over,
                                                                  int limit) {
  std::lock_guard<std::mutex> l(*mu_);
  std::vector<int64_t> ids;
  Status s = Run("list generations by compacted", [&](soci::session& sql) {
    ids.clear();
    long long a = after_id, over = with_compacted_over, n = limit;
    std::string cond = with_compacted_over >= 0 ? "compacted IS NOT NULL AND LENGTH(compacted) > :o" : "compacted IS NULL";
    std::string q = "SELECT id FROM scenario_generations WHERE id > :a AND " + cond + " ORDER BY id LIMIT :n";
    // rowset<long long>, not of rows: SOCI reads SQLite's INTEGER columns of a row as int (ids past 2^31 wrap).
    soci::rowset<long long> rs = with_compacted_over >= 0
                                     ? (sql.prepare << q, soci::use(a), soci::use(over), soci::use(n))
                                     : (sql.prepare << q, soci::use(a), soci::use(n));
    for (long long id : rs) ids.push_back(id);
  });
  if (!s.ok()) return s;
  return ids;
}

StatusOr<bool> SqlStore::ReplaceCompactedIfUnchanged(const GenerationRow& before,
                                                    const std::optional<std::string>& compacted,
                                                    const std::string& metadata) {
  std::lock_guard<std::mutex> l(*mu_);
  bool changed = false;
  Status s = Run("replace compacted", [&](soci::session& sql) {
    // PostgreSQL compares the JSONB values (the text read back is jsonb's own rendering), SQLite the text.
    std::string md = dialect_ == SqlDialect::kPostgres ? "CAST(:m AS JSONB)" : ":m";
    std::string old = dialect_ == SqlDialect::kPostgres ? "CAST(:old AS JSONB)" : ":old";
    std::string c = compacted.value_or("");
    soci::indicator cind = compacted ? soci::i_ok : soci::i_null;
    std::string m = metadata, o = before.metadata, now = IsoUtcNow();
    long long id = before.id;
    soci::statement st = (sql.prepare << "UPDATE scenario_generations SET compacted = :c, metadata = " + md +
                                             ", updated_at = :now WHERE id = :id AND metadata = " + old,
                          soci::use(c, cind), soci::use(m), soci::use(now), soci::use(id), soci::use(o));
    st.execute(true);
    changed = st.get_affected_rows() == 1;
  });
  if (!s.ok()) return s;
  return changed;
}

StatusOr<int64_t> SqlStore::CountGenerations() {
  std::lock_guard<std::mutex> l(*mu_);
  long long n = 0;
  Status s = Run("count generations", [&](soci::session& sql) {
    sql << "SELECT COUNT(*) FROM scenario_generations", soci::into(n);
  });
  if (!s.ok()) return s;
  return static_cast<int64_t>(n);
}

Status SqlStore::UpsertChunks(const std::vector<ChunkRow>& chunks) {
  if (chunks.empty()) return Status::Ok();
  std::lock_guard<std::mutex> l(*mu_);
  return Run("upsert chunks", [&](soci::session& sql) {
    sql << Begin();
    for (const auto& c : chunks) {
      int64_t g = c.generation_id, o = c.organization_id, sc = c.scenario_id, seq = c.seq;
      soci::indicator sind = sc > 0 ? soci::i_ok : soci::i_null;
      std::string data = Base64Encode(c.data);
      std::string now = IsoUtcNow();
      sql << "INSERT INTO generation_chunks (generation_id, organization_id, scenario_id, seq, data_base64,"
             " created_at) VALUES (:g, :o, :s, :q, :d, :t) ON CONFLICT (generation_id, seq) DO NOTHING",
          soci::use(g), soci::use(o), soci::use(sc, sind), soci::use(seq), soci::use(data), soci::use(now);
    }
    sql << "COMMIT";
  });
}

StatusOr<int64_t> SqlStore::DeleteChunksOf(int64_t generation_id, int64_t organization_id) {
  std::lock_guard<std::mutex> l(*mu_);
  int64_t deleted = 0;
  Status s = Run("delete chunks", [&](soci::session& sql) {
    long long g = generation_id, o = organization_id;
    soci::statement st = (sql.prepare << "DELETE FROM generation_chunks WHERE generation_id = :g AND organization_id = :o",
                          soci::use(g), soci::use(o));
    st.execute(true);
    deleted = st.get_affected_rows();
  });
  if (!s.ok()) return s;
  return deleted;
}

StatusOr<std::vector<ChunkRow>> SqlStore::GetChunks(int64_t generation_id) {
  std::lock_guard<std::mutex> l(*mu_);
  std::vector<ChunkRow> out;
  int64_t corrupt = -1;  // the seq of a row whose data is not base64
  Status s = Run("get chunks", [&](soci::session& sql) {
    int64_t g = generation_id;
    // Typed intos, not a generic row: SOCI describes SQLite's INTEGER columns as int and truncates them there
    // (an organization id past 2^31 read as another organization's).
    long long org = 0, scenario = 0, seq = 0;
    soci::indicator scenario_ind = soci::i_ok;
    std::string data;
    soci::statement st = (sql.prepare << "SELECT organization_id, scenario_id, seq, data_base64 FROM "
                                         "generation_chunks WHERE generation_id = :g ORDER BY seq",
                          soci::use(g), soci::into(org), soci::into(scenario, scenario_ind), soci::into(seq),
                          soci::into(data));
    st.execute();
    while (st.fetch()) {
      ChunkRow c;
      c.generation_id = generation_id;
      c.organization_id = org;
      c.scenario_id = scenario_ind == soci::i_null ? 0 : scenario;
      c.seq = seq;
      auto d = Base64Decode(data);
      if (!d) {
        corrupt = c.seq;
        continue;
      }
      c.data = std::move(*d);
      out.push_back(std::move(c));
    }
  });
  if (!s.ok()) return s;
  // Never an empty chunk in its place: a replay would compact a wrong text, an archive would keep one.
  if (corrupt >= 0) {
    return Status::DataLoss("generation_chunks row " + std::to_string(generation_id) + "/" + std::to_string(corrupt) +
                            ": data_base64 is not base64");
  }
  return out;
}

StatusOr<int64_t> SqlStore::MigrateCompactedFromMetadata(bool preview) {
  // A page of rows at a time, each page its own short transaction: the whole table read into memory at once
  // held every old-layout blob together (the process could run out of memory), and one transaction over it
  // held SQLite's write lock for the whole run, stalling every compactor. Each row is written only if its
  // metadata is still what was read (as ReplaceCompactedIfUnchanged): a finalization committed in between keeps
  // its newer metadata (finalize_id, seq_runs) instead of losing it to the stale copy.
  constexpr int kPage = 32;
  const bool pg = dialect_ == SqlDialect::kPostgres;
  const std::string text = pg ? "::text" : "";
  const std::string md_param = pg ? "CAST(:m AS JSONB)" : ":m";
  const std::string old_param = pg ? "CAST(:old AS JSONB)" : ":old";
  int64_t moved = 0, candidates = 0;
  for (long long after = std::numeric_limits<long long>::min();;) {
    std::lock_guard<std::mutex> l(*mu_);
    std::vector<std::pair<long long, std::string>> rows;
    int64_t page_moved = 0, page_candidates = 0;
    Status s = Run("migrate compacted", [&](soci::session& sql) {
      rows.clear();
      page_moved = 0;
      page_candidates = 0;
      // Typed intos: SOCI reads SQLite's INTEGER columns of a generic row as int, and the UPDATE below by a
      // wrapped id wrote another generation's row.
      long long id = 0;
      std::string md;
      soci::indicator md_ind = soci::i_ok;
      soci::statement st =
          (sql.prepare << "SELECT id, metadata" + text + " FROM scenario_generations WHERE id > :after AND metadata" +
                              text + " LIKE '%\"compacted\"%' ORDER BY id LIMIT " + std::to_string(kPage),
           soci::use(after), soci::into(id), soci::into(md, md_ind));
      st.execute();
      while (st.fetch()) rows.emplace_back(id, md_ind == soci::i_null ? "{}" : md);
      // The rows that still hold their text in metadata (LIKE also matches the word inside a value).
      struct OldLayout {
        long long id;
        std::string* read_as;  // the metadata text as read: the write's condition
        nlohmann::json metadata;
      };
      std::vector<OldLayout> old_layout;
      for (auto& [rid, md_old] : rows) {
        nlohmann::json j = ParseObject(md_old);
        if (j.contains("compacted") && j["compacted"].is_string()) old_layout.push_back({rid, &md_old, std::move(j)});
      }
      page_candidates = static_cast<int64_t>(old_layout.size());
      if (preview || old_layout.empty()) return;
      sql << Begin();
      for (auto& row : old_layout) {
        std::string blob = row.metadata["compacted"].get<std::string>();
        row.metadata.erase("compacted");
        std::string md_new = row.metadata.dump();
        // Only fill the column if it is empty: a newer compaction already wrote the real value.
        soci::statement up = (sql.prepare << "UPDATE scenario_generations SET compacted = COALESCE(compacted, :b), "
                                             "metadata = " + md_param + " WHERE id = :id AND metadata = " + old_param,
                              soci::use(blob), soci::use(md_new), soci::use(row.id), soci::use(*row.read_as));
        up.execute(true);
        page_moved += up.get_affected_rows();
      }
      sql << "COMMIT";
    });
    if (!s.ok()) return s;
    moved += page_moved;
    candidates += page_candidates;
    if (rows.empty()) break;
    after = rows.back().first;
    if (rows.size() < static_cast<size_t>(kPage)) break;
  }
  if (preview) return candidates;
  if (candidates > moved) {
    SF_LOG_WARN("migrate compacted: {} rows changed while they were migrated and were left as they are; run the "
                "migration again",
                candidates - moved);
  }
  return moved;
}

StatusOr<int64_t> SqlStore::PurgeChunksOlderThan(const std::string& cutoff_iso) {
  std::lock_guard<std::mutex> l(*mu_);
  int64_t deleted = 0;
  Status s = Run("purge chunks", [&](soci::session& sql) {
    std::string t = cutoff_iso;
    // SQLite keeps ISO-8601 UTC text (ordered like the times it spells); PostgreSQL a TIMESTAMPTZ.
    std::string cutoff = dialect_ == SqlDialect::kPostgres ? "CAST(:t AS TIMESTAMPTZ)" : ":t";
    soci::statement st = (sql.prepare << "DELETE FROM generation_chunks WHERE created_at < " + cutoff, soci::use(t));
    st.execute(true);
    deleted = st.get_affected_rows();
  });
  if (!s.ok()) return s;
  return deleted;
}

StatusOr<std::vector<int64_t>> SqlStore::GenerationIdsWithChunksBefore(const std::string& cutoff_iso,
                                                                       int64_t after_id, int limit) {
  std::lock_guard<std::mutex> l(*mu_);
  std::vector<int64_t> ids;
  Status s = Run("list generations with old chunks", [&](soci::session& sql) {
    ids.clear();
    std::string t = cutoff_iso;
    long long a = after_id, n = limit;
    std::string cutoff = dialect_ == SqlDialect::kPostgres ? "CAST(:t AS TIMESTAMPTZ)" : ":t";
    soci::rowset<long long> rs =
        (sql.prepare << "SELECT DISTINCT generation_id FROM generation_chunks WHERE created_at < " + cutoff +
                            " AND generation_id > :a ORDER BY generation_id LIMIT :n",
         soci::use(t), soci::use(a), soci::use(n));
    for (long long id : rs) ids.push_back(id);  // rowset<long long>: see GenerationIdsByCompacted
  });
  if (!s.ok()) return s;
  return ids;
}

StatusOr<int64_t> SqlStore::DeleteChunksBefore(int64_t generation_id, const std::string& cutoff_iso,
                                               const std::vector<int64_t>& seqs) {
  std::lock_guard<std::mutex> l(*mu_);
  int64_t deleted = 0;
  Status s = Run("delete archived chunks", [&](soci::session& sql) {
    deleted = 0;
    std::string t = cutoff_iso;
    long long g = generation_id;
    std::string cutoff = dialect_ == SqlDialect::kPostgres ? "CAST(:t AS TIMESTAMPTZ)" : ":t";
    // Only the rows named (those archived), in lists of integers formatted here: never a caller's text in SQL.
    constexpr size_t kPerStatement = 500;
    for (size_t at = 0; at < seqs.size(); at += kPerStatement) {
      std::string in;
      for (size_t k = at; k < std::min(seqs.size(), at + kPerStatement); ++k) {
        in += (in.empty() ? "" : ",") + std::to_string(seqs[k]);
      }
      soci::statement st = (sql.prepare << "DELETE FROM generation_chunks WHERE generation_id = :g AND created_at < " +
                                               cutoff + " AND seq IN (" + in + ")",
                            soci::use(g), soci::use(t));
      st.execute(true);
      deleted += st.get_affected_rows();
    }
  });
  if (!s.ok()) return s;
  return deleted;
}

Status SqlStore::UpsertHashSnapshots(const std::vector<HashSnapshot>& rows) {
  if (rows.empty()) return Status::Ok();
  std::lock_guard<std::mutex> l(*mu_);
  return Run("upsert hash snapshots", [&](soci::session& sql) {
    std::string fields = dialect_ == SqlDialect::kPostgres ? "CAST(:f AS JSONB)" : ":f";
    std::string at = dialect_ == SqlDialect::kPostgres ? "CAST(:t AS TIMESTAMPTZ)" : ":t";
    std::string now = IsoUtcNow();
    sql << Begin();
    for (const auto& r : rows) {
      std::string key = r.key, json = r.fields_json;
      sql << "INSERT INTO redis_hash_snapshots (key, fields, synced_at) VALUES (:k, " + fields + ", " + at +
                 ") ON CONFLICT (key) DO UPDATE SET fields = excluded.fields, synced_at = excluded.synced_at",
          soci::use(key), soci::use(json), soci::use(now);
    }
    sql << "COMMIT";
  });
}

StatusOr<std::optional<std::string>> SqlStore::GetHashSnapshot(const std::string& key) {
  std::lock_guard<std::mutex> l(*mu_);
  std::optional<std::string> out;
  Status s = Run("get hash snapshot", [&](soci::session& sql) {
    std::string k = key, fields;
    soci::indicator ind = soci::i_null;
    std::string text = dialect_ == SqlDialect::kPostgres ? "::text" : "";
    sql << "SELECT fields" + text + " FROM redis_hash_snapshots WHERE key = :k", soci::use(k),
        soci::into(fields, ind);
    if (sql.got_data() && ind == soci::i_ok) out = fields;
  });
  if (!s.ok()) return s;
  return out;
}

Status SqlStore::Ping() {
  std::lock_guard<std::mutex> l(*mu_);
  return Run("ping", [&](soci::session& sql) {
    int one = 0;
    sql << "SELECT 1", soci::into(one);
  });
}

}  // namespace streamfleet
