#!/usr/bin/env bash
# The chunk path's cost of production Redis settings, side by side in one run (docs/performance.md, "Redis
# over TLS and INGEST_WAIT_REPLICAS"): one redis-server with a plain and a TLS port (test certificates made
# here) and a replica, and the same streamfleet-ingest measured by bench/ingest_bench (64 keep-alive clients,
# one JSON chunk per POST, then NDJSON) with
#   plain   REDIS_PORT (the default: ingest's pipelined libuv connection)
#   tls     rediss:// with the CA (the same pipelined libuv connection, over OpenSSL)
#   wait1   INGEST_WAIT_REPLICAS=1 (every append waits for the replica; pooled connections)
# and the task path: bench/worker_bench's `process` phase (one streamfleet-queue-worker, 8 slots, TASKS no-op
# tasks, status records off and on) with the worker connected over the plain port and over TLS.
#   bash bench/redis_modes.sh            (BUILD_DIR, DURATION=5 s per phase, ROUNDS=2, TASKS=200000,
#                                         ONLY=chunks|tasks for one of the two parts)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
# 200,000: a paused slot polls every 100 ms, so the resume costs up to 100 ms before the first read, which
# is noise against a phase that lasts under a second at 50,000 tasks.
TASKS=${TASKS:-200000}
ONLY=${ONLY:-}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/streamfleet-redis-modes.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mean() { python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print(round(sum(v)/len(v)))' $1; }

bash "$ROOT/components/testing/scripts/make_test_certs.sh" "$WORK/certs"
P=$(port); T=$(port); R=$(port)
redis-server --port "$P" --tls-port "$T" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  --tls-cert-file "$WORK/certs/server.crt" --tls-key-file "$WORK/certs/server.key" \
  --tls-ca-cert-file "$WORK/certs/ca.crt" --tls-auth-clients no --logfile "$WORK/redis.log" &
PIDS+=($!)
redis-server --port "$R" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" --replicaof 127.0.0.1 "$P" \
  --logfile "$WORK/replica.log" &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$R" info replication 2>/dev/null | grep -q master_link_status:up && break; sleep 0.1; done

measure() {  # mode env... -> "single ndjson"
  local mode=$1; shift
  local ip; ip=$(port)
  env "$@" INGEST_LISTEN=127.0.0.1:$ip INGEST_THREADS=80 INGEST_BACKPRESSURE_LAG=100000000 LOG_LEVEL=warn \
    METRICS_LISTEN=127.0.0.1:0 DATABASE_URL="sqlite:$WORK/db" "$BUILD/ingest/streamfleet-ingest" 2>"$WORK/ingest-$mode.log" &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$ip/healthz" >/dev/null && break; sleep 0.1; done
  redis-cli -p "$P" FLUSHALL >/dev/null
  local out; out=$("$BUILD/bench/ingest_bench" --port "$ip" --redis-port "$P" --pid "$pid" --duration "$DURATION" 2>/dev/null)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$(sed -n 's/^ingest_single_cps=//p' <<<"$out") $(sed -n 's/^ingest_ndjson_cps=//p' <<<"$out")"
}

if [ "$ONLY" != tasks ]; then
declare -A single ndjson
for round in $(seq 1 "$ROUNDS"); do
  for mode in plain tls wait1; do
    case $mode in
      plain) r=$(measure plain REDIS_PORT="$P") ;;
      tls) r=$(measure tls REDIS_URL="rediss://127.0.0.1:$T" REDIS_TLS_CA="$WORK/certs/ca.crt") ;;
      wait1) r=$(measure wait1 REDIS_PORT="$P" INGEST_WAIT_REPLICAS=1) ;;
    esac
    single[$mode]="${single[$mode]:-} ${r% *}"
    ndjson[$mode]="${ndjson[$mode]:-} ${r#* }"
    echo "[redis-modes] round $round $mode: single ${r% *} ndjson ${r#* } chunks/s" >&2
  done
done
echo
echo "| chunk path (chunks/s, mean of $ROUNDS rounds, $DURATION s each) | one JSON chunk per POST | vs plain | NDJSON | vs plain |"
echo "|---|---|---|---|---|"
ps=$(mean "${single[plain]}"); pn=$(mean "${ndjson[plain]}")
for mode in plain tls wait1; do
  s=$(mean "${single[$mode]}"); n=$(mean "${ndjson[$mode]}")
  echo "| $mode | $s | $((100 * s / ps))% | $n | $((100 * n / pn))% |"
done

fi

# ---- the task path: the worker over the plain port and over TLS ------------------------------------------
[ "$ONLY" = chunks ] && exit 0
tasks() {  # mode [--worker-redis-url URL] -> "records_off records_on" tasks/s
  local mode=$1; shift
  local out
  out=$("$BUILD/bench/worker_bench" --redis-port "$P" \
    --worker-bin "$BUILD/queue-worker/streamfleet-queue-worker" --tasks "$TASKS" --process-only 1 "$@" \
    2>>"$WORK/worker_bench-$mode.log")
  local off on
  off=$(sed -n 's/^w1_tps=//p' <<<"$out" | cut -d. -f1); on=$(sed -n 's/^w1_retained_tps=//p' <<<"$out" | cut -d. -f1)
  if [ -z "$off" ] || [ -z "$on" ]; then
    echo "redis_modes: worker_bench ($mode) gave no result:" >&2; tail -n 20 "$WORK/worker_bench-$mode.log" >&2
    exit 1
  fi
  echo "$off $on"
}
declare -A off on
for round in $(seq 1 "$ROUNDS"); do
  for mode in plain tls; do
    case $mode in
      plain) r=$(tasks plain) ;;
      tls) r=$(REDIS_TLS_CA="$WORK/certs/ca.crt" tasks tls --worker-redis-url "rediss://127.0.0.1:$T") ;;
    esac
    [ -n "$r" ] || exit 1  # tasks() said why (a failing command substitution does not stop set -e here)
    off[$mode]="${off[$mode]:-} ${r% *}"
    on[$mode]="${on[$mode]:-} ${r#* }"
    echo "[redis-modes] round $round tasks $mode: records off ${r% *}, on ${r#* } tasks/s" >&2
  done
done
echo
echo "| task path (tasks/s, one worker with 8 slots, $TASKS no-op tasks, mean of $ROUNDS rounds) | records off (TASK_RESULT_TTL=0) | vs plain | records on (default) | vs plain |"
echo "|---|---|---|---|---|"
po=$(mean "${off[plain]}"); pr=$(mean "${on[plain]}")
for mode in plain tls; do
  o=$(mean "${off[$mode]}"); n=$(mean "${on[$mode]}")
  echo "| $mode | $o | $((100 * o / po))% | $n | $((100 * n / pr))% |"
done
