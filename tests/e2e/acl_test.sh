#!/usr/bin/env bash
# The fleet under deploy/redis/users.acl (see deploy/redis/README.md): redis-server loads the file (default user off), ingest, compactor
# and queue-worker each connect as their own ACL user, and the chunk path and the task path still work end
# to end. Then what the ACL must refuse is refused: the default user is off, ingest cannot touch task keys or
# run FLUSHALL, a wrong password is rejected. Loopback only; everything it starts is killed on exit.
# Usage: acl_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$(dirname "$0")/lib.sh"
DEADLINE=$((SECONDS + ${DEADLINE:-60}))

RP=$(free_port); IP=$(free_port); MI=$(free_port); MC=$(free_port); MW=$(free_port)
cp "$ROOT/deploy/redis/users.acl" "$WORK/users.acl"
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" \
  --aclfile "$WORK/users.acl" &
PIDS+=($!)
rc() { local u=$1 p=$2; shift 2; redis-cli -p "$RP" --user "$u" --pass "$p" --no-auth-warning "$@"; }
# Output is captured before grep: `redis-cli ... | grep -q` races with SIGPIPE under pipefail.
answer() { "$@" 2>&1 || true; }
# says PATTERN COMMAND...: the command's answer contains PATTERN.
says() { local want=$1; shift; grep -q "$want" <<<"$(answer "$@")"; }
for _ in $(seq 1 50); do says PONG rc operator change-me-operator ping && break; sleep 0.1; done
says PONG rc operator change-me-operator ping || fail "redis-server did not start with the ACL file"

url() { echo "redis://$1:change-me-$1@127.0.0.1:$RP"; }
export DATABASE_URL="sqlite:$WORK/fleet.db" GENERATION_IDLE_TIMEOUT=2s LOG_LEVEL=warn
REDIS_URL=$(url ingest) INGEST_LISTEN=127.0.0.1:$IP METRICS_LISTEN=127.0.0.1:$MI \
  "$BUILD/ingest/streamfleet-ingest" 2>"$WORK/ingest.log" &
PIDS+=($!)
REDIS_URL=$(url compactor) CONSUMER_NAME=c1 METRICS_LISTEN=127.0.0.1:$MC REDIS_INFO_METRICS=true \
  "$BUILD/compactor/streamfleet-compactor" 2>"$WORK/compactor.log" &
PIDS+=($!)
REDIS_URL=$(url worker) CONSUMER_NAME=w METRICS_LISTEN=127.0.0.1:$MW \
  "$BUILD/queue-worker/streamfleet-queue-worker" 2>"$WORK/worker.log" &
PIDS+=($!)
for p in $MI $MC $MW; do wait_http "http://127.0.0.1:$p/readyz"; done
echo "ok: ingest, compactor and queue-worker ready under their ACL users"

# The chunk path: 3 chunks and the end of a generation, compacted into its row.
for i in 0 1 2; do
  curl -sf -X POST "http://127.0.0.1:$IP/v1/orgs/12/generations/59/chunks?scenario_id=345" \
    -H 'Content-Type: application/json' -d "{\"seq\": $i, \"data\": \"[$i]\", \"final\": $([ $i = 2 ] && echo true || echo false)}" \
    >/dev/null || fail "chunk $i refused"
done
until [ "$(sqlite3 "$WORK/fleet.db" 'SELECT chunk_count FROM scenario_generations WHERE id = 59' 2>/dev/null)" = 3 ]; do
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "generation 59 was not compacted under the ACL"
  sleep 0.2
done
echo "ok: chunks appended by user ingest, compacted by user compactor"
curl -sf "http://127.0.0.1:$IP/v1/orgs/12/generations/59/progress" >/dev/null || fail "progress under the ACL"

# Starting a generation through ingest: an id from the counter and a generation.run task (its run needs a
# provider; here only that user ingest may enqueue it).
curl -sf -X POST "http://127.0.0.1:$IP/v1/orgs/12/generations" -H 'Content-Type: application/json' \
  -d '{"instruction": {"content": "Plan a launch", "source": "api", "language": "en"}}' >/dev/null \
  || fail "POST /v1/orgs/12/generations refused under the ACL"
echo "ok: generation started by user ingest"

# The task API under user ingest (docs/task-api.md): a task now (run by user worker), a delayed unique one,
# its duplicate, its status and its cancel.
T="http://127.0.0.1:$IP/v1/tasks"
now=$(curl -sf -X POST "$T" -H 'Content-Type: application/json' -d '{"type": "noop"}' | jq -r .task_id)
[ -n "$now" ] && [ "$now" != null ] || fail "POST /v1/tasks refused under the ACL"
later=$(curl -sf -X POST "$T" -H 'Content-Type: application/json' \
  -d '{"type": "noop", "delay": "1h", "unique_key": "acl-1"}' | jq -r .task_id)
[ -n "$later" ] && [ "$later" != null ] || fail "a delayed unique task refused under the ACL"
[ "$(curl -s -X POST "$T" -H 'Content-Type: application/json' -d '{"type": "noop", "unique_key": "acl-1"}' \
  | jq -r .task_id)" = "$later" ] || fail "the duplicate did not name its holder under the ACL"
curl -sf -X DELETE "$T/$later" | jq -e '.state == "cancelled"' >/dev/null || fail "cancel refused under the ACL"
until [ "$(curl -sf "$T/$now" | jq -r .state)" = succeeded ]; do
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "task $now (task API) did not succeed under the ACL"
  sleep 0.2
done
echo "ok: task API (now, delayed, unique, status, cancel) under user ingest"

# The task path: enqueued by the operator, run by user worker.
id=$(REDIS_URL=$(url operator) "$BUILD/tools/streamfleetctl" --json enqueue noop | jq -r .id)
until [ "$(rc operator change-me-operator hget "streamfleet:task:$id" state)" = succeeded ]; do
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "task $id did not succeed under the ACL"
  sleep 0.2
done
echo "ok: task enqueued by user operator, run by user worker"
REDIS_URL=$(url operator) "$BUILD/tools/streamfleetctl" streams >/dev/null || fail "streamfleetctl streams as operator"

# What must be refused.
says NOAUTH redis-cli -p "$RP" ping || fail "the default user must be off"
says NOPERM rc ingest change-me-ingest flushall || fail "ingest may not FLUSHALL"
says NOPERM rc ingest change-me-ingest keys '*' || fail "ingest may not KEYS"
says NOPERM rc ingest change-me-ingest zrange streamfleet:scheduled 0 -1 || fail "ingest may not read the task schedule"
says NOPERM rc ingest change-me-ingest xrange streamfleet:dlq:tasks - + || fail "ingest may not read task dead letters"
says NOPERM rc worker change-me-worker config get maxmemory || fail "worker may not CONFIG"
says WRONGPASS rc compactor wrong-password ping || fail "a wrong password must be rejected"
echo "ok: default user off; FLUSHALL, KEYS, CONFIG and foreign keys refused; wrong password rejected"
for f in "$WORK"/ingest.log "$WORK"/compactor.log "$WORK"/worker.log; do
  if grep -q NOPERM "$f"; then fail "$(basename "$f") hit an ACL refusal: the ACL misses something it needs"; fi
done
echo "PASS acl_test"
