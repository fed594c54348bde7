#include "support/sql_database.h"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include "streamfleet/sql/sql_store.h"
#include "streamfleet/testing/redis_server.h"

namespace streamfleet::testing {

std::string FreshDatabaseUrl(const std::string& backend, const std::string& stem, std::string* sqlite_path) {
  if (backend == "sqlite") {
    *sqlite_path = TempPath(stem) + ".db";
    return "sqlite:" + *sqlite_path;
  }
  std::string url = PostgresUrl();
  if (url.empty()) return url;
  soci::session s(soci::postgresql, *PostgresUrlToConninfo(url));
  s << "SET client_min_messages=warning";
  s << "DROP TABLE IF EXISTS scenario_generations, generation_chunks, redis_hash_snapshots, schema_migrations";
  return url;
}

}  // namespace streamfleet::testing
