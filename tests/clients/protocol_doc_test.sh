#!/usr/bin/env bash
# docs/task-protocol.md's examples against the C++ streamfleetctl and the Python client, on a throwaway
# redis-server on a free loopback port (stopped on exit, also on failure).
# Usage: protocol_doc_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../e2e/lib.sh"

RP=$(free_port)
start_redis "$RP"
# /usr/bin/python3: Debian's python3-redis and python3-protobuf are only visible to it.
cd "$HERE"
STREAMFLEET_TEST_REDIS_PORT=$RP STREAMFLEETCTL="$BUILD/tools/streamfleetctl" STREAMFLEET_ROOT="$HERE/../.." \
  /usr/bin/python3 -m unittest -v protocol_doc_test || fail "protocol_doc_test.py failed"
echo "protocol doc test passed"
