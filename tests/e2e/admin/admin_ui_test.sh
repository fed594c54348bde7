#!/usr/bin/env bash
# The admin web UI end to end: redis-server + the real ingest, compactor, queue-worker and admin binaries,
# driven in headless Chromium (Debian's /usr/bin/chromium through npm playwright-core, ui_test.mjs).
# Checks: an unauthenticated request is refused, the overview shows a live generation's progress (and
# follows it without a reload), a queue is paused and resumed from the UI (a task waits while paused), a
# poison task's dead letter is requeued from the UI and then processed, back button and reload work.
# Screenshots of every page go to BUILD_DIR/admin-ui-screenshots.
# Usage: admin_ui_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"

browser_harness

RP=$(free_port); IP=$(free_port); AP=$(free_port); MP=$(free_port)
TOKEN=e2e-admin-token-$RANDOM$RANDOM
start_redis "$RP"
CTL="$BUILD/tools/streamfleetctl"
export REDIS_PORT=$RP DATABASE_URL="sqlite:$WORK/fleet.db" LOG_LEVEL=warn CHUNK_STREAMS=1 \
  GENERATION_IDLE_TIMEOUT=120s VISIBILITY_TIMEOUT=1s MAX_DELIVERIES=2

# The poison task: a consumer ("ghost") took it and kept crashing before the worker starts, so it has
# been delivered 3 times; the worker's claim of idle entries dead-letters it (over MAX_DELIVERIES=2).
POISON=$("$CTL" --json enqueue noop --payload '{"poison": true}' | jq -r .id)
Q=streamfleet:queue:default
redis-cli -p "$RP" XGROUP CREATE "$Q" workers 0 MKSTREAM >/dev/null
PID_ENTRY=$(redis-cli -p "$RP" --raw XREADGROUP GROUP workers ghost COUNT 1 STREAMS "$Q" '>' | sed -n 2p)
redis-cli -p "$RP" XCLAIM "$Q" workers ghost 0 "$PID_ENTRY" >/dev/null
redis-cli -p "$RP" XCLAIM "$Q" workers ghost 0 "$PID_ENTRY" >/dev/null

INGEST_LISTEN=127.0.0.1:$IP METRICS_LISTEN=127.0.0.1:0 "$BUILD/ingest/streamfleet-ingest" 2>"$WORK/ingest.log" &
PIDS+=($!)
CONSUMER_NAME=c1 METRICS_LISTEN=127.0.0.1:0 "$BUILD/compactor/streamfleet-compactor" 2>"$WORK/compactor.log" &
PIDS+=($!)
CONSUMER_NAME=w1 METRICS_LISTEN=127.0.0.1:0 "$BUILD/queue-worker/streamfleet-queue-worker" 2>"$WORK/worker.log" &
PIDS+=($!)
# Without a token the admin refuses to start.
if ADMIN_LISTEN=127.0.0.1:0 METRICS_LISTEN=127.0.0.1:0 "$BUILD/admin/streamfleet-admin" 2>"$WORK/admin-notoken.log"; then
  fail "streamfleet-admin started without ADMIN_TOKEN"
fi
grep -q ADMIN_TOKEN "$WORK/admin-notoken.log" || fail "no ADMIN_TOKEN hint when refusing to start"
ADMIN_TOKEN=$TOKEN ADMIN_LISTEN=127.0.0.1:$AP ADMIN_SAMPLE_INTERVAL=500ms METRICS_LISTEN=127.0.0.1:$MP \
  "$BUILD/admin/streamfleet-admin" 2>"$WORK/admin.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$IP/healthz"
wait_http "http://127.0.0.1:$AP/healthz"
# Its metrics port answers /readyz (Redis reachable) and /health, as every process's does.
wait_http "http://127.0.0.1:$MP/readyz"
curl -sf "http://127.0.0.1:$MP/health" | jq -e '.connected == true' >/dev/null || fail "admin /health does not report Redis"

# A live generation: 4 of 10 chunks (total declared up front), the rest arrives while the page is open.
for s in 0 1 2 3; do
  curl -sf -o /dev/null -X POST "http://127.0.0.1:$IP/v1/orgs/5/generations/77/chunks" -H 'Content-Type: application/json' \
    -d "{\"seq\": $s, \"data\": \"part $s \", \"total_chunks\": 10}" || fail "ingest refused chunk $s"
done

SHOTS="$BUILD/admin-ui-screenshots"
rm -rf "$SHOTS"; mkdir -p "$SHOTS"
ADMIN_URL="http://127.0.0.1:$AP" ADMIN_TOKEN=$TOKEN INGEST_URL="http://127.0.0.1:$IP" POISON_ID=$POISON \
  SHOTS=$SHOTS CHROMIUM=$CHROMIUM timeout 90 node "$HERE/ui_test.mjs" || fail "browser test failed"
ls "$SHOTS"/*.png >/dev/null || fail "no screenshots"
# Redis gone: the admin is not ready (it answered 200 whatever Redis did).
redis-cli -p "$RP" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MP/readyz")
[ "$code" = 503 ] || fail "admin /readyz answered $code with Redis down"
echo "admin UI e2e passed; screenshots in $SHOTS"
