#!/usr/bin/env bash
# Push handlers (docs/push-handlers.md) against the real streamfleet-queue-worker: a redis-server here, a Node
# handler server (examples/push-handlers/verify.js) and the workers started by push_node_test.mjs itself
# (it kills and restarts one). No npm packages: node's own test runner, http and crypto.
# Every process is stopped on exit, also on failure (the workers through $WORK/worker.pids).
# Usage: push_node_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../e2e/lib.sh"
cleanup() {
  for p in "${PIDS[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
  if [ -f "$WORK/worker.pids" ]; then while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$WORK/worker.pids"; fi
  rm -rf "$WORK"
}
for f in queue-worker/streamfleet-queue-worker tools/streamfleetctl; do
  [ -x "$BUILD/$f" ] || fail "$BUILD/$f not built"
done
strings "$BUILD/queue-worker/streamfleet-queue-worker" | grep -c X-Streamfleet-Signature >/dev/null ||
  fail "$BUILD/queue-worker/streamfleet-queue-worker has no push handlers (rebuild it)"
RP=$(free_port)
start_redis "$RP"
STREAMFLEET_BUILD=$BUILD REDIS_PORT=$RP WORK=$WORK node --test "$HERE/push_node_test.mjs" >"$WORK/node-test.out" 2>&1 || {
  cat "$WORK/node-test.out"
  fail "push handler tests failed"
}
cat "$WORK/node-test.out"
echo "push handler tests passed"
