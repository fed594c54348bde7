#!/usr/bin/env bash
# The fleet under deploy/redis/users.acl (see deploy/redis/README.md): redis-server loads the file (default user off), ingest, compactor
# and queue-worker each connect as their own ACL user, and the chunk path and the task path still work end
# to end. The admin process runs as user admin through a Redis Sentinel (the client checks ROLE there) and
# its API answers. Then what the ACL must refuse is refused: the default user is off, ingest cannot touch task
# keys or run FLUSHALL, a wrong password is rejected; the users of KEDA (keda: INFO, XINFO GROUPS, XLEN,
# XPENDING on the scaled streams, read only) and of the Redis exporter (exporter: INFO, SLOWLOG, LATENCY, no
# keys) can do what they need and nothing else; every fleet user may run ROLE (Sentinel) and CLUSTER SLOTS
# (Redis Cluster). With prometheus-redis-exporter installed (or REDIS_EXPORTER=path), the real exporter scrapes
# as user exporter. Loopback only; everything it starts is killed on exit.
# Usage: acl_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/acl_checks.sh"
DEADLINE=$((SECONDS + ${DEADLINE:-60}))

RP=$(free_port); IP=$(free_port); MI=$(free_port); MC=$(free_port); MW=$(free_port)
# The file as shipped, plus a test-only `setup` user that reads ACL LOG: what the server refused, including
# replies a process throws away (a fire-and-forget write's NOPERM reaches no log of the process).
{ cat "$ROOT/deploy/redis/users.acl"; echo "user setup on >setup ~* &* +@all"; } >"$WORK/users.acl"
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
  SCHEDULES='[{"name": "tick", "cron": "@every 1s", "type": "noop"}]' \
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

acl_live_streams "$IP" 60 "under the ACL"

# Starting a generation through ingest: an id from the counter and a generation.run task (its run needs a
# provider; here only that user ingest may enqueue it).
curl -sf -X POST "http://127.0.0.1:$IP/v1/orgs/12/generations" -H 'Content-Type: application/json' \
  -d '{"instruction": {"content": "Plan a launch", "source": "api", "language": "en"}}' >/dev/null \
  || fail "POST /v1/orgs/12/generations refused under the ACL"
# With an Idempotency-Key (its key lives beside the organization's control hashes): started once, replayed once.
for _ in 1 2; do
  curl -sf -X POST "http://127.0.0.1:$IP/v1/orgs/12/generations" -H 'Content-Type: application/json'     -H 'Idempotency-Key: acl-start-1' -d '{"instruction": {"content": "Plan a launch"}}' >>"$WORK/keyed-starts"     || fail "POST /v1/orgs/12/generations with an Idempotency-Key refused under the ACL"
  echo >>"$WORK/keyed-starts"
done
[ "$(jq -r .generation_id "$WORK/keyed-starts" | sort -u | wc -l)" = 1 ] || fail "a keyed start replayed another generation"
echo "ok: generation started by user ingest"

acl_task_api "$IP" "under the ACL"

# The task path: enqueued by the operator, run by user worker.
id=$(REDIS_URL=$(url operator) "$BUILD/tools/streamfleetctl" --json enqueue noop | jq -r .id)
until [ "$(rc operator change-me-operator hget "streamfleet:task:$id" state)" = succeeded ]; do
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "task $id did not succeed under the ACL"
  sleep 0.2
done
echo "ok: task enqueued by user operator, run by user worker"
REDIS_URL=$(url operator) "$BUILD/tools/streamfleetctl" streams >/dev/null || fail "streamfleetctl streams as operator"

# The admin UI as user admin, through a sentinel (REDIS_SENTINELS): the master it names is asked ROLE, which the
# fleet's users must be allowed (users.acl: +role). The sentinel never needs to reach the master to answer.
SP=$(free_port); AP=$(free_port); MA=$(free_port)
printf 'port %s\nbind 127.0.0.1\ndir %s\nlogfile %s\nsentinel monitor m 127.0.0.1 %s 1\nsentinel down-after-milliseconds m 600000\n' \
  "$SP" "$WORK" "$WORK/sentinel.log" "$RP" >"$WORK/sentinel.conf"
redis-server "$WORK/sentinel.conf" --sentinel &
PIDS+=($!)
ADMIN_TOKEN=acl-admin-token REDIS_SENTINELS=127.0.0.1:$SP REDIS_SENTINEL_MASTER=m REDIS_USERNAME=admin \
  REDIS_PASSWORD=change-me-admin ADMIN_LISTEN=127.0.0.1:$AP METRICS_LISTEN=127.0.0.1:$MA ADMIN_SAMPLE_INTERVAL=200ms \
  "$BUILD/admin/streamfleet-admin" 2>"$WORK/admin.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$MA/readyz"
api() { curl -sf -H 'Authorization: Bearer acl-admin-token' "$@"; }
for path in overview streams queues dead-letters "tasks?state=scheduled" "generations?org=12&gen=59"; do
  api "http://127.0.0.1:$AP/api/$path" >/dev/null || fail "admin GET /api/$path under user admin"
done
for action in pause resume; do
  api -X POST -H 'Content-Type: application/json' -d '{"queue": "low"}' "http://127.0.0.1:$AP/api/queues/$action" \
    >/dev/null || fail "admin POST /api/queues/$action under user admin"
done
echo "ok: admin UI API as user admin, through a sentinel"
for u in ingest compactor worker admin operator; do
  [ "$(rc "$u" "change-me-$u" role | head -1)" = master ] || fail "user $u may not run ROLE (needed behind Sentinel)"
  says 'cluster support disabled' rc "$u" "change-me-$u" cluster slots || fail "user $u may not run CLUSTER SLOTS"
done
echo "ok: every fleet user may run ROLE and CLUSTER SLOTS"

# Nothing the fleet did so far was refused, fire-and-forget writes included; a schedule fired (SCHEDULES under
# user worker) within a housekeeping round.
until [ -n "$(rc setup setup get streamfleet:schedule:tick)" ]; do
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "schedule tick did not fire under user worker"
  sleep 0.2
done
refused=$(rc setup setup acl log 20)
[ -z "$refused" ] || fail "the server refused the fleet (ACL LOG): $(tr '\n' ' ' <<<"$refused" | cut -c1-600)"
echo "ok: a schedule fired under user worker; ACL LOG empty (nothing of the fleet refused)"

# KEDA's user: what the redis-streams scaler runs (INFO for the version, XINFO GROUPS for the lag, XLEN and
# XPENDING in its other modes) on the streams it scales, read only.
k() { rc keda change-me-keda "$@"; }
says redis_version k info server || fail "keda may not INFO"
says workers k xinfo groups streamfleet:queue:default || fail "keda may not XINFO GROUPS a task queue"
chunk_streams=$(rc operator change-me-operator --scan --pattern 'streamfleet:chunks:*')
says compactor k xinfo groups "${chunk_streams%%$'\n'*}" || fail "keda may not XINFO GROUPS a chunk stream"
[[ "$(k xlen streamfleet:queue:default)" =~ ^[0-9]+$ ]] || fail "keda may not XLEN"
says NOPERM k xpending streamfleet:queue:default workers && fail "keda may not XPENDING"
says 'cluster support disabled' k cluster slots || fail "keda may not CLUSTER SLOTS (redis-cluster-streams)"
says NOPERM k xadd streamfleet:queue:default '*' a b || fail "keda may not XADD"
says NOPERM k xreadgroup group workers keda count 1 streams streamfleet:queue:default '>' || fail "keda may not XREADGROUP"
says NOPERM k xinfo groups streamfleet:events || fail "keda may not read a stream it does not scale on"
says NOPERM k hgetall streamfleet:task:x || fail "keda may not read task hashes"
says NOPERM k config get maxmemory || fail "keda may not CONFIG"
echo "ok: user keda reads the lag of the scaled streams and nothing else"

# The exporter's user: what redis_exporter runs without key checks, no key access, no CONFIG (README).
e() { rc exporter change-me-exporter "$@"; }
says evicted_keys e info all || fail "exporter may not INFO"
says OK e client setname redis_exporter || fail "exporter may not CLIENT SETNAME"
[[ "$(e slowlog len)" =~ ^[0-9]+$ ]] || fail "exporter may not SLOWLOG LEN"
says NOPERM e slowlog get 1 && fail "exporter may not SLOWLOG GET"
says NOPERM e latency latest && fail "exporter may not LATENCY LATEST"
says PONG e ping || fail "exporter may not PING"
for cmd in "set x 1" "get streamfleet:paused" "scan 0" "config get *" "client list" "client kill id 1" "slowlog reset" \
  "flushall" "xinfo groups streamfleet:queue:default"; do
  read -ra argv <<<"$cmd"  # split without globbing the `*`
  says NOPERM e "${argv[@]}" || fail "exporter may not: $cmd"
done
echo "ok: user exporter reads INFO, SLOWLOG and LATENCY and nothing else"
EXPORTER=${REDIS_EXPORTER:-$(command -v prometheus-redis-exporter || command -v redis_exporter || true)}
if [ -n "$EXPORTER" ]; then
  XP=$(free_port)
  REDIS_ADDR=redis://127.0.0.1:$RP REDIS_USER=exporter REDIS_PASSWORD=change-me-exporter \
    REDIS_EXPORTER_WEB_LISTEN_ADDRESS=127.0.0.1:$XP "$EXPORTER" 2>"$WORK/exporter.log" &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$XP/metrics"
  grep -qx 'redis_up 1' <<<"$(curl -sf "http://127.0.0.1:$XP/metrics")" || fail "redis_exporter as user exporter: redis_up is not 1"
  if grep -qi 'level=error' "$WORK/exporter.log"; then fail "redis_exporter logged an error as user exporter"; fi
  echo "ok: $("$EXPORTER" --version 2>&1 | grep -o 'Exporter [0-9.]*' | head -1) scrapes as user exporter (redis_up 1, no error)"
else
  echo "skipped: the real redis_exporter (prometheus-redis-exporter not installed; REDIS_EXPORTER=path to run it)"
fi

# An application's user (deploy/redis/README.md "producer"): the chunk path, the dead letters and FLUSHALL are
# refused to it.
acl_producer_app "on one Redis" REDIS_PORT="$RP" REDIS_USERNAME=producer REDIS_PASSWORD=change-me-producer
p() { rc producer change-me-producer "$@"; }
says NOPERM p xrange streamfleet:chunks:0 - + || fail "producer may not read the chunk streams"
says NOPERM p xrange streamfleet:dlq:tasks - + || fail "producer may not read task dead letters"
says NOPERM p flushall || fail "producer may not FLUSHALL"
echo "ok: user producer may do nothing else"

# What must be refused.
says NOAUTH redis-cli -p "$RP" ping || fail "the default user must be off"
says NOPERM rc ingest change-me-ingest flushall || fail "ingest may not FLUSHALL"
says NOPERM rc ingest change-me-ingest keys '*' || fail "ingest may not KEYS"
says NOPERM rc ingest change-me-ingest zrange streamfleet:scheduled 0 -1 || fail "ingest may not read the task schedule"
says NOPERM rc ingest change-me-ingest xrange streamfleet:dlq:tasks - + || fail "ingest may not read task dead letters"
says NOPERM rc worker change-me-worker config get maxmemory || fail "worker may not CONFIG"
says WRONGPASS rc compactor wrong-password ping || fail "a wrong password must be rejected"
echo "ok: default user off; FLUSHALL, KEYS, CONFIG and foreign keys refused; wrong password rejected"
for f in "$WORK"/ingest.log "$WORK"/compactor.log "$WORK"/worker.log "$WORK"/admin.log; do
  if grep -q NOPERM "$f"; then fail "$(basename "$f") hit an ACL refusal: the ACL misses something it needs"; fi
done
echo "PASS acl_test"
