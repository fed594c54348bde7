#!/usr/bin/env bash
# End to end with the real binaries: redis-server + ingest + 2 compactors + queue-worker on free loopback
# ports. Checks: generations become byte-exact rows, promtool accepts every process's /metrics, readiness,
# a compactor SIGKILLed mid-run loses nothing, every generation.compacted event reaches a webhook receiver
# (EVENTS_WEBHOOK_URL), and SIGTERM makes every process exit 0 within its grace period.
# Usage: fleet_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"

RP=$(free_port); IP=$(free_port); MI=$(free_port); MC1=$(free_port); MC2=$(free_port); MW=$(free_port)
HP=$(free_port)
# The webhook receiver: appends every POSTed body as one line.
python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "ab") as f: f.write(body + b"\n")
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$HP" "$WORK/hooks.ndjson" 2>"$WORK/hooks.log" &
PIDS+=($!)
start_redis "$RP"
export REDIS_PORT=$RP DATABASE_URL="sqlite:$WORK/fleet.db" GENERATION_IDLE_TIMEOUT=2s VISIBILITY_TIMEOUT=1s LOG_LEVEL=warn
INGEST_LISTEN=127.0.0.1:$IP METRICS_LISTEN=127.0.0.1:$MI "$BUILD/ingest/streamfleet-ingest" 2>"$WORK/ingest.log" &
INGEST=$!; PIDS+=($INGEST)
CONSUMER_NAME=c1 METRICS_LISTEN=127.0.0.1:$MC1 "$BUILD/compactor/streamfleet-compactor" 2>"$WORK/c1.log" &
C1=$!; PIDS+=($C1)
CONSUMER_NAME=c2 METRICS_LISTEN=127.0.0.1:$MC2 "$BUILD/compactor/streamfleet-compactor" 2>"$WORK/c2.log" &
C2=$!; PIDS+=($C2)
# The receiver is on loopback, which webhooks are refused by default.
CONSUMER_NAME=w METRICS_LISTEN=127.0.0.1:$MW EVENTS_WEBHOOK_URL=http://127.0.0.1:$HP/events WEBHOOK_ALLOW_NETS=127.0.0.0/8 \
  "$BUILD/queue-worker/streamfleet-queue-worker" 2>"$WORK/w.log" &
W=$!; PIDS+=($W)
for p in $IP $MI $MC1 $MC2 $MW; do wait_http "http://127.0.0.1:$p/healthz"; done
for p in $MI $MC1 $MC2 $MW; do
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$p/readyz" >/dev/null || fail "port $p not ready"
done

# The worker's housekeeper creates the events group (at the stream's end) before any event is published.
for _ in $(seq 1 50); do redis-cli -p "$RP" XINFO GROUPS streamfleet:events 2>/dev/null | grep -q webhooks && break; sleep 0.1; done
redis-cli -p "$RP" XINFO GROUPS streamfleet:events | grep -q webhooks || fail "no webhooks group on the events stream"

# 40 generations x 30 chunks in NDJSON (random order within each body); c1 is SIGKILLed halfway.
API=http://127.0.0.1:$IP/v1/orgs/7/generations
for g in $(seq 1 40); do
  for s in $(seq 0 29); do
    fin=false; [ "$s" = 29 ] && fin=true
    echo "{\"seq\": $s, \"data\": \"g${g}s${s}é \", \"final\": $fin}"
  done | shuf > "$WORK/g$g.ndjson"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$API/$g/chunks" -H 'Content-Type: application/x-ndjson' \
    --data-binary @"$WORK/g$g.ndjson")
  [ "$code" = 202 ] || fail "ingest answered $code for generation $g"
  if [ "$g" = 20 ]; then kill -9 "$C1"; fi
done
"$BUILD/tools/streamfleetctl" enqueue noop >/dev/null
# A task from another language: the Python example (Debian's python3-redis + python3-protobuf).
PYTASK=$(cd /tmp && /usr/bin/python3 "$HERE/../../examples/enqueue_task.py" --port "$RP" --type noop \
  --payload '{"from": "python"}') || fail "python example failed"

for _ in $(seq 1 150); do
  n=$(sqlite3 "$WORK/fleet.db" 'SELECT COUNT(*) FROM scenario_generations' 2>/dev/null || echo 0)
  [ "$n" -ge 40 ] && break; sleep 0.2
done
[ "$n" = 40 ] || fail "expected 40 rows, got $n"
for g in $(seq 1 40); do
  want=$(for s in $(seq 0 29); do printf 'g%ss%sé ' "$g" "$s"; done)
  got=$(sqlite3 "$WORK/fleet.db" "SELECT compacted FROM scenario_generations WHERE id=$g" | base64 -d)
  [ "$want" = "$got" ] || fail "generation $g is not byte-exact"
  cc=$(sqlite3 "$WORK/fleet.db" "SELECT chunk_count FROM scenario_generations WHERE id=$g")
  [ "$cc" = 30 ] || fail "generation $g chunk_count $cc"
done
echo "40 generations byte-exact after a compactor was SIGKILLed"
# Events are at least once (a replayed finalization publishes again): count distinct generations.
hooks() { jq -s '[.[] | select(.type == "generation.compacted") | .generation_id] | unique | length' "$WORK/hooks.ndjson" 2>/dev/null || echo 0; }
for _ in $(seq 1 100); do [ "$(hooks)" = 40 ] && break; sleep 0.1; done
[ "$(hooks)" = 40 ] || fail "webhook receiver saw $(hooks) of 40 generation.compacted events"
echo "every generation.compacted event was POSTed to EVENTS_WEBHOOK_URL"

for p in $MI $MC2 $MW; do
  curl -sf "http://127.0.0.1:$p/metrics" > "$WORK/m$p.txt"
  promtool check metrics < "$WORK/m$p.txt" || fail "promtool rejected /metrics on port $p"
done
grep -q '^streamfleet_ingest_chunks_total 1200' "$WORK/m$MI.txt" || fail "ingest chunk counter is not 1200"
for _ in $(seq 1 50); do
  [ "$("$BUILD/tools/streamfleetctl" --json tasks show "$PYTASK" | jq -r .state)" = succeeded ] && break; sleep 0.1
done
[ "$("$BUILD/tools/streamfleetctl" --json tasks show "$PYTASK" | jq -r .state)" = succeeded ] || fail "python task $PYTASK did not run: $("$BUILD/tools/streamfleetctl" --json tasks show "$PYTASK" 2>&1)"
curl -sf "http://127.0.0.1:$MW/metrics" > "$WORK/m$MW.txt"
grep -q 'streamfleet_worker_tasks_processed_total{outcome="succeeded",type="noop"} 2' "$WORK/m$MW.txt" || fail "noop tasks not counted"
echo "a task enqueued from Python ran"
grep -q '^streamfleet_redis_keyspace_hits_total' "$WORK/m$MC2.txt" || fail "compactor does not export Redis INFO metrics"
curl -sf "http://127.0.0.1:$MW/health" | jq -e '.connected == true and .dbSize > 0' >/dev/null || fail "/health JSON"
echo "promtool accepts every process's /metrics; /health reports Redis"

for pid in $INGEST $C2 $W; do kill -TERM "$pid"; done
for pid in $INGEST $C2 $W; do
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "process $pid still running 10 s after SIGTERM"
  wait "$pid"; rc=$?
  [ "$rc" = 0 ] || fail "process $pid exited $rc after SIGTERM"
done
echo "SIGTERM: every process exited 0"
echo "1 passed, 0 failed"
