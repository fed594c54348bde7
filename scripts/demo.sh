#!/usr/bin/env bash
# The main job on the embedded default (local Redis + SQLite), from a fresh Debian 12 machine:
#   installs the packages it needs (scripts/install-deps.sh --runtime: no test tools), builds if needed,
#   starts redis-server on a free loopback port, starts ingest, compactor, queue-worker and the admin UI,
#   streams sample generations through them (JSON+finish, NDJSON, an OpenAI SSE relay, one left to the idle
#   timeout), prints the scenario_generations rows and the /metrics addresses.
# On a terminal it then keeps the fleet running until Ctrl-C and prints the variables to reach it from another
# terminal (README, "Five-minute tour"); otherwise (CI, pipes) it exits.
# Everything it started is stopped on exit, Ctrl-C included. State lives in .demo/ (removed on exit).
# Binaries: build/ when it has them all (e.g. after scripts/test.sh), otherwise build-demo/, configured without
# tests and benchmarks (their packages are not installed by --runtime; build/ keeps scripts/test.sh's settings).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
bash scripts/install-deps.sh --runtime
BINARIES=(ingest/streamfleet-ingest compactor/streamfleet-compactor queue-worker/streamfleet-queue-worker
          tools/streamfleetctl admin/streamfleet-admin)
have_all() { local b; for b in "${BINARIES[@]}"; do [ -x "$1/$b" ] || return 1; done; }
if [ -z "${BUILD:-}" ]; then
  if have_all build; then BUILD=build; else BUILD=build-demo; fi
fi
if ! have_all "$BUILD" || [ "${REBUILD:-0}" = 1 ]; then
  if [ "$BUILD" = build-demo ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DSTREAMFLEET_BUILD_TESTS=OFF -DSTREAMFLEET_BUILD_BENCH=OFF >/dev/null
  else
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$BUILD" -j 2 --target streamfleet-ingest streamfleet-compactor streamfleet-queue-worker \
    streamfleetctl streamfleet-admin
fi
BUILD=$(cd "$BUILD" && pwd)

DEMO=$ROOT/.demo
rm -rf "$DEMO"; mkdir -p "$DEMO"
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$DEMO"
}
trap cleanup EXIT
trap 'echo; echo "stopping..."; exit 0' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port); INGEST_PORT=$(free_port); ADMIN_PORT=$(free_port)
M1=$(free_port); M2=$(free_port); M3=$(free_port); M4=$(free_port)
ADMIN_TOKEN=${ADMIN_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(12))')}

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DEMO" \
  --logfile "$DEMO/redis.log" >/dev/null &
PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

export REDIS_HOST=127.0.0.1 REDIS_PORT DATABASE_URL="sqlite:$DEMO/streamfleet.db"
export GENERATION_IDLE_TIMEOUT=${GENERATION_IDLE_TIMEOUT:-3s} LOG_LEVEL=${LOG_LEVEL:-warn}
INGEST_LISTEN=127.0.0.1:$INGEST_PORT METRICS_LISTEN=127.0.0.1:$M1 "$BUILD/ingest/streamfleet-ingest" 2>"$DEMO/ingest.log" &
PIDS+=($!)
CONSUMER_NAME=demo-compactor METRICS_LISTEN=127.0.0.1:$M2 "$BUILD/compactor/streamfleet-compactor" 2>"$DEMO/compactor.log" &
PIDS+=($!)
CONSUMER_NAME=demo-worker METRICS_LISTEN=127.0.0.1:$M3 "$BUILD/queue-worker/streamfleet-queue-worker" 2>"$DEMO/worker.log" &
PIDS+=($!)
ADMIN_TOKEN=$ADMIN_TOKEN ADMIN_LISTEN=127.0.0.1:$ADMIN_PORT METRICS_LISTEN=127.0.0.1:$M4 \
  "$BUILD/admin/streamfleet-admin" 2>"$DEMO/admin.log" &
PIDS+=($!)
for port in $INGEST_PORT $M2 $M3 $M4; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done

API=http://127.0.0.1:$INGEST_PORT/v1/orgs/12/generations
echo "== streaming sample generations into ingest at http://127.0.0.1:$INGEST_PORT"
# 59: JSON chunks one by one, then finish with the total.
for part in '{\"title\": \"Q3 plan\", ' '\"steps\": [\"hire\", ' '\"ship\"], \"owner\": \"é\"}'; do
  curl -sf -X POST "$API/59/chunks?scenario_id=345" -H 'Content-Type: application/json' -d "{\"data\": \"$part\"}" >/dev/null
done
curl -sf -X POST "$API/59/finish?scenario_id=345" -H 'Content-Type: application/json' -d '{"total_chunks": 3}' >/dev/null
# 60: NDJSON with explicit seqs, out of order, final marker on the last.
printf '%s\n' '{"seq": 1, "data": "\"b\", "}' '{"seq": 0, "data": "[\"a\", "}' '{"seq": 2, "data": "\"c\"]", "final": true}' |
  curl -sf -X POST "$API/60/chunks" -H 'Content-Type: application/x-ndjson' -H 'Transfer-Encoding: chunked' --data-binary @- >/dev/null
# 61: an OpenAI-compatible SSE stream relayed as is.
printf 'data: {"choices":[{"delta":{"content":"{\\"answer\\": "}}]}\n\ndata: {"choices":[{"delta":{"content":"42}"}}]}\n\ndata: [DONE]\n\n' |
  curl -sf -X POST "$API/61/chunks" -H 'Content-Type: text/event-stream' --data-binary @- >/dev/null
# 62: not JSON, never finished: the idle timeout finalizes it with a recorded fallback.
curl -sf -X POST "$API/62/chunks" -H 'Content-Type: application/json' -d '{"seq": 0, "data": "plain text, not JSON"}' >/dev/null
"$BUILD/tools/streamfleetctl" enqueue noop --payload '{"demo": true}' >/dev/null

echo "== waiting for the compactor (idle timeout $GENERATION_IDLE_TIMEOUT for generation 62)"
for _ in $(seq 1 100); do
  n=$(sqlite3 "$DEMO/streamfleet.db" 'SELECT COUNT(*) FROM scenario_generations' 2>/dev/null || echo 0)
  [ "$n" -ge 4 ] && break
  sleep 0.2
done
echo "== scenario_generations"
sqlite3 -header -column "$DEMO/streamfleet.db" \
  "SELECT id, organization_id AS org, scenario_id AS scenario, chunk_count, compacted_by, compacted_at,
          substr(llm_response, 1, 50) AS llm_response, compacted,
          json_extract(metadata, '$.finalize_trigger') AS trigger, json_extract(metadata, '$.json_valid') AS json_ok
     FROM scenario_generations ORDER BY id"
echo "== progress of generation 59 (from Redis)"
curl -sf "$API/59/progress"; echo
echo "== streams"
"$BUILD/tools/streamfleetctl" streams
echo "== metrics"
echo "ingest:       http://127.0.0.1:$M1/metrics"
echo "compactor:    http://127.0.0.1:$M2/metrics"
echo "queue-worker: http://127.0.0.1:$M3/metrics"
echo "admin:        http://127.0.0.1:$M4/metrics"
curl -sf "http://127.0.0.1:$M2/metrics" | grep -E '^streamfleet_compactor_(generations_finalized_total|chunks_applied_total)' || true
if [ -t 0 ] && [ "${CI:-}" != "true" ]; then
  echo "== the fleet keeps running; Ctrl-C stops everything"
  echo "admin UI:   http://127.0.0.1:$ADMIN_PORT/  (token $ADMIN_TOKEN)"
  echo "ingest API: http://127.0.0.1:$INGEST_PORT"
  echo "to use it from another terminal (README, \"Five-minute tour\"), paste:"
  echo "  export REDIS_HOST=127.0.0.1 REDIS_PORT=$REDIS_PORT DATABASE_URL=sqlite:$DEMO/streamfleet.db \\"
  echo "         API=http://127.0.0.1:$INGEST_PORT ADMIN=http://127.0.0.1:$ADMIN_PORT PATH=$BUILD/tools:\$PATH"
  while true; do sleep 1; done
fi
