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
# start_tls_and_sentinel: what the clients' from_env must reach besides a plain Redis. A redis-server with a TLS
# port only (test certificates made fresh, components/testing/scripts/make_test_certs.sh; client certificates
# required, so a client that does not send REDIS_TLS_CERT/KEY is refused) and one sentinel monitoring the
# fleet's redis-server ($RP) as "mymaster". Sets TLS_PORT, TLS_CERTS (ca.crt, client.crt, client.key in it) and
# SENTINEL_PORT.
start_tls_and_sentinel() {
  local root; root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  TLS_CERTS=$WORK/certs
  bash "$root/components/testing/scripts/make_test_certs.sh" "$TLS_CERTS" || fail "making test certificates"
  TLS_PORT=$(free_port)
  # 127.0.0.2 too: the certificate names 127.0.0.1 and localhost only, so a client reaching it as 127.0.0.2 must
  # refuse it (host name verification).
  redis-server --port 0 --tls-port "$TLS_PORT" --bind 127.0.0.1 127.0.0.2 --save '' --appendonly no --dir "$WORK" \
    --logfile "$WORK/redis-tls.log" --tls-cert-file "$TLS_CERTS/server.crt" --tls-key-file "$TLS_CERTS/server.key" \
    --tls-ca-cert-file "$TLS_CERTS/ca.crt" --tls-auth-clients yes &
  PIDS+=($!)
  SENTINEL_PORT=$(free_port)
  printf 'port %s\nbind 127.0.0.1\ndir %s\nlogfile %s/sentinel.log\nsentinel monitor mymaster 127.0.0.1 %s 1\n' \
    "$SENTINEL_PORT" "$WORK" "$WORK" "$RP" >"$WORK/sentinel.conf"
  redis-server "$WORK/sentinel.conf" --sentinel &
  PIDS+=($!)
  local up=0
  for _ in $(seq 1 100); do
    if redis-cli --tls --cacert "$TLS_CERTS/ca.crt" --cert "$TLS_CERTS/client.crt" --key "$TLS_CERTS/client.key" \
         -p "$TLS_PORT" ping 2>/dev/null | grep -q PONG &&
       redis-cli -p "$SENTINEL_PORT" sentinel get-master-addr-by-name mymaster 2>/dev/null | grep -q "$RP"; then
      up=1; break
    fi
    sleep 0.1
  done
  [ $up = 1 ] || fail "the TLS redis-server on $TLS_PORT or the sentinel on $SENTINEL_PORT did not start"
}
