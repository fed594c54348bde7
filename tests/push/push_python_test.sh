#!/usr/bin/env bash
# Push handlers (queue-worker/push_handlers.h, docs/push-handlers.md) with a handler server written in
# Python's standard library, against a real redis-server and real streamfleet-queue-worker processes: every
# answer class, the signature, Retry-After, a handler that hangs past the deadline, keep-alive, a worker
# SIGKILLed mid-request. Every server is stopped on exit, also on failure.
# Usage: push_python_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../e2e/lib.sh"

RP=$(free_port)
start_redis "$RP"
cd "$HERE"
STREAMFLEET_TEST_REDIS_PORT=$RP STREAMFLEET_BUILD=$BUILD STREAMFLEET_WORK=$WORK \
  /usr/bin/python3 -m unittest -v push_python_test || fail "push handler tests (Python handler) failed"
echo "push handler tests (Python handler) passed"
