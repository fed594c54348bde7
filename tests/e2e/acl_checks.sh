# Sourced by acl_test.sh and acl_cluster_test.sh (after lib.sh, with DEADLINE, WORK and ROOT set): the checks both
# run against the fleet under deploy/redis/users.acl, on one Redis and on a cluster. WHERE names the setup in
# the messages.

# acl_live_streams INGEST_PORT GEN WHERE: live streams under user ingest (docs/live.md). Its tail reads the chunk
# streams and the events stream in one XREAD, and it writes generation.started there.
acl_live_streams() {
  local ip=$1 gen=$2 where=$3 i live_gen live_events
  curl -sN --max-time 15 "http://127.0.0.1:$ip/v1/orgs/12/generations/$gen/stream" >"$WORK/live-gen.txt" 2>/dev/null &
  live_gen=$!
  curl -sN --max-time 6 "http://127.0.0.1:$ip/v1/orgs/12/events" >"$WORK/live-events.txt" 2>/dev/null &
  live_events=$!
  sleep 0.5
  for i in 0 1; do
    curl -sf -X POST "http://127.0.0.1:$ip/v1/orgs/12/generations/$gen/chunks" -H 'Content-Type: application/json' \
      -d "{\"seq\": $i, \"data\": \"[$i]\", \"final\": $([ $i = 1 ] && echo true || echo false)}" >/dev/null \
      || fail "chunk $i of generation $gen refused $where"
  done
  wait "$live_gen" || true
  wait "$live_events" || true
  grep -q "^event: compacted" "$WORK/live-gen.txt" \
    || fail "the live stream of generation $gen $where: $(tail -c 300 "$WORK/live-gen.txt")"
  grep -q "\"generation_id\":$gen" "$WORK/live-events.txt" \
    || fail "the events stream $where: $(tail -c 300 "$WORK/live-events.txt")"
  echo "ok: live generation and events streams under user ingest $where"
}

# acl_task_api INGEST_PORT WHERE: the task API under user ingest (docs/task-api.md): a task now (run by user
# worker), a delayed unique one, its duplicate, its status and its cancel.
acl_task_api() {
  local t="http://127.0.0.1:$1/v1/tasks" where=$2 now later
  now=$(curl -sf -X POST "$t" -H 'Content-Type: application/json' -d '{"type": "noop"}' | jq -r .task_id)
  [ -n "$now" ] && [ "$now" != null ] || fail "POST /v1/tasks refused $where"
  later=$(curl -sf -X POST "$t" -H 'Content-Type: application/json' \
    -d '{"type": "noop", "delay": "1h", "unique_key": "acl-1"}' | jq -r .task_id)
  [ -n "$later" ] && [ "$later" != null ] || fail "a delayed unique task refused $where"
  [ "$(curl -s -X POST "$t" -H 'Content-Type: application/json' -d '{"type": "noop", "unique_key": "acl-1"}' \
    | jq -r .task_id)" = "$later" ] || fail "the duplicate did not name its holder $where"
  curl -sf -X DELETE "$t/$later" | jq -e '.state == "cancelled"' >/dev/null || fail "cancel refused $where"
  until [ "$(curl -sf "$t/$now" | jq -r .state)" = succeeded ]; do
    [ "$SECONDS" -lt "$DEADLINE" ] || fail "task $now (task API) did not succeed $where"
    sleep 0.2
  done
  echo "ok: task API (now, delayed, unique, status, cancel) under user ingest, run by user worker $where"
}

# acl_producer_app WHERE VAR=VALUE...: an application as user producer (clients/python, with the environment
# given: the user's credentials and where Redis is). It enqueues, reads the status until the fleet's worker ran
# its task, dedupes, cancels and pauses.
acl_producer_app() {
  local where=$1
  shift
  env PYTHONPATH="$ROOT/clients/python" "$@" /usr/bin/python3 - >"$WORK/producer.log" 2>&1 <<'PY' \
    || fail "an application as user producer $where (clients/python)"
import time
from streamfleet_client import CancelOutcome, TaskClient
client = TaskClient.from_env()
task = client.enqueue("noop", {"from": "producer"})
deadline = time.monotonic() + 20
while (status := client.status(task.id)) is None or status.state != "succeeded":
    if time.monotonic() > deadline:
        raise SystemExit(f"the worker did not run the producer's task: {status}")
    time.sleep(0.05)
later = client.enqueue("noop", {}, delay=3600)
assert client.cancel(later.id).outcome is CancelOutcome.CANCELLED
assert not client.enqueue("noop", unique_key="acl-producer").duplicate
assert client.enqueue("noop", unique_key="acl-producer").duplicate
client.pause("low")
assert "low" in client.paused_queues()
client.resume("low")
PY
  echo "ok: user producer enqueues, follows, dedupes, cancels and pauses $where (the worker ran its task)"
}
