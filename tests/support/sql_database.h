#pragma once
// Test support: a clean database per test case, on SQLite or on the PostgreSQL scripts/test.sh started.
#include <string>

namespace streamfleet::testing {

// backend "sqlite": a DATABASE_URL for a new temp file (its path in *sqlite_path, for the caller to remove).
// backend "postgresql": STREAMFLEET_TEST_PG_URL with every streamfleet table dropped, or "" when that
// variable is not set (the caller fails the test).
std::string FreshDatabaseUrl(const std::string& backend, const std::string& stem, std::string* sqlite_path);

}  // namespace streamfleet::testing
