#!/usr/bin/env bash
# streamfleet benchmarks, one command:  bash bench/run.sh
#
# Builds what it needs (cmake --build -j1), starts its own redis-server on a free loopback port, runs
# installs what it needs (scripts/install-deps.sh --bench; SKIP_DEPS=1 skips it) and runs, beside its own figures,
# the references of ../shared/anchors that the targets are ratios of (raw C streams round, BullMQ, Sidekiq):
#   1. the Redis ceilings (redis-benchmark XADD, pipeline 1 and 16),
#   2. ingest: the streamfleet-ingest binary under 64 keep-alive clients (single JSON chunks, then NDJSON,
#      then one task per POST /v1/tasks next to EnqueueTask from C++ threads),
#   3. the compactor: anchor 05 (the raw C streams round), its own raw XREADGROUP+XACK ceilings, 1 and 2 in-process CompactorService instances draining a
#      pre-fill, 1 instance under a steady producer, and the streamfleet-compactor binary,
#   4. the cache: GetOrCompute latency p50/p99 per tier and Redis hits/s (bench/cache_bench.cc),
#   5. the queue-worker: raw XADD->XREADGROUP->XACK ceiling, enqueue, 1 and 2 streamfleet-queue-worker
#      processes on no-op tasks, push handlers (TASK_ROUTES to a local keep-alive sink), p99 enqueue-to-start at half the
#      peak; anchor 05, BullMQ (anchor 03: enqueue and worker processes, bullmq pinned in bench/bullmq) and Sidekiq
#      (anchor 06, Debian ruby-sidekiq) on the same Redis,
#   6. live streams (bench/live_bench.cc): 10 000 idle SSE streams on one ingest (its RSS), 1 000 subscribers
#      of 100 generations fed 20 chunks/s each (delivery latency, every seq once and in order), and the
#      single-chunk throughput alone and beside those subscribers,
#   7. storage (bench/storage_bench.cc): Redis memory per chunk byte and the chunk path's throughput with
#      CHUNK_COMPRESSION off and zstd, on LLM-like JSON and prose, chunks of 20 B to 64 KiB,
# prints markdown tables and stops everything it started. See docs/performance.md.
#
# Knobs (environment): BUILD_DIR (default build), INGEST_CLIENTS (64), INGEST_DURATION (10 s per phase),
# COMPACTOR_GENS (2000 generations x 50 chunks), PACED_RATE (25000 chunks/s = 500 generations/s, for the steady-state finalize
# latency), CHUNK_BYTES (200), CACHE_ITERATIONS (5000 gets per tier), ONLY=compactor|cache|worker (just part 3, 4 or 5),
# WORKER_TASKS (50000), WORKER_CONCURRENCY (8 slots per worker process), LATENCY_PRODUCERS (2 producer threads,
# each its own connection, offer the latency phase's load), SKIP_BUILD=1, ONLY=ingest (parts 1 and 2), ANCHORS
# (default ../shared/anchors beside the checkout; each anchor is skipped with a note when absent), SKIP_DEPS=1,
# INGEST_BIN (the streamfleet-ingest binary to measure, default BUILD_DIR's: A/B against another build),
# ONLY=live (part 6) with LIVE_IDLE (10000 idle streams), LIVE_GENS (100 generations), LIVE_SUBS (10 subscribers
# each), LIVE_RATE (20 chunks/s per generation), LIVE_SECONDS (20 s of production), LIVE_DURATION (10 s per
# throughput phase), ONLY=storage (part 7, with row sizes against s3rver) with STORAGE_BYTES (8388608 bytes of text per run), STORAGE_ROUNDS (3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
INGEST_CLIENTS=${INGEST_CLIENTS:-64}
INGEST_DURATION=${INGEST_DURATION:-10}
COMPACTOR_GENS=${COMPACTOR_GENS:-2000}
PACED_RATE=${PACED_RATE:-25000}
CHUNK_BYTES=${CHUNK_BYTES:-200}
CACHE_ITERATIONS=${CACHE_ITERATIONS:-5000}
ONLY=${ONLY:-}
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
INGEST_BIN=${INGEST_BIN:-$BUILD/ingest/streamfleet-ingest}
WORKER_TASKS=${WORKER_TASKS:-50000}
WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-8}
LATENCY_PRODUCERS=${LATENCY_PRODUCERS:-2}
LIVE_IDLE=${LIVE_IDLE:-10000}
LIVE_GENS=${LIVE_GENS:-100}
LIVE_SUBS=${LIVE_SUBS:-10}
LIVE_RATE=${LIVE_RATE:-20}
LIVE_SECONDS=${LIVE_SECONDS:-20}
LIVE_DURATION=${LIVE_DURATION:-10}
STORAGE_BYTES=${STORAGE_BYTES:-8388608}
STORAGE_ROUNDS=${STORAGE_ROUNDS:-3}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/streamfleet-bench.XXXXXX")
RESULTS=$WORK/results.txt
: >"$RESULTS"
REDIS_PORT=""
INGEST_PID=""
CHILD_PID=""

# Runs a benchmark driver in the background and waits for it, so a signal interrupts the wait at once
# (bash defers traps while a foreground command runs) and cleanup can stop the driver.
run_child() {
  "$@" &
  CHILD_PID=$!
  wait "$CHILD_PID"
  CHILD_PID=""
}

log() { echo "[bench] $*" >&2; }

# Stops only what this script started, by pid.
cleanup() {
  local rc=$?
  if [ -n "$CHILD_PID" ] && kill -0 "$CHILD_PID" 2>/dev/null; then
    kill -TERM "$CHILD_PID" 2>/dev/null || true
    wait "$CHILD_PID" 2>/dev/null || true
  fi
  if [ -n "$INGEST_PID" ] && kill -0 "$INGEST_PID" 2>/dev/null; then
    kill -TERM "$INGEST_PID" 2>/dev/null || true
    wait "$INGEST_PID" 2>/dev/null || true
  fi
  # compactor_bench stops the compactor binary itself; this covers an interrupted run.
  local cpid
  cpid=$(sed -n 's/^compactor_pid=//p' "$RESULTS" 2>/dev/null | tail -1)
  if [ -n "$cpid" ] && grep -qs streamfleet-compactor "/proc/$cpid/cmdline"; then
    kill -TERM "$cpid" 2>/dev/null || true
  fi
  if [ -n "${S3_PID:-}" ] && kill -0 "$S3_PID" 2>/dev/null; then
    kill -TERM "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
  fi
  if [ -s "$WORK/redis.pid" ]; then
    local rpid
    rpid=$(cat "$WORK/redis.pid")
    if grep -qs redis-server "/proc/$rpid/cmdline"; then
      kill -TERM "$rpid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ---- packages and build -----------------------------------------------------------------------------
if [ "${SKIP_DEPS:-0}" != 1 ]; then bash "$ROOT/scripts/install-deps.sh" --bench; fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  if grep -qs '^STREAMFLEET_BUILD_BENCH:BOOL=OFF' "$BUILD/CMakeCache.txt"; then
    log "enabling STREAMFLEET_BUILD_BENCH in $BUILD"
    cmake -DSTREAMFLEET_BUILD_BENCH=ON "$BUILD" >/dev/null
  fi
  log "building (cmake --build -j1)"
  if [ "$ONLY" = ingest ]; then
    cmake --build "$BUILD" -j1 --target ingest_bench streamfleet-ingest >&2
  elif [ "$ONLY" = live ]; then
    cmake --build "$BUILD" -j1 --target live_bench streamfleet-ingest streamfleet-compactor >&2
  elif [ "$ONLY" = storage ]; then
    cmake --build "$BUILD" -j1 --target storage_bench >&2
  else
    cmake --build "$BUILD" -j1 --target ingest_bench compactor_bench cache_bench worker_bench live_bench storage_bench streamfleet-ingest \
      streamfleet-compactor streamfleet-queue-worker >&2
  fi
fi
NEEDED="bench/ingest_bench bench/compactor_bench bench/cache_bench bench/worker_bench bench/live_bench bench/storage_bench
        compactor/streamfleet-compactor queue-worker/streamfleet-queue-worker"
[ "$ONLY" = ingest ] && NEEDED="bench/ingest_bench"
[ "$ONLY" = compactor ] && NEEDED="bench/compactor_bench compactor/streamfleet-compactor"
[ "$ONLY" = live ] && NEEDED="bench/live_bench compactor/streamfleet-compactor"
[ "$ONLY" = storage ] && NEEDED="bench/storage_bench"
[ -x "$INGEST_BIN" ] || { log "missing $INGEST_BIN"; exit 1; }
for b in $NEEDED; do
  [ -x "$BUILD/$b" ] || { log "missing $BUILD/$b"; exit 1; }
done

# ---- redis ------------------------------------------------------------------------------------------
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$WORK/redis.pid" --dir "$WORK" --logfile "$WORK/redis.log" >/dev/null
for _ in $(seq 100); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.05
done
for _ in $(seq 100); do [ -s "$WORK/redis.pid" ] && break; sleep 0.05; done
log "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$REDIS_PORT (pid $(cat "$WORK/redis.pid"))"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

if [ -z "$ONLY" ] || [ "$ONLY" = ingest ]; then
# ---- 1. Redis ceilings ---------------------------------------------------------------------------------
PAYLOAD=$(head -c "$CHUNK_BYTES" /dev/zero | tr '\0' 'x')
xadd_ceiling() {  # $1 = pipeline depth
  rcli flushall >/dev/null
  local out
  out=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c 50 -n 200000 -P "$1" --csv \
          XADD benchstream '*' e "$PAYLOAD" 2>/dev/null | tail -1)
  echo "$out" | awk -F'","' '{print $2}' | tr -d '"'
}
log "redis-benchmark XADD -c 50 -n 200000 -P 1"
echo "xadd_p1_rps=$(xadd_ceiling 1)" >>"$RESULTS"
log "redis-benchmark XADD -c 50 -n 200000 -P 16"
echo "xadd_p16_rps=$(xadd_ceiling 16)" >>"$RESULTS"
rcli flushall >/dev/null

# ---- 2. ingest ----------------------------------------------------------------------------------------
INGEST_PORT=$(free_port)
REDIS_PORT=$REDIS_PORT INGEST_LISTEN=127.0.0.1:$INGEST_PORT INGEST_THREADS=80 \
  INGEST_BACKPRESSURE_LAG=100000000 METRICS_LISTEN=127.0.0.1:0 LOG_LEVEL=warn \
  "$INGEST_BIN" >"$WORK/ingest.log" 2>&1 &
INGEST_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$INGEST_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$INGEST_PORT/readyz" >/dev/null || { log "ingest did not become ready"; cat "$WORK/ingest.log" >&2; exit 1; }
echo "ingest_rss_idle_mb=$(awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$INGEST_PID/status")" >>"$RESULTS"
log "ingest (pid $INGEST_PID) on 127.0.0.1:$INGEST_PORT: $INGEST_CLIENTS clients, ${INGEST_DURATION}s per phase"
run_child "$BUILD/bench/ingest_bench" --port "$INGEST_PORT" --redis-port "$REDIS_PORT" --pid "$INGEST_PID" \
  --clients "$INGEST_CLIENTS" --duration "$INGEST_DURATION" --chunk-bytes "$CHUNK_BYTES" --batch 100 >>"$RESULTS"
kill -TERM "$INGEST_PID"
wait "$INGEST_PID" || true
INGEST_PID=""
rcli flushall >/dev/null
fi

# ---- anchors (../shared/anchors) ------------------------------------------------------------------------
# The reference scripts the issues' ratios are measured against, run on this run's redis-server so the ratios
# here are the ones the anchors report. Each is skipped with a note when the anchors are not beside the
# checkout (ANCHORS=.../shared/anchors) or what it needs is missing.
# json_fields LINE KEY=FIELD...: prints KEY=value for each top-level FIELD of a JSON line that has it.
json_fields() {
  python3 -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except ValueError:
    sys.exit(0)
for pair in sys.argv[2:]:
    key, field = pair.split("=", 1)
    if d.get(field) is not None:
        print(f"{key}={d[field]}")' "$@"
}
# 05_streams_hiredis.c: pipelined XADD producer, 1 consumer doing XREADGROUP COUNT 100 -> XACK, no work.
# The compactor and the worker are both compared with it; it runs once.
anchor_raw_c() {
  grep -q '^anchor_raw_c_tps=' "$RESULTS" && return 0
  if [ -f "$ANCHORS/05_streams_hiredis.c" ] && gcc -O2 -Wall -o "$WORK/streams_hiredis" "$ANCHORS/05_streams_hiredis.c" -lhiredis; then
    rcli flushall >/dev/null
    log "anchor 05 (raw C streams round, 1 consumer, concurrent p100): 300000 entries"
    json_fields "$(timeout 200 "$WORK/streams_hiredis" -P "$REDIS_PORT" -d 150 -n 300000 -k 1 -p 100 -c 100 || true)" \
      anchor_raw_c_tps=e2e_rate >>"$RESULTS"
    rcli flushall >/dev/null
  else
    log "anchor 05 skipped: $ANCHORS/05_streams_hiredis.c not found or not built (set ANCHORS=.../shared/anchors)"
  fi
}
# 03_bullmq.cjs: N jobs enqueued by one node process (addBulk), then drained by one Worker in a second process,
# at concurrency 1, 10 and 50; BullMQ from bench/bullmq (pinned by its package-lock.json).
anchor_bullmq() {
  [ -f "$ANCHORS/03_bullmq.cjs" ] || { log "BullMQ anchor skipped: $ANCHORS/03_bullmq.cjs not found"; return 0; }
  command -v node >/dev/null && { [ -d "$ROOT/bench/bullmq/node_modules/bullmq" ] ||
    (cd "$ROOT/bench/bullmq" && npm ci --no-audit --no-fund >/dev/null 2>&1); } ||
    { log "BullMQ anchor skipped: node or the npm registry is not available"; return 0; }
  local c line
  for c in 1 10 50; do
    rcli flushall >/dev/null
    log "anchor 03 (BullMQ $(node -p 'require("'"$ROOT"'/bench/bullmq/node_modules/bullmq/package.json").version'), enqueue and worker processes): $WORKER_TASKS no-op jobs, concurrency $c"
    NODE_PATH=$ROOT/bench/bullmq/node_modules timeout 150 node "$ANCHORS/03_bullmq.cjs" enqueue --port "$REDIS_PORT" \
      --n "$WORKER_TASKS" --chunk 1000 --deadline 120 >/dev/null || { log "BullMQ enqueue failed"; continue; }
    line=$(NODE_PATH=$ROOT/bench/bullmq/node_modules timeout 150 node "$ANCHORS/03_bullmq.cjs" work --port "$REDIS_PORT" \
      --n "$WORKER_TASKS" --concurrency "$c" --deadline 120 || true)
    # Only a run that completed every job counts.
    grep -q "\"completed\":$WORKER_TASKS," <<<"$line" || { log "BullMQ c=$c did not complete: $line"; continue; }
    json_fields "$line" "bullmq_c${c}_process_jps=jobs_per_s" "bullmq_c${c}_rss_mb=peak_rss_mb" >>"$RESULTS"
  done
  rcli flushall >/dev/null
}
# 06_sidekiq.py: Sidekiq (Debian ruby-sidekiq) no-op jobs, pushed in bulk, then one sidekiq process at 1, 10 and
# 50 threads; bench/run.sh installs ruby-sidekiq through scripts/install-deps.sh --bench.
anchor_sidekiq() {
  [ -f "$ANCHORS/06_sidekiq.py" ] || { log "Sidekiq anchor skipped: $ANCHORS/06_sidekiq.py not found"; return 0; }
  command -v sidekiq >/dev/null || { log "Sidekiq anchor skipped: no sidekiq (ruby-sidekiq)"; return 0; }
  local c line
  mkdir -p "$WORK/logs"
  for c in 1 10 50; do
    rcli flushall >/dev/null
    log "anchor 06 (Sidekiq $(ruby -e 'require "sidekiq"; print Sidekiq::VERSION' 2>/dev/null)): $WORKER_TASKS no-op jobs, concurrency $c"
    # Debian's python3, which has the python3-redis the anchor imports (a pyenv python3 on the PATH may not).
    line=$(WORK=$WORK timeout 200 /usr/bin/python3 "$ANCHORS/06_sidekiq.py" --port "$REDIS_PORT" --n "$WORKER_TASKS" --c "$c" \
      --deadline 120 || true)
    grep -q "\"processed_stat\": $WORKER_TASKS," <<<"$line" || { log "Sidekiq c=$c did not process every job: $line"; continue; }
    json_fields "$line" "sidekiq_c${c}_jps=work_jobs_per_s" "sidekiq_c${c}_rss_mb=worker_vmhwm_mb" >>"$RESULTS"
  done
  rcli flushall >/dev/null
}

if [ -z "$ONLY" ] || [ "$ONLY" = compactor ]; then
# ---- 3. compactor -------------------------------------------------------------------------------------
anchor_raw_c
log "compactor: $COMPACTOR_GENS generations x 50 chunks of $CHUNK_BYTES bytes"
run_child "$BUILD/bench/compactor_bench" --redis-port "$REDIS_PORT" --gens "$COMPACTOR_GENS" --chunks 50 \
  --chunk-bytes "$CHUNK_BYTES" --tmpdir "$WORK" --paced-rate "$PACED_RATE" --paced-seconds 5 --compactor-bin "$BUILD/compactor/streamfleet-compactor" >>"$RESULTS"
# The same pre-fill written as ingest writes NDJSON requests: a generation's 50 chunks in one entry.
log "compactor: the binary draining the pre-fill as entries of 50 chunks (NDJSON requests)"
run_child "$BUILD/bench/compactor_bench" --redis-port "$REDIS_PORT" --gens "$COMPACTOR_GENS" --chunks 50 \
  --chunk-bytes "$CHUNK_BYTES" --entry-chunks 50 --tmpdir "$WORK" --phases bin \
  --compactor-bin "$BUILD/compactor/streamfleet-compactor" >>"$RESULTS"

fi

if [ -z "$ONLY" ] || [ "$ONLY" = cache ]; then
# ---- 4. cache -----------------------------------------------------------------------------------------
rcli flushall >/dev/null
log "cache: $CACHE_ITERATIONS GetOrCompute calls per tier, then Redis hits/s with 1 and 4 threads"
run_child "$BUILD/bench/cache_bench" --redis-port "$REDIS_PORT" --tmpdir "$WORK" --iterations "$CACHE_ITERATIONS" \
  --threads 4 --seconds 3 >>"$RESULTS"
fi

if [ -z "$ONLY" ] || [ "$ONLY" = worker ]; then
# ---- 5. queue-worker and BullMQ on the same Redis ----------------------------------------------------
rcli flushall >/dev/null
anchor_raw_c
log "queue-worker: $WORKER_TASKS no-op tasks: raw ceiling, enqueue, 1 and 2 worker processes, latency at half peak"
run_child "$BUILD/bench/worker_bench" --redis-port "$REDIS_PORT" --tasks "$WORKER_TASKS" \
  --concurrency "$WORKER_CONCURRENCY" --producers "$LATENCY_PRODUCERS" --worker-bin "$BUILD/queue-worker/streamfleet-queue-worker" >>"$RESULTS"
rcli flushall >/dev/null
anchor_bullmq
anchor_sidekiq
rcli flushall >/dev/null
fi

if [ -z "$ONLY" ] || [ "$ONLY" = live ]; then
# ---- 6. live streams ----------------------------------------------------------------------------------
rcli flushall >/dev/null
# Every idle stream is a socket at each end; both the ingest and the driver get room for all of them. Only
# their subshells change the limit (ulimit -n sets the hard limit too, and could not be raised again here).
LIVE_NOFILE=$((LIVE_IDLE + 2048))
with_nofile() {
  local n=$1
  shift
  ulimit -n "$n" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  exec "$@"
}
INGEST_PORT=$(free_port)
# A fresh ingest, configured as in part 2 (same threads, no backpressure: the throughput phases run without a
# compactor), plus a database for the rows the hub looks up and LIVE_START_WAIT far beyond the run, so
# streams of generations that never start stay open instead of ending with `closing: not_found`. Every stream
# is one organization's, so its share (LIVE_ORG_MAX_STREAMS) has room for all of them.
( with_nofile "$LIVE_NOFILE" env REDIS_PORT="$REDIS_PORT" INGEST_LISTEN="127.0.0.1:$INGEST_PORT" INGEST_THREADS=80 \
    INGEST_BACKPRESSURE_LAG=100000000 METRICS_LISTEN=127.0.0.1:0 LOG_LEVEL=warn DATABASE_URL="sqlite:$WORK/live.db" \
    LIVE_START_WAIT=3600s LIVE_ORG_MAX_STREAMS=$((LIVE_IDLE + LIVE_GENS * LIVE_SUBS + 100)) "$INGEST_BIN" ) \
  >"$WORK/ingest-live.log" 2>&1 &
INGEST_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$INGEST_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$INGEST_PORT/readyz" >/dev/null || { log "ingest did not become ready"; cat "$WORK/ingest-live.log" >&2; exit 1; }
log "live streams: ingest (pid $INGEST_PID, descriptor limit $(awk '/^Max open files/ {print $4}' "/proc/$INGEST_PID/limits")):" \
  "$LIVE_IDLE idle streams, $LIVE_GENS generations x $LIVE_SUBS subscribers at $LIVE_RATE chunks/s each, chunk path alone and beside them"
# The driver starts a streamfleet-compactor (on the same SQLite file) for the idle and live parts and stops it
# before the throughput phases: see live_bench.cc. It prints compactor_pid= for the cleanup trap.
run_child with_nofile "$LIVE_NOFILE" "$BUILD/bench/live_bench" --port "$INGEST_PORT" --redis-port "$REDIS_PORT" \
  --pid "$INGEST_PID" --compactor-bin "$BUILD/compactor/streamfleet-compactor" --db "$WORK/live.db" \
  --idle "$LIVE_IDLE" --gens "$LIVE_GENS" --subs "$LIVE_SUBS" --rate "$LIVE_RATE" --live-seconds "$LIVE_SECONDS" \
  --clients "$INGEST_CLIENTS" --duration "$LIVE_DURATION" --chunk-bytes "$CHUNK_BYTES" >>"$RESULTS"
# The open-API warning is expected (no tokens in the bench); anything else ingest logged is shown.
if grep -v "INGEST_TOKENS is empty" "$WORK/ingest-live.log" | grep -q "warning\|error"; then
  log "ingest logged during the live part ($(grep -c . "$WORK/ingest-live.log") lines; the first 5 others):"
  grep -v "INGEST_TOKENS is empty" "$WORK/ingest-live.log" | head -5 >&2
fi
kill -TERM "$INGEST_PID"
wait "$INGEST_PID" || true
INGEST_PID=""
rcli flushall >/dev/null
fi

if [ -z "$ONLY" ] || [ "$ONLY" = storage ]; then
# ---- 7. storage ---------------------------------------------------------------------------------------
rcli flushall >/dev/null
log "storage: CHUNK_COMPRESSION off vs zstd, $STORAGE_BYTES bytes of text per run, best of $STORAGE_ROUNDS"
# The row sizes need an S3 API: s3rver, the package the tests pin (tests/support/s3rver), installed into the
# build tree as they do.
S3_WORK=$BUILD/s3rver
mkdir -p "$S3_WORK" "$WORK/s3"
# Under the tests' install lock (tests/support/s3_server.cc), so a test run meanwhile does not install over it.
(cd "$S3_WORK" && flock .install.lock sh -c 'test -x node_modules/.bin/s3rver || {
   cp "$1/package.json" "$1/package-lock.json" . && npm ci --no-audit --no-fund --loglevel=error; }' sh \
   "$ROOT/tests/support/s3rver" >&2)
S3_PORT=$(free_port)
node "$S3_WORK/node_modules/.bin/s3rver" -d "$WORK/s3" -p "$S3_PORT" -a 127.0.0.1 --configure-bucket bench --silent \
  >/dev/null 2>&1 &
S3_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break; sleep 0.1; done
curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" || { log "s3rver did not start on port $S3_PORT"; exit 1; }
run_child "$BUILD/bench/storage_bench" --redis-port "$REDIS_PORT" --tmpdir "$WORK" --bytes "$STORAGE_BYTES" \
  --rounds "$STORAGE_ROUNDS" --s3-endpoint "http://127.0.0.1:$S3_PORT" >>"$RESULTS"
rcli flushall >/dev/null
fi

# ---- tables ---------------------------------------------------------------------------------------------
{ [ -z "$ONLY" ] || [ "$ONLY" = ingest ] || [ "$ONLY" = compactor ]; } && awk -F= -v only="$ONLY" -v cores="$(nproc)" -v clients="$INGEST_CLIENTS" -v gens="$COMPACTOR_GENS" -v cb="$CHUNK_BYTES" '
  { v[$1] = $2 }
  function f0(x) { return sprintf("%.0f", x) }
  function f1(x) { return sprintf("%.1f", x) }
  function f2(x) { return sprintf("%.2f", x) }
  function pct(a, b) { return b > 0 ? sprintf("%.0f%%", 100 * a / b) : "n/a" }
  function met(ok) { return ok ? "**yes**" : "**no**" }
  END {
    p1 = v["xadd_p1_rps"]; p16 = v["xadd_p16_rps"]; raw = v["raw_consume_eps"]
    printf "\nstreamfleet benchmarks: %s cores shared by redis, services and load generators; %d-byte chunks\n\n", cores, cb
    print "| Benchmark | Measured | Reference / target | Ratio | Target met |"
    print "|---|---|---|---|---|"
    if (only != "compactor") {
    printf "| redis-benchmark XADD, -c 50, pipeline 1 | %s ops/s | ceiling | | |\n", f0(p1)
    printf "| redis-benchmark XADD, -c 50, pipeline 16 | %s ops/s | ceiling | | |\n", f0(p16)
    printf "| ingest, 1 chunk per POST (JSON), %d keep-alive clients | %s chunks/s | >= 60%% of XADD P1 (%s) | %s | %s |\n", clients, f0(v["ingest_single_cps"]), f0(0.6 * p1), pct(v["ingest_single_cps"], p1), met(v["ingest_single_cps"] >= 0.6 * p1)
    printf "| ingest, 1 chunk per POST: request latency p50 / p99 | %s / %s ms | | | |\n", f2(v["ingest_single_p50_ms"]), f2(v["ingest_single_p99_ms"])
    printf "| ingest, NDJSON 100 chunks per POST, %d clients | %s chunks/s | >= 60%% of XADD P16 (%s) | %s | %s |\n", clients, f0(v["ingest_ndjson_cps"]), f0(0.6 * p16), pct(v["ingest_ndjson_cps"], p16), met(v["ingest_ndjson_cps"] >= 0.6 * p16)
    printf "| ingest, NDJSON: request latency p50 / p99 | %s / %s ms | | | |\n", f2(v["ingest_ndjson_p50_ms"]), f2(v["ingest_ndjson_p99_ms"])
    printf "| ingest RSS (streamfleet-ingest VmRSS after load; idle %s MB, peak VmHWM %s MB) | %s MB | < 50 MB | | %s |\n", f1(v["ingest_rss_idle_mb"]), f1(v["ingest_hwm_mb"]), f1(v["ingest_rss_mb"]), met(v["ingest_hwm_mb"] < 50)
    printf "| task API: 1 task per POST /v1/tasks, %d keep-alive clients (p99 %s ms, %d errors) | %s tasks/s | >= 50%% of EnqueueTask from C++ (%s tasks/s, 8 threads) | %s | %s |\n", clients, f2(v["tasks_http_p99_ms"]), v["tasks_http_errors"], f0(v["tasks_http_tps"]), f0(v["tasks_cpp_tps"]), pct(v["tasks_http_tps"], v["tasks_cpp_tps"]), met(v["tasks_http_tps"] >= 0.5 * v["tasks_cpp_tps"])
    if (only == "ingest") {
      printf "\nCPU (cores busy, of %s): ingest JSON %s + redis %s; ingest NDJSON %s + redis %s. Errors: ingest JSON %d, NDJSON %d\n", cores, f2(v["ingest_single_cpu_cores"]), f2(v["ingest_single_redis_cpu_cores"]), f2(v["ingest_ndjson_cpu_cores"]), f2(v["ingest_ndjson_redis_cpu_cores"]), v["ingest_single_errors"], v["ingest_ndjson_errors"]
      exit
    }
    }
    loop = v["raw_loop_eps"]; anchor = v["anchor_raw_c_tps"]
    if (anchor > 0) {
      printf "| anchor 05: raw C streams round (../shared/anchors, 1 consumer, COUNT 100, concurrent p100, no work) | %s entries/s | anchor | | |\n", f0(anchor)
      printf "| **compactor end to end, 1 compactor** (%d loops), producer XADDing meanwhile, first XADD to last row (%d gens x 50 chunks) | %s chunks/s | >= 60%% of anchor 05 (%s) | %s | %s |\n", v["e2e1_loops_each"], gens, f0(v["e2e1_cps"]), f0(0.6 * anchor), pct(v["e2e1_cps"], anchor), met(v["e2e1_cps"] >= 0.6 * anchor)
      printf "| compactor end to end, 2 compactors | %s chunks/s | >= 60%% of anchor 05 (%s) | %s | %s |\n", f0(v["e2e2_cps"]), f0(0.6 * anchor), pct(v["e2e2_cps"], anchor), met(v["e2e2_cps"] >= 0.6 * anchor)
    }
    printf "| own ceiling: 1 loop, XADD x100 pipelined -> XREADGROUP COUNT 100 -> XACK, no work | %s entries/s | ceiling | end to end 1x %s, 2x %s | |\n", f0(loop), pct(v["e2e1_cps"], loop), pct(v["e2e2_cps"], loop)
    printf "| stricter: read+ack drain ceiling, 1 consumer, XREADGROUP COUNT 100 + XACK of a pre-fill, no work | %s entries/s | ceiling | | |\n", f0(raw)
    printf "| stricter: compactor draining the pre-fill, 1 compactor | %s chunks/s | 40%% of the drain (%s) | %s | %s |\n", f0(v["svc1_cps"]), f0(0.4 * raw), pct(v["svc1_cps"], raw), met(v["svc1_cps"] >= 0.4 * raw)
    printf "| stricter: compactor draining the pre-fill, 2 compactors | %s chunks/s | 40%% of the drain (%s) | %s | %s |\n", f0(v["svc2_cps"]), f0(0.4 * raw), pct(v["svc2_cps"], raw), met(v["svc2_cps"] >= 0.4 * raw)
    printf "| stricter: streamfleet-compactor binary draining the pre-fill (incl. start-up) | %s chunks/s | 40%% of the drain (%s) | %s | %s |\n", f0(v["bin_cps"]), f0(0.4 * raw), pct(v["bin_cps"], raw), met(v["bin_cps"] >= 0.4 * raw)
    printf "| finalize latency p50 / p99, 1 compactor, draining the pre-fill (SQLite; includes the wait in the backlog) | %s / %s ms | (info) | %s%% <= 25 ms | |\n", f1(v["svc1_finalize_p50_ms"]), f1(v["svc1_finalize_p99_ms"]), f1(100 * v["svc1_finalize_le25ms_frac"])
    printf "| finalize latency p50 / p99, 2 compactors, draining the pre-fill (SQLite; includes the wait in the backlog) | %s / %s ms | (info) | %s%% <= 25 ms | |\n", f1(v["svc2_finalize_p50_ms"]), f1(v["svc2_finalize_p99_ms"]), f1(100 * v["svc2_finalize_le25ms_frac"])
    printf "| finalize latency p50 / p99, 1 compactor, steady %s chunks/s = %s generations/s (%d gens streaming, 64 at a time; SQLite) | %s / %s ms | p99 <= 25 ms at 500 gens/s | %s%% <= 25 ms | %s |\n", f0(v["paced_rate_cps"]), f0(v["paced_rate_cps"] / 50), v["paced_gens"], f1(v["paced_finalize_p50_ms"]), f1(v["paced_finalize_p99_ms"]), f1(100 * v["paced_finalize_le25ms_frac"]), met(v["paced_finalize_le25ms_frac"] >= 0.99)
    printf "| Redis used_memory per buffered chunk byte (buffers only) | %sx | <= 2x | | %s |\n", f2(v["svc1_redis_buffer_bytes_per_chunk_byte"]), met(v["svc1_redis_buffer_bytes_per_chunk_byte"] <= 2)
    printf "| Redis used_memory per chunk byte while still in the chunk streams | %sx | (info) | | |\n", f2(v["svc1_redis_stream_bytes_per_chunk_byte"])
    printf "| compactor RSS, streamfleet-compactor binary (VmHWM) | %s MB | <= 64 MB | | %s |\n", f1(v["bin_hwm_mb"]), met(v["bin_hwm_mb"] <= 64)
    printf "| compactor RSS, the binary draining entries of 50 chunks (NDJSON requests; %s chunks/s) | %s MB | <= 64 MB | | %s |\n", f0(v["bin_entries_cps"]), f1(v["bin_entries_hwm_mb"]), met(v["bin_entries_hwm_mb"] <= 64)
    printf "| bench process RSS peak with 1 / 2 in-process compactors (drain) (incl. harness; %s MB before start) | %s / %s MB | (info) | | |\n", f1(v["svc1_rss_before_mb"]), f1(v["svc1_rss_peak_mb"]), f1(v["svc2_rss_peak_mb"])
    printf "\nCPU during the runs (cores busy, of %s): ingest JSON %s + redis %s; ingest NDJSON %s + redis %s; compactor drain 1x %s + redis %s; 2x %s + redis %s; end to end 1x %s + redis %s (producer included), 2x %s + redis %s\n", cores, f2(v["ingest_single_cpu_cores"]), f2(v["ingest_single_redis_cpu_cores"]), f2(v["ingest_ndjson_cpu_cores"]), f2(v["ingest_ndjson_redis_cpu_cores"]), f2(v["svc1_cpu_cores"]), f2(v["svc1_redis_cpu_cores"]), f2(v["svc2_cpu_cores"]), f2(v["svc2_redis_cpu_cores"]), f2(v["e2e1_cpu_cores"]), f2(v["e2e1_redis_cpu_cores"]), f2(v["e2e2_cpu_cores"]), f2(v["e2e2_redis_cpu_cores"])
    printf "Errors: ingest JSON %d, NDJSON %d; rows written %d / %d / %d / %d / %d of %d (drain 1x, 2x, end to end 1x, 2x, binary), %d of %d (steady)\n", v["ingest_single_errors"], v["ingest_ndjson_errors"], v["svc1_rows"], v["svc2_rows"], v["e2e1_rows"], v["e2e2_rows"], v["bin_rows"], gens, v["paced_rows"], v["paced_gens"]
  }' "$RESULTS"

{ [ -z "$ONLY" ] || [ "$ONLY" = cache ]; } && awk -F= -v cores="$(nproc)" '
  { v[$1] = $2 }
  function f0(x) { return sprintf("%.0f", x) }
  function us(p) { return sprintf("%.0f / %.0f", v["cache_" p "_p50_us"], v["cache_" p "_p99_us"]) }
  END {
    printf "\ncache (streamfleet/cache/cache.h): %s cores shared by redis and the driver; %d-byte values; GetOrCompute from one thread\n\n", cores, v["cache_value_bytes"]
    print "| Tier that answered | p50 / p99 (us) | What the call did |"
    print "|---|---|---|"
    printf "| redis hit | %s | GET ver, GET epoch, GET key (one pipelined round trip) |\n", us("redis_hit")
    printf "| filesystem hit | %s | the Redis round trip (miss), read + parse + SHA-256 check of the file, SET PX to warm Redis |\n", us("fs_hit")
    printf "| filesystem hit, Redis down | %s | file only (degraded mode; Redis retried once a second) |\n", us("fs_hit_redis_down")
    printf "| origin (trivial compute) | %s | the whole miss path: Redis miss, file miss, SET NX lock, GET, SET PX, atomic file write, unlock script |\n", us("origin")
    printf "\nRedis hits/s: %s with 1 thread, %s with %d threads\n", f0(v["cache_redis_hits_per_s_1"]), f0(v["cache_redis_hits_per_s_n"]), v["cache_threads"]
  }' "$RESULTS"

{ [ -z "$ONLY" ] || [ "$ONLY" = worker ]; } && awk -F= -v cores="$(nproc)" -v tasks="$WORKER_TASKS" -v conc="$WORKER_CONCURRENCY" '
  { v[$1] = $2 }
  function f0(x) { return sprintf("%.0f", x) }
  function f1(x) { return sprintf("%.1f", x) }
  function f2(x) { return sprintf("%.2f", x) }
  function pct(a, b) { return b > 0 ? sprintf("%.0f%%", 100 * a / b) : "n/a" }
  function met(ok) { return ok ? "**yes**" : "**no**" }
  END {
    raw = v["raw_cycle_tps"]
    best = 0; bestc = "-"
    split("1 10 50", cs, " ")
    for (i in cs) { k = "bullmq_c" cs[i] "_process_jps"; if ((k in v) && v[k] > best) { best = v[k]; bestc = cs[i] } }
    sk = 0; skc = "-"
    for (i in cs) { k = "sidekiq_c" cs[i] "_jps"; if ((k in v) && v[k] > sk) { sk = v[k]; skc = cs[i] } }
    ours = v["w1_tps"] > v["w2_tps"] ? v["w1_tps"] : v["w2_tps"]
    printf "\nqueue-worker: %s cores shared by redis, the workers and the driver; %d no-op tasks, WORKER_CONCURRENCY=%d per process\n\n", cores, tasks, conc
    print "| Benchmark | Measured | Reference / target | Ratio | Target met |"
    print "|---|---|---|---|---|"
    def = v["w1_retained_tps"]; anchor = v["anchor_raw_c_tps"]
    printf "| **streamfleet-queue-worker, 1 process, default configuration** (status records on, TASK_RESULT_TTL=3600) | %s tasks/s | >= 3x BullMQ (%s) | %s | %s |\n", f0(def), f0(3 * best), (best > 0 ? sprintf("%.1fx", def / best) : "n/a"), met(best > 0 && def >= 3 * best)
    printf "| default configuration vs status records off (TASK_RESULT_TTL=0, below) | %s / %s tasks/s | >= 60%% of off | %s | %s |\n", f0(def), f0(v["w1_tps"]), pct(def, v["w1_tps"]), met(v["w1_tps"] > 0 && def >= 0.6 * v["w1_tps"])
    if (anchor > 0) printf "| raw C streams round, ../shared/anchors/05 (1 consumer, COUNT 100, concurrent p100) | %s entries/s | anchor | default %s, off %s | |\n", f0(anchor), pct(def, anchor), pct(v["w1_tps"], anchor)
    printf "| raw XADD -> XREADGROUP -> XACK ceiling (COUNT 100, pipelined producer) | %s tasks/s | ceiling | | |\n", f0(raw)
    printf "| enqueue, EnqueueTasks (bulk, 1000 per call) / EnqueueTask (one at a time) | %s / %s tasks/s | | | |\n", f0(v["enqueue_bulk_tps"]), f0(v["enqueue_single_tps"])
    if (best > 0) printf "| BullMQ (anchor 03: enqueue and worker processes), no-op jobs, best of concurrency 1/10/50 (c=%s) | %s jobs/s | anchor | default %.1fx | |\n", bestc, f0(best), def / best
    if (sk > 0) printf "| Sidekiq (anchor 06), no-op jobs, best of concurrency 1/10/50 (c=%s; worker VmHWM %s MB) | %s jobs/s | anchor | default %.1fx | |\n", skc, f1(v["sidekiq_c" skc "_rss_mb"]), f0(sk), def / sk
    printf "| streamfleet-queue-worker, 1 process, status records off | %s tasks/s | >= 3x BullMQ (%s) | %s | %s |\n", f0(v["w1_tps"]), f0(3 * best), (best > 0 ? sprintf("%.1fx", v["w1_tps"] / best) : "n/a"), met(best > 0 && v["w1_tps"] >= 3 * best)
    printf "| streamfleet-queue-worker, 2 processes | %s tasks/s | >= 40%% of raw (%s) | %s | %s |\n", f0(v["w2_tps"]), f0(0.4 * raw), pct(v["w2_tps"], raw), met(v["w2_tps"] >= 0.4 * raw)
    printf "| best of 1 and 2 processes vs the raw ceiling | %s tasks/s | >= 40%% of raw (%s) | %s | %s |\n", f0(ours), f0(0.4 * raw), pct(ours, raw), met(ours >= 0.4 * raw)
    printf "| worker RSS (VmHWM, 1 / 2 processes) | %s / %s MB | <= 32 MB | | %s |\n", f1(v["w1_rss_mb"]), f1(v["w2_rss_mb"]), met(v["w1_rss_mb"] <= 32 && v["w2_rss_mb"] <= 32)
    if (best > 0) printf "| BullMQ process RSS at c=%s | %s MB | (info) | | |\n", bestc, f1(v["bullmq_c" bestc "_rss_mb"])
    printf "| push handler (TASK_ROUTES: an HTTP POST per task to a local keep-alive handler), 1 process, default configuration | %s tasks/s | >= 1x BullMQ (%s) | %s | %s |\n", f0(v["push_tps"]), f0(best), (best > 0 ? sprintf("%.1fx", v["push_tps"] / best) : "n/a"), met(best > 0 && v["push_tps"] >= best)
    printf "| push handler worker RSS (VmHWM) | %s MB | <= 48 MB | | %s |\n", f1(v["push_rss_mb"]), met(v["push_rss_mb"] > 0 && v["push_rss_mb"] <= 48)
    printf "| p99 enqueue-to-start at half the peak rate (target %s, offered %s tasks/s = %s, %d producers, batches of %d) | <= %s ms (histogram bucket; p50 <= %s ms) | <= 5 ms, offered >= 90%% | | %s |\n", f0(v["latency_target_tps"]), f0(v["latency_rate_tps"]), pct(v["latency_rate_tps"], v["latency_target_tps"]), v["latency_producers"], v["latency_batch"], f1(v["latency_wait_p99_ms"]), f1(v["latency_wait_p50_ms"]), met(v["latency_wait_p99_ms"] >= 0 && v["latency_wait_p99_ms"] <= 5 && v["latency_rate_tps"] >= 0.9 * v["latency_target_tps"])
    printf "\nCPU (cores busy, of %s): 1 worker %s + redis %s; 2 workers %s + redis %s; latency phase: producers %s + worker %s + redis %s\n", cores, f2(v["w1_cpu_cores"]), f2(v["w1_redis_cpu_cores"]), f2(v["w2_cpu_cores"]), f2(v["w2_redis_cpu_cores"]), f2(v["latency_gen_cpu_cores"]), f2(v["latency_worker_cpu_cores"]), f2(v["latency_redis_cpu_cores"])
    printf "Enqueue cost per task (EnqueueTasks, 1000 per call): redis %s us CPU, producer %s us CPU\n", f2(v["enqueue_bulk_redis_us_per_task"]), f2(v["enqueue_bulk_client_us_per_task"])
  }' "$RESULTS"
{ [ -z "$ONLY" ] || [ "$ONLY" = live ]; } && awk -F= -v cores="$(nproc)" -v clients="$INGEST_CLIENTS" '
  { v[$1] = $2 }
  function f0(x) { return sprintf("%.0f", x) }
  function f1(x) { return sprintf("%.1f", x) }
  function f2(x) { return sprintf("%.2f", x) }
  function pct(a, b) { return b > 0 ? sprintf("%.0f%%", 100 * a / b) : "n/a" }
  function met(ok) { return ok ? "**yes**" : "**no**" }
  END {
    subs = v["live_b_subs_target"]; gens = v["live_b_gens"]
    printf "\nlive streams (bench/live_bench.cc): %s cores shared by redis, ingest, the compactor (idle and live rows only) and the driver; %s chunks per generation\n\n", cores, f0(v["live_b_chunks_per_gen"])
    print "| Live streams | Measured | Target | Ratio | Target met |"
    print "|---|---|---|---|---|"
    grow = v["live_idle_rss_mb"] - v["live_idle_rss_before_mb"]
    printf "| idle: %s concurrent generation streams (%s generations, none started), ingest VmRSS before / with them open (VmHWM %s MB) | %s / %s MB (+%s MB, %s KB per stream) | <= 256 MB | | %s |\n", f0(v["live_idle_open"]), f0(v["live_idle_gens"]), f1(v["live_idle_hwm_mb"]), f1(v["live_idle_rss_before_mb"]), f1(v["live_idle_rss_mb"]), f1(grow), f1(v["live_idle_open"] > 0 ? grow * 1024 / v["live_idle_open"] : 0), met(v["live_idle_open"] >= v["live_idle_target"] && v["live_idle_target"] >= 10000 && v["live_idle_rss_mb"] <= 256 && v["live_idle_hwm_mb"] <= 256)
    printf "| idle: holding them open, no events (%s still open, %s ended by the server): ingest / redis CPU | %s / %s cores | (info) | | |\n", f0(v["live_idle_still_open"]), f0(v["live_idle_closed_by_server"]), f2(v["live_idle_ingest_cpu_cores"]), f2(v["live_idle_redis_cpu_cores"])
    printf "| live: %s subscribers (%s generations x %s), producer %s chunks/s: 202 read -> event parsed, p50 / p99 / max | %s / %s / %s ms | p99 <= 50 ms | | %s |\n", f0(v["live_b_subs_ready"]), f0(gens), f0(subs / (gens > 0 ? gens : 1)), f0(v["live_b_produce_cps"]), f2(v["live_b_p50_ms"]), f2(v["live_b_p99_ms"]), f2(v["live_b_max_ms"]), met(v["live_b_samples"] > 0 && v["live_b_p99_ms"] <= 50)
    printf "| live: events delivered | %s events/s | %s offered | %s | |\n", f0(v["live_b_events_per_s"]), f0(v["live_b_produce_cps"] * subs / (gens > 0 ? gens : 1)), pct(v["live_b_events_per_s"], v["live_b_produce_cps"] * subs / (gens > 0 ? gens : 1))
    printf "| live: subscribers that got every seq exactly once, in order, byte-exact, then `compacted` (%s out of order, %s missing, %s bad text, %s closed by the server) | %s / %s | all | | %s |\n", f0(v["live_b_out_of_order"]), f0(v["live_b_missing"]), f0(v["live_b_bad_text"]), f0(v["live_b_closed_by_server"]), f0(v["live_b_subs_compacted"] < v["live_b_subs_complete"] ? v["live_b_subs_compacted"] : v["live_b_subs_complete"]), f0(subs), met(subs > 0 && v["live_b_subs_complete"] == subs && v["live_b_subs_compacted"] == subs)
    c0 = v["live_c0_cps"]; c1 = v["live_c1_cps"] + v["live_c1_live_produce_cps"]; c2 = v["live_c2_cps"] + v["live_c2_live_produce_cps"]
    c2b = v["live_c2b_cps"] + v["live_c2b_live_produce_cps"]; c2m = ("live_c2_mean_cps" in v) ? v["live_c2_mean_cps"] : c2
    printf "| chunk path alone: 1 JSON chunk per POST, %d keep-alive clients (mean of a run first, %s, and last, %s; p99 %s / %s ms) | %s chunks/s | reference | | |\n", clients, f0(v["live_c0a_cps"]), f0(v["live_c0b_cps"]), f2(v["live_c0a_p99_ms"]), f2(v["live_c0b_p99_ms"]), f0(c0)
    printf "| chunk path beside the live producer, no subscribers (%s of the %s chunks/s are the producer) | %s chunks/s | (info) | %s | |\n", f0(v["live_c1_live_produce_cps"]), f0(c1), f0(c1), pct(c1, c0)
    printf "| chunk path beside the whole live part: producer + %s subscribers (mean of a run after the first alone, %s, and one before the last, %s; %s chunks/s of each are the producer) | %s chunks/s | >= 80%% of alone | %s | %s |\n", f0(v["live_c2_live_subs_ready"]), f0(c2), f0(c2b), f0(v["live_c2_live_produce_cps"]), f0(c2m), pct(c2m, c0), met(c0 > 0 && c2m >= 0.8 * c0)
    printf "| chunk path beside one stream of a generation that does not start (nothing delivered; the hub'"'"'s tail reads every chunk) | %s chunks/s | (info) | %s | |\n", f0(v["live_c3_cps"]), pct(v["live_c3_cps"], c0)
    printf "| chunk path beside %s streams of generations that do not start (as the idle row; nothing delivered) | %s chunks/s | (info) | %s | |\n", f0(v["live_c4_streams_open"]), f0(v["live_c4_cps"]), pct(v["live_c4_cps"], c0)
    printf "| live latency meanwhile, p50 / p99 / max, first and second run (%s / %s and %s / %s subscribers got every seq once, in order) | %s / %s / %s ms; %s / %s / %s ms | (info) | | |\n", f0(v["live_c2_live_subs_complete"]), f0(v["live_c2_live_subs_ready"]), f0(v["live_c2b_live_subs_complete"]), f0(v["live_c2b_live_subs_ready"]), f2(v["live_c2_live_p50_ms"]), f2(v["live_c2_live_p99_ms"]), f2(v["live_c2_live_max_ms"]), f2(v["live_c2b_live_p50_ms"]), f2(v["live_c2b_live_p99_ms"]), f2(v["live_c2b_live_max_ms"])
    printf "\nCPU (cores busy, of %s): live part ingest %s + redis %s + compactor %s + driver %s; chunk path alone ingest %s + redis %s + driver %s; beside the producer %s + %s + %s; beside the whole live part %s + %s + %s; beside one idle stream %s + %s + %s; beside the idle streams %s + %s + %s\n", cores, f2(v["live_b_ingest_cpu_cores"]), f2(v["live_b_redis_cpu_cores"]), f2(v["live_b_compactor_cpu_cores"]), f2(v["live_b_driver_cpu_cores"]), f2(v["live_c0a_ingest_cpu_cores"]), f2(v["live_c0a_redis_cpu_cores"]), f2(v["live_c0a_driver_cpu_cores"]), f2(v["live_c1_ingest_cpu_cores"]), f2(v["live_c1_redis_cpu_cores"]), f2(v["live_c1_driver_cpu_cores"]), f2(v["live_c2_ingest_cpu_cores"]), f2(v["live_c2_redis_cpu_cores"]), f2(v["live_c2_driver_cpu_cores"]), f2(v["live_c3_ingest_cpu_cores"]), f2(v["live_c3_redis_cpu_cores"]), f2(v["live_c3_driver_cpu_cores"]), f2(v["live_c4_ingest_cpu_cores"]), f2(v["live_c4_redis_cpu_cores"]), f2(v["live_c4_driver_cpu_cores"])
    printf "Redis XREAD (only the hub'"'"'s tail uses it): %s calls/s, %s cores, %s MB/s sent by Redis in all beside the whole live part; %s calls/s, %s cores, %s MB/s beside one idle stream; %s calls/s beside the idle streams; %s MB/s with the chunk path alone\n", f0(v["live_c2_redis_xread_per_s"]), f2(v["live_c2_redis_xread_cpu_cores"]), f1(v["live_c2_redis_out_mb_per_s"]), f0(v["live_c3_redis_xread_per_s"]), f2(v["live_c3_redis_xread_cpu_cores"]), f1(v["live_c3_redis_out_mb_per_s"]), f0(v["live_c4_redis_xread_per_s"]), f1(v["live_c0a_redis_out_mb_per_s"])
    printf "Events parsed before the producer had read their 202 (counted as 0 ms): %s of %s (at most %s ms earlier). Errors: producer %s / %s / %s (live, beside the producer, beside the live part), chunk path %s in all phases. ingest VmRSS after the live part %s MB, VmHWM at the end %s MB\n", pct(v["live_b_negative"], v["live_b_samples"]), f0(v["live_b_samples"]), f2(v["live_b_early_max_ms"]), f0(v["live_b_producer_errors"]), f0(v["live_c1_live_producer_errors"]), f0(v["live_c2_live_producer_errors"] + v["live_c2b_live_producer_errors"]), f0(v["live_c0a_errors"] + v["live_c0b_errors"] + v["live_c1_errors"] + v["live_c2_errors"] + v["live_c2b_errors"] + v["live_c3_errors"] + v["live_c4_errors"]), f1(v["live_rss_after_live_mb"]), f1(v["live_ingest_hwm_mb"])
  }' "$RESULTS"
{ [ -z "$ONLY" ] || [ "$ONLY" = storage ]; } && awk -F= -v cores="$(nproc)" '
  { v[$1] = $2 }
  function f2(x) { return sprintf("%.2f", x) }
  function f0(x) { return sprintf("%.0f", x) }
  END {
    printf "\nstorage (bench/storage_bench.cc): %s cores shared by redis and the bench (producer = ChunkWriter::Append, 50 chunks per call; compactor = one CompactorService into SQLite); pipelined = the producer in its own thread while the compactor drains, as ingest and the compactor run; one after the other = both on one thread, the whole CPU cost of each chunk; best of the rounds\n\n", cores
    print "| content, chunk size | Redis bytes per text byte: streams off / zstd | buffers off / zstd (ratio) | chunk path chunks/s off / zstd (cost), producer and compactor pipelined | the same, one after the other (CPU cost) | <= 0.6x for >= 1 KiB | cost <= 10% (pipelined) |"
    print "|---|---|---|---|---|---|---|"
    n = split("json prose", contents, " "); m = split("20 200 1024 4096 16384 65536", sizes, " ")
    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) {
      k = contents[i] "_" sizes[j]
      if (!((k "_off_chunks_per_s") in v)) continue
      ratio = v[k "_zstd_buffer_mem_per_byte"] / v[k "_off_buffer_mem_per_byte"]
      sratio = v[k "_zstd_stream_mem_per_byte"] / v[k "_off_stream_mem_per_byte"]
      cost = 1 - v[k "_zstd_chunks_per_s"] / v[k "_off_chunks_per_s"]
      pcost = 1 - v[k "_zstd_pipelined_chunks_per_s"] / v[k "_off_pipelined_chunks_per_s"]
      big = sizes[j] >= 1024
      printf "| %s, %s B | %s / %s (%.2fx) | %s / %s (%.2fx) | %s / %s (%+.0f%%) | %s / %s (%+.0f%%) | %s | %s |\n", contents[i], sizes[j], f2(v[k "_off_stream_mem_per_byte"]), f2(v[k "_zstd_stream_mem_per_byte"]), sratio, f2(v[k "_off_buffer_mem_per_byte"]), f2(v[k "_zstd_buffer_mem_per_byte"]), ratio, f0(v[k "_off_pipelined_chunks_per_s"]), f0(v[k "_zstd_pipelined_chunks_per_s"]), -100 * pcost, f0(v[k "_off_chunks_per_s"]), f0(v[k "_zstd_chunks_per_s"]), -100 * cost, big ? (ratio <= 0.6 && sratio <= 0.6 ? "**yes**" : "**no**") : "(left plain)", big ? (pcost <= 0.10 ? "**yes**" : "**no**") : "(nothing compressed: noise)"
    }
    if (!("rows_inline_max" in v)) exit
    printf "\nrow sizes (bench/storage_bench.cc): one generation finalized into SQLite with its text in the row, then with ARTIFACT_STORE (s3rver) and ARTIFACT_INLINE_MAX_BYTES=%s; row = llm_response + compacted + metadata\n\n", f0(v["rows_inline_max"])
    print "| content, text size | row bytes, text in the row | row bytes, text in the store (ratio) | object bytes (zstd-6) |"
    print "|---|---|---|---|"
    m = split("16384 262144 1048576 4194304", tsizes, " ")
    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) {
      k = "rows_" contents[i] "_" tsizes[j]
      if (!((k "_text_bytes") in v)) continue
      printf "| %s, %s KiB | %s | %s (%.2fx) | %s |\n", contents[i], f0(tsizes[j] / 1024), f0(v[k "_inline_row_bytes"]), f0(v[k "_store_row_bytes"]), v[k "_store_row_bytes"] / v[k "_inline_row_bytes"], f0(v[k "_object_bytes"])
    }
  }' "$RESULTS"
true
