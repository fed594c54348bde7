#!/usr/bin/env bash
# clients/python against a real redis-server, two real streamfleet-queue-workers and a real streamfleet-ingest
# (signed live-stream links; tests/clients/fleet.sh), a TLS-only redis-server and a sentinel (from_env's TLS and
# Sentinel variables), then its unit tests. Every server is stopped on exit, also
# on failure.
# Usage: python_client_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../e2e/lib.sh"
source "$HERE/fleet.sh"

start_fleet "$BUILD"
start_ingest "$BUILD"
start_tls_and_sentinel
cd "$HERE/../../clients/python"
# /usr/bin/python3: Debian's python3-redis and python3-protobuf are only visible to it. -t .: the tests import
# streamfleet_client from this directory, as a user with it on PYTHONPATH would.
STREAMFLEET_TEST_REDIS_PORT=$RP STREAMFLEET_TEST_INGEST_URL=$INGEST_URL STREAMFLEET_TEST_INGEST_ORG=$INGEST_ORG \
STREAMFLEET_TEST_INGEST_TOKEN=$INGEST_TOKEN STREAMFLEET_TEST_TLS_PORT=$TLS_PORT STREAMFLEET_TEST_TLS_CERTS=$TLS_CERTS \
STREAMFLEET_TEST_SENTINEL_PORT=$SENTINEL_PORT /usr/bin/python3 -m unittest discover -v -s tests -t . \
  || fail "clients/python tests failed"
echo "python client tests passed"
