#!/usr/bin/env bash
# A live generation in a real browser: headless Chromium (Debian's, through the admin UI's playwright-core
# harness in tests/e2e/admin) opens an EventSource on a signed stream link from another origin (CORS), the
# server ends the stream every second (LIVE_MAX_STREAM_AGE) in the middle of the generation, the browser
# reconnects by itself with Last-Event-ID, and the page's text must equal the row's `compacted`.
# Screenshot: BUILD_DIR/live-screenshots/live-generation.png.
# Usage: browser_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
HARNESS=$(cd "$HERE/../e2e/admin" && pwd)
source "$HERE/../e2e/lib.sh"

browser_harness

RP=$(free_port); IP=$(free_port); PP=$(free_port)
TOKEN=tok-browser-$RANDOM$RANDOM
start_redis "$RP"
export REDIS_PORT=$RP DATABASE_URL="sqlite:$WORK/fleet.db" LOG_LEVEL=warn GENERATION_IDLE_TIMEOUT=5s \
  INGEST_TOKENS="3:$TOKEN" LIVE_CORS_ORIGINS="http://127.0.0.1:$PP" LIVE_MAX_STREAM_AGE=1s
INGEST_LISTEN=127.0.0.1:$IP METRICS_LISTEN=127.0.0.1:0 "$BUILD/ingest/streamfleet-ingest" 2>"$WORK/ingest.log" &
PIDS+=($!)
CONSUMER_NAME=c1 METRICS_LISTEN=127.0.0.1:0 "$BUILD/compactor/streamfleet-compactor" 2>"$WORK/compactor.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$IP/healthz"

SHOTS="$BUILD/live-screenshots"
mkdir -p "$SHOTS"
NODE_PATH="$HARNESS/node_modules" PAGE_TEXT="$WORK/page.txt" INGEST_URL="http://127.0.0.1:$IP" PAGE_PORT=$PP TOKEN=$TOKEN SHOTS=$SHOTS \
  CHROMIUM=$CHROMIUM node "$HERE/browser_test.mjs" >"$WORK/browser.log" 2>&1 || { cat "$WORK/browser.log"; fail "browser test"; }
cat "$WORK/browser.log"
# The page's text, byte for byte, is the row's compacted text.
python3 - "$WORK/fleet.db" "$WORK/page.txt" <<'PY' || fail "the page's text differs from the row"
import base64, sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute("SELECT compacted FROM scenario_generations WHERE id = 930001").fetchone()
page = open(sys.argv[2], "rb").read()
assert row and base64.b64decode(row[0]) == page, (row, page)
print(f"ok: the page's text equals the row's compacted ({len(page)} bytes)")
PY
echo "live browser test passed"
