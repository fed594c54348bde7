# Shared by the end-to-end scripts (sourced): a WORK directory, PIDS killed and WORK removed on exit (also on
# failure), fail() with the tail of every log, free loopback ports, waiting for HTTP, a throwaway redis-server.
WORK=$(mktemp -d /tmp/streamfleet-e2e.XXXXXX)
PIDS=()
# A sanitizer's report is printed whole (its first lines name the fault; the tail is only the shadow legend).
fail() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.log; do
    echo "--- $f"
    grep -m1 -A60 -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$f" || true
    tail -20 "$f"
  done >&2
  exit 1
}
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 150); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; fail "$1 not up"; }
# start_redis PORT: no persistence, loopback only; returns once it answers PING.
start_redis() {
  redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" &
  PIDS+=($!)
  for _ in $(seq 1 50); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  fail "redis-server on port $1 did not start"
}
# browser_harness: the headless-Chromium harness (tests/e2e/admin: playwright-core from its committed lock
# file, driving Debian's chromium) ready; npm ci only when the installed tree is missing or stale. Sets CHROMIUM.
browser_harness() {
  local dir; dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/admin" && pwd)
  CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
  [ -x "$CHROMIUM" ] || fail "$CHROMIUM not found (scripts/install-deps.sh installs Debian's chromium)"
  if [ ! -f "$dir/node_modules/playwright-core/package.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed"
  fi
}
