#!/usr/bin/env bash
# The fleet under deploy/redis/users.acl on a Redis Cluster (REDIS_CLUSTER=true: the hash-tagged key schema,
# deploy/k8s/overlays/prod-cluster): three masters load the file, and ingest, compactor and queue-worker each
# connect as their own ACL user; the chunk path (chunks to a compacted row), the task API (now, delayed,
# unique, cancel), live streams, a schedule, a task run by user worker, an application as user producer
# (clients/python on the cluster) and the operator's streamfleetctl all work, and no node refused anything
# (ACL LOG). Setting the cluster up needs
# CLUSTER ADDSLOTS/MEET, which no fleet user has: the test's copy of the file adds a `setup` user for that.
# Loopback only; everything it starts is killed on exit.
# Usage: acl_cluster_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/acl_checks.sh"
DEADLINE=$((SECONDS + ${DEADLINE:-90}))

{ cat "$ROOT/deploy/redis/users.acl"; echo "user setup on >setup ~* &* +@all"; } >"$WORK/users.acl"
# A cluster node also listens on its port + 10000 (the cluster bus): both must be free, and the port <= 55535.
cluster_port() {
  python3 -c '
import random, socket
while True:
    p = random.randint(20000, 55000)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
    except OSError:
        continue
    print(p); break'
}
NODES=()
for i in 1 2 3; do
  p=$(cluster_port)
  mkdir -p "$WORK/n$i"
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/n$i" --logfile "$WORK/node$i.log" \
    --cluster-enabled yes --cluster-config-file "$WORK/n$i/nodes.conf" --aclfile "$WORK/users.acl" &
  PIDS+=($!)
  NODES+=("127.0.0.1:$p")
done
setup() { redis-cli --user setup --pass setup --no-auth-warning "$@"; }
for n in "${NODES[@]}"; do
  for _ in $(seq 1 100); do [ "$(setup -p "${n#*:}" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  [ "$(setup -p "${n#*:}" ping 2>/dev/null)" = PONG ] || fail "cluster node $n did not start"
done
setup --cluster create "${NODES[@]}" --cluster-yes >"$WORK/create.log" 2>&1 || { cat "$WORK/create.log" >&2; fail "redis-cli --cluster create"; }
for _ in $(seq 1 100); do
  grep -q cluster_state:ok <<<"$(setup -p "${NODES[0]#*:}" cluster info)" && break
  sleep 0.1
done
grep -q cluster_state:ok <<<"$(setup -p "${NODES[0]#*:}" cluster info)" || fail "the cluster did not form"
echo "ok: 3 masters under the ACL file"

IP=$(free_port); MI=$(free_port); MC=$(free_port); MW=$(free_port)
url() { echo "redis://$1:change-me-$1@${NODES[0]}"; }
export REDIS_CLUSTER=true DATABASE_URL="sqlite:$WORK/fleet.db" GENERATION_IDLE_TIMEOUT=2s LOG_LEVEL=warn
REDIS_URL=$(url ingest) INGEST_LISTEN=127.0.0.1:$IP METRICS_LISTEN=127.0.0.1:$MI \
  "$BUILD/ingest/streamfleet-ingest" 2>"$WORK/ingest.log" &
PIDS+=($!)
REDIS_URL=$(url compactor) CONSUMER_NAME=c1 METRICS_LISTEN=127.0.0.1:$MC \
  "$BUILD/compactor/streamfleet-compactor" 2>"$WORK/compactor.log" &
PIDS+=($!)
REDIS_URL=$(url worker) CONSUMER_NAME=w METRICS_LISTEN=127.0.0.1:$MW \
  SCHEDULES='[{"name": "tick", "cron": "@every 1s", "type": "noop"}]' \
  "$BUILD/queue-worker/streamfleet-queue-worker" 2>"$WORK/worker.log" &
PIDS+=($!)
for p in $MI $MC $MW; do
  until curl -sf "http://127.0.0.1:$p/readyz" >/dev/null; do
    [ "$SECONDS" -lt "$DEADLINE" ] || { curl -s "http://127.0.0.1:$p/readyz" >&2 || true; fail "a process on metrics port $p is not ready under the ACL on the cluster"; }
    sleep 0.2
  done
done
echo "ok: ingest, compactor and queue-worker ready under their ACL users on the cluster"

# The chunk path: several generations (so several hash-tagged shards), each compacted into its row.
for g in 61 62 63 64 65 66 67 68; do
  for i in 0 1; do
    curl -sf -X POST "http://127.0.0.1:$IP/v1/orgs/12/generations/$g/chunks" -H 'Content-Type: application/json' \
      -d "{\"seq\": $i, \"data\": \"[$i]\", \"final\": $([ $i = 1 ] && echo true || echo false)}" >/dev/null \
      || fail "chunk $i of generation $g refused on the cluster"
  done
done
until [ "$(sqlite3 "$WORK/fleet.db" 'SELECT COUNT(*) FROM scenario_generations WHERE chunk_count = 2' 2>/dev/null)" = 8 ]; do
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "the generations were not compacted under the ACL on the cluster"
  sleep 0.2
done
echo "ok: chunks appended by user ingest, compacted by user compactor, on every shard"

acl_live_streams "$IP" 69 "on the cluster"

acl_task_api "$IP" "on the cluster"

# An application as user producer (the cluster schema's queue shards), and the operator's CLI.
acl_producer_app "on the cluster" REDIS_URL="$(url producer)"
REDIS_URL=$(url operator) "$BUILD/tools/streamfleetctl" streams >/dev/null || fail "streamfleetctl streams as operator on the cluster"
id=$(REDIS_URL=$(url operator) "$BUILD/tools/streamfleetctl" --json enqueue noop | jq -r .id)
[ -n "$id" ] && [ "$id" != null ] || fail "streamfleetctl enqueue as operator on the cluster"
echo "ok: streamfleetctl as user operator on the cluster"

# A schedule fired (SCHEDULES under user worker), and no node refused anything, fire-and-forget writes whose
# replies no process logs included (ACL LOG, read by the test-only setup user).
until [ -n "$(setup -c -p "${NODES[0]#*:}" get streamfleet:schedule:tick)" ]; do
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "schedule tick did not fire under user worker on the cluster"
  sleep 0.2
done
for n in "${NODES[@]}"; do
  refused=$(setup -p "${n#*:}" acl log 20)
  [ -z "$refused" ] || fail "node $n refused the fleet (ACL LOG): $(tr '\n' ' ' <<<"$refused" | cut -c1-600)"
done
for f in "$WORK"/ingest.log "$WORK"/compactor.log "$WORK"/worker.log; do
  if grep -q NOPERM "$f"; then fail "$(basename "$f") hit an ACL refusal on the cluster: the ACL misses something it needs"; fi
done
echo "ok: a schedule fired under user worker; every node's ACL LOG is empty"
echo "PASS acl_cluster_test"
