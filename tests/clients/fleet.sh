# Sourced by the client test scripts after tests/e2e/lib.sh: a redis-server and two real queue-workers on it,
# one per key schema, so every client is tested against both layouts:
#   standard schema, prefix "streamfleet" (one stream per queue)
#   cluster schema, prefix "sfc", TASK_QUEUE_SHARDS left at its default (4): hash-tagged shards. A cluster
#   schema on one redis-server is allowed and behaves like a cluster for key names and shard choice.
# Sets RP (the Redis port). Both workers read critical, default and low; a queue named "unread" is read by
# nobody, so a test can look at tasks that no worker will take.
start_fleet() {
  local build=$1 m1 m2
  RP=$(free_port); m1=$(free_port); m2=$(free_port)
  start_redis "$RP"
  REDIS_PORT=$RP DATABASE_URL="sqlite:$WORK/w1.db" METRICS_LISTEN=127.0.0.1:$m1 CONSUMER_NAME=w-standard LOG_LEVEL=warn \
    "$build/queue-worker/streamfleet-queue-worker" 2>"$WORK/worker-standard.log" &
  PIDS+=($!)
  REDIS_PORT=$RP DATABASE_URL="sqlite:$WORK/w2.db" METRICS_LISTEN=127.0.0.1:$m2 CONSUMER_NAME=w-cluster LOG_LEVEL=warn \
    STREAMFLEET_STREAM_PREFIX=sfc STREAMFLEET_KEY_SCHEMA=cluster \
    "$build/queue-worker/streamfleet-queue-worker" 2>"$WORK/worker-cluster.log" &
  PIDS+=($!)
  for p in $m1 $m2; do
    wait_http "http://127.0.0.1:$p/healthz"
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$p/readyz" >/dev/null || fail "worker with metrics on $p not ready"
  done
}
# start_ingest BUILD: a real streamfleet-ingest on the same redis-server for the signed live-stream links, with
# INGEST_TOKENS="$INGEST_ORG:$INGEST_TOKEN" (org 3, a random token). Sets INGEST_URL, INGEST_ORG, INGEST_TOKEN.
# Its SQLite database (the live routes read a compacted generation's row there) is in WORK.
start_ingest() {
  local build=$1 ip mi
  ip=$(free_port); mi=$(free_port)
  INGEST_ORG=3; INGEST_TOKEN=live-token-$RANDOM$RANDOM; INGEST_URL=http://127.0.0.1:$ip
  REDIS_PORT=$RP DATABASE_URL="sqlite:$WORK/ingest.db" INGEST_LISTEN=127.0.0.1:$ip METRICS_LISTEN=127.0.0.1:$mi \
    INGEST_TOKENS="$INGEST_ORG:$INGEST_TOKEN" LOG_LEVEL=warn "$build/ingest/streamfleet-ingest" 2>"$WORK/ingest.log" &
  PIDS+=($!)
  wait_http "$INGEST_URL/healthz"
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$mi/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$mi/readyz" >/dev/null || fail "ingest with metrics on $mi not ready"
}
