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

# Live streams under user ingest: its tail reads every shard's chunk stream and the events stream.
curl -sN --max-time 15 "http://127.0.0.1:$IP/v1/orgs/12/generations/69/stream" >"$WORK/live-gen.txt" 2>/dev/null &
LIVE_GEN=$!
curl -sN --max-time 6 "http://127.0.0.1:$IP/v1/orgs/12/events" >"$WORK/live-events.txt" 2>/dev/null &
LIVE_EVENTS=$!
sleep 0.5
for i in 0 1; do
  curl -sf -X POST "http://127.0.0.1:$IP/v1/orgs/12/generations/69/chunks" -H 'Content-Type: application/json' \
    -d "{\"seq\": $i, \"data\": \"[$i]\", \"final\": $([ $i = 1 ] && echo true || echo false)}" >/dev/null \
    || fail "chunk $i of generation 69 refused on the cluster"
done
wait "$LIVE_GEN" || true
wait "$LIVE_EVENTS" || true
grep -q "^event: compacted" "$WORK/live-gen.txt" || fail "the live stream of generation 69 on the cluster: $(tail -c 300 "$WORK/live-gen.txt")"
grep -q '"generation_id":69' "$WORK/live-events.txt" || fail "the events stream on the cluster: $(tail -c 300 "$WORK/live-events.txt")"
echo "ok: live generation and events streams under user ingest on the cluster"

# The task API under user ingest, and tasks run by user worker.
T="http://127.0.0.1:$IP/v1/tasks"
now=$(curl -sf -X POST "$T" -H 'Content-Type: application/json' -d '{"type": "noop"}' | jq -r .task_id)
[ -n "$now" ] && [ "$now" != null ] || fail "POST /v1/tasks refused on the cluster"
later=$(curl -sf -X POST "$T" -H 'Content-Type: application/json' \
  -d '{"type": "noop", "delay": "1h", "unique_key": "acl-c"}' | jq -r .task_id)
[ -n "$later" ] && [ "$later" != null ] || fail "a delayed unique task refused on the cluster"
curl -sf -X DELETE "$T/$later" | jq -e '.state == "cancelled"' >/dev/null || fail "cancel refused on the cluster"
until [ "$(curl -sf "$T/$now" | jq -r .state)" = succeeded ]; do
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "task $now did not succeed under the ACL on the cluster"
  sleep 0.2
done
echo "ok: task API (now, delayed, unique, cancel) under user ingest, run by user worker"

# An application as user producer (the cluster schema's queue shards), and the operator's CLI.
PYTHONPATH="$ROOT/clients/python" REDIS_URL=$(url producer) /usr/bin/python3 - >"$WORK/producer.log" 2>&1 <<'PY' \
  || fail "an application as user producer on the cluster (clients/python)"
import time
from streamfleet_client import CancelOutcome, TaskClient
client = TaskClient.from_env()
task = client.enqueue("noop", {"from": "producer"})
deadline = time.monotonic() + 20
while (status := client.status(task.id)) is None or status.state != "succeeded":
    if time.monotonic() > deadline:
        raise SystemExit(f"the worker did not run the producer's task: {status}")
    time.sleep(0.05)
later = client.enqueue("noop", {}, delay=3600, unique_key="acl-cluster")
assert client.cancel(later.id).outcome is CancelOutcome.CANCELLED
client.pause("low")
assert "low" in client.paused_queues()
client.resume("low")
PY
echo "ok: user producer enqueues, follows, cancels and pauses on the cluster (the worker ran its task)"
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
