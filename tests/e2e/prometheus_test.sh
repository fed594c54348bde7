#!/usr/bin/env bash
# The fleet as a real Prometheus server sees it: redis-server + ingest + compactor + queue-worker (real
# binaries) and /usr/bin/prometheus scraping all three every second from a generated config, with a
# throwaway TSDB. While generations and tasks flow, the HTTP API (/api/v1/query) must show: every target up
# with build info and process metrics, the chunk counters of ingest and compactor equal to what was sent,
# the tasks counted, Redis keyspace hit/miss series, the compactor group's lag back at 0, and evictions > 0.
# The processes log with LOG_FORMAT=json: every line of their logs must be a JSON object.
# Offline, loopback only, bounded in time (DEADLINE s); everything it starts is killed on exit.
# Usage: prometheus_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
source "$(dirname "$0")/lib.sh"
DEADLINE=$((SECONDS + ${DEADLINE:-90}))

RP=$(free_port); IP=$(free_port); MI=$(free_port); MC=$(free_port); MW=$(free_port); PP=$(free_port)
start_redis "$RP"
# JSON log lines at info level: checked at the end to be one valid JSON object per line.
export REDIS_PORT=$RP DATABASE_URL="sqlite:$WORK/fleet.db" GENERATION_IDLE_TIMEOUT=2s LOG_LEVEL=info LOG_FORMAT=json
INGEST_LISTEN=127.0.0.1:$IP METRICS_LISTEN=127.0.0.1:$MI "$BUILD/ingest/streamfleet-ingest" 2>"$WORK/ingest.log" &
PIDS+=($!)
CONSUMER_NAME=c1 METRICS_LISTEN=127.0.0.1:$MC "$BUILD/compactor/streamfleet-compactor" 2>"$WORK/compactor.log" &
PIDS+=($!)
CONSUMER_NAME=w METRICS_LISTEN=127.0.0.1:$MW "$BUILD/queue-worker/streamfleet-queue-worker" 2>"$WORK/worker.log" &
PIDS+=($!)

cat > "$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: streamfleet-ingest
    static_configs: [{targets: ['127.0.0.1:$MI']}]
  - job_name: streamfleet-compactor
    static_configs: [{targets: ['127.0.0.1:$MC']}]
  - job_name: streamfleet-queue-worker
    static_configs: [{targets: ['127.0.0.1:$MW']}]
EOF
promtool check config "$WORK/prometheus.yml" >/dev/null || fail "generated prometheus.yml rejected"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PP" 2>"$WORK/prometheus.log" &
PIDS+=($!)
for p in $MI $MC $MW; do wait_http "http://127.0.0.1:$p/healthz"; done
wait_http "http://127.0.0.1:$PP/-/ready"

# The value of an instant query's first sample ("" when the result is empty).
query() {
  curl -sf --get "http://127.0.0.1:$PP/api/v1/query" --data-urlencode "query=$1" |
    jq -r '.data.result[0].value[1] // ""'
}
# Polls until the query's value equals want (numerically), or fails at the deadline.
expect_value() {
  local q=$1 want=$2 got=""
  while [ "$SECONDS" -lt "$DEADLINE" ]; do
    got=$(query "$q")
    if [ -n "$got" ] && awk -v a="$got" -v b="$want" 'BEGIN { exit !(a + 0 == b + 0) }'; then
      echo "ok: $q = $got"; return 0
    fi
    sleep 0.5
  done
  fail "$q: wanted $want, last value '${got}'"
}

expect_value 'count(up{job=~"streamfleet-.*"} == 1)' 3
expect_value 'count(streamfleet_build_info == 1)' 3
expect_value 'count(process_open_fds > 0)' 3
expect_value 'count(rate(process_cpu_seconds_total[5s]) >= 0)' 3

# 10 generations x 20 chunks (NDJSON) and 5 tasks, while Prometheus scrapes.
API=http://127.0.0.1:$IP/v1/orgs/3/generations
GENS=10; CHUNKS=20; TASKS=5
for g in $(seq 1 $GENS); do
  for s in $(seq 0 $((CHUNKS - 1))); do
    fin=false; [ "$s" = $((CHUNKS - 1)) ] && fin=true
    echo "{\"seq\": $s, \"data\": \"g${g}s${s} \", \"final\": $fin}"
  done > "$WORK/g$g.ndjson"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$API/$g/chunks" -H 'Content-Type: application/x-ndjson' \
    --data-binary @"$WORK/g$g.ndjson")
  [ "$code" = 202 ] || fail "ingest answered $code for generation $g"
done
for _ in $(seq 1 $TASKS); do "$BUILD/tools/streamfleetctl" enqueue noop >/dev/null; done

SENT=$((GENS * CHUNKS))
expect_value 'sum(streamfleet_ingest_chunks_total)' $SENT
expect_value 'sum(streamfleet_compactor_chunks_applied_total)' $SENT
expect_value 'sum(streamfleet_compactor_generations_finalized_total)' $GENS
expect_value 'sum(streamfleet_worker_tasks_processed_total{outcome="succeeded"})' $TASKS
expect_value 'count(streamfleet_stream_lag{group="compactor"})' 5  # CHUNK_STREAMS=4 chunk streams + finalize
expect_value 'max(streamfleet_stream_lag{group="compactor"})' 0
expect_value 'max(streamfleet_stream_pending{group="compactor"})' 0
expect_value 'count(streamfleet_redis_keyspace_hits_total) + count(streamfleet_redis_keyspace_misses_total)' 2
expect_value 'sum(streamfleet_redis_outages_total)' 0
expect_value 'count(streamfleet_buffers_live)' 1

# Evictions last, once the checks above passed: maxmemory just above what the fleet uses, allkeys-lru, and
# filler keys in another logical DB. LRU may evict a fleet key too; nothing after this depends on one.
USED=$(redis-cli -p "$RP" INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
redis-cli -p "$RP" CONFIG SET maxmemory $((USED + 2 * 1024 * 1024)) >/dev/null
redis-cli -p "$RP" CONFIG SET maxmemory-policy allkeys-lru >/dev/null
python3 -c '
import sys
pad = "x" * 4096
for i in range(2000):
    k = "filler:%d" % i
    sys.stdout.write("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(pad), pad))
' | redis-cli -p "$RP" -n 1 --pipe >/dev/null
redis-cli -p "$RP" CONFIG SET maxmemory 0 >/dev/null
[ "$(redis-cli -p "$RP" INFO stats | tr -d '\r' | awk -F: '$1 == "evicted_keys" { print $2 }')" -gt 0 ] ||
  fail "Redis evicted nothing"
expect_value 'sum(streamfleet_redis_evicted_keys_total) > bool 0' 1

for f in ingest compactor worker; do
  [ -s "$WORK/$f.log" ] || fail "$f logged nothing at info level"
  jq -s -e 'all(has("ts") and has("level") and has("msg"))' "$WORK/$f.log" >/dev/null || fail "$f.log: not JSON lines"
done
echo "Prometheus scraped ingest, compactor and queue-worker; counters, lag, hit/miss and evictions as expected"
echo "1 passed, 0 failed ($SECONDS s)"
