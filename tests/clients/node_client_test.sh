#!/usr/bin/env bash
# clients/node against a real redis-server, two real streamfleet-queue-workers and a real streamfleet-ingest
# (signed live-stream links; tests/clients/fleet.sh), a TLS-only redis-server and a sentinel (fromEnv's TLS and
# Sentinel variables), plus its unit tests. Installs the pinned npm packages first
# (npm ci: package-lock.json, into the gitignored clients/node/node_modules). Every server is stopped on exit, also
# on failure.
# Usage: node_client_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../e2e/lib.sh"
source "$HERE/fleet.sh"

NODE_DIR="$HERE/../../clients/node"
(cd "$NODE_DIR" && npm ci --no-audit --no-fund >"$WORK/npm.log" 2>&1) || fail "npm ci in clients/node failed"
start_fleet "$BUILD"
start_ingest "$BUILD"
start_tls_and_sentinel
cd "$NODE_DIR"
STREAMFLEET_TEST_REDIS_PORT=$RP STREAMFLEET_TEST_INGEST_URL=$INGEST_URL STREAMFLEET_TEST_INGEST_ORG=$INGEST_ORG \
STREAMFLEET_TEST_INGEST_TOKEN=$INGEST_TOKEN STREAMFLEET_TEST_TLS_PORT=$TLS_PORT STREAMFLEET_TEST_TLS_CERTS=$TLS_CERTS \
STREAMFLEET_TEST_SENTINEL_PORT=$SENTINEL_PORT node --test test/ || fail "clients/node tests failed"
echo "node client tests passed"
