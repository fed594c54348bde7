#!/usr/bin/env bash
# The C++ task SDK from outside the tree: `cmake --install` of BUILD_DIR into a temporary prefix,
# examples/custom-worker built against it with find_package(streamfleet) + streamfleet::worker, then run
# against a real redis-server. Its tasks, enqueued with streamfleetctl and with the SDK's own Enqueue, end as
# its handlers decide: rendered thumbnails and an emailed report succeed with their results, a report with a
# bad payload is dead-lettered after one attempt (permanent error); its /metrics count them by type; SIGTERM
# stops it cleanly. Every process is stopped on exit, also on failure.
# Usage: custom_worker_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
EXAMPLE=$(cd "$HERE/../../examples/custom-worker" && pwd)
source "$HERE/../e2e/lib.sh"
CTL="$BUILD/tools/streamfleetctl"

# The installed package: the SDK's header and libraries, none of the queue-worker's own headers.
cmake --install "$BUILD" --prefix "$WORK/prefix" >"$WORK/install.log" 2>&1 || fail "cmake --install"
test -f "$WORK/prefix/include/streamfleet/worker/worker.h" || fail "worker.h not installed"
test -f "$WORK/prefix/lib/libstreamfleet_worker.a" || fail "libstreamfleet_worker.a not installed"
test -f "$WORK/prefix/lib/libstreamfleet_worker_impl.a" || fail "libstreamfleet_worker_impl.a not installed"
if [ -n "$(find "$WORK/prefix/include" -name 'worker_service.h' -o -name 'handlers.h')" ]; then
  fail "queue-worker headers installed"
fi
PKG_CONFIG_PATH="$WORK/prefix/lib/pkgconfig" pkg-config --libs streamfleet | grep -q -- "-lstreamfleet_worker " ||
  fail "pkg-config module without -lstreamfleet_worker"

cmake -S "$EXAMPLE" -B "$WORK/custom" -G Ninja -DCMAKE_PREFIX_PATH="$WORK/prefix" >"$WORK/configure.log" 2>&1 ||
  fail "configure examples/custom-worker"
cmake --build "$WORK/custom" >"$WORK/build.log" 2>&1 || fail "build examples/custom-worker"
WORKER="$WORK/custom/custom-worker"
grep -q "Renders thumbnails" <<<"$("$WORKER" --help)" || fail "custom-worker --help"

RP=$(free_port)
MP=$(free_port)
start_redis "$RP"
export REDIS_PORT=$RP
REDIS_PORT=$RP METRICS_LISTEN="127.0.0.1:$MP" DATABASE_URL="sqlite:$WORK/worker.db" CONSUMER_NAME=custom-1 \
  WORKER_CONCURRENCY=4 LOG_LEVEL=info "$WORKER" >"$WORK/worker.log" 2>&1 &
WORKER_PID=$!
PIDS+=("$WORKER_PID")
wait_http "http://127.0.0.1:$MP/readyz"

enqueue() { "$CTL" --json enqueue "$1" --payload "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
T=()
for i in 1 2 3 4; do T+=("$(enqueue thumbnail.render "{\"image\":\"s3://media/cat$i.png\",\"width\":64}")"); done
BAD=$(enqueue report.email '{"to":"nobody","report":"weekly"}')
# The producer side of the SDK: streamfleet::Enqueue, from the example's own `enqueue` command.
GOOD=$("$WORKER" enqueue report.email '{"to":"ops@example.com","report":"daily"}') || fail "SDK enqueue"

# state_of ID: the task's status record (--json), once it is final; fails after 20 s.
state_of() {
  local out=
  for _ in $(seq 1 200); do
    out=$("$CTL" --json tasks show "$1")
    case $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["state"])' "$out") in
      succeeded|dead) echo "$out"; return 0 ;;
    esac
    sleep 0.1
  done
  fail "task $1 not finished: $out"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"; }

for id in "${T[@]}"; do
  s=$(state_of "$id")
  [ "$(field "$s" state)" = succeeded ] || fail "thumbnail.render $id: $s"
  field "$s" result | grep -q "\"thumbnail\":\"thumbnails/$id.png\"" || fail "thumbnail.render $id result: $s"
done
s=$(state_of "$GOOD")
[ "$(field "$s" state)" = succeeded ] || fail "report.email $GOOD: $s"
field "$s" result | grep -q '"sent_to":"ops@example.com"' || fail "report.email $GOOD result: $s"
s=$(state_of "$BAD")
[ "$(field "$s" state)" = dead ] || fail "report.email $BAD (bad payload): $s"
echo "$s" | grep -q "not an email address" || fail "report.email $BAD: no reason: $s"
[ "$(field "$s" attempts)" = 1 ] || fail "report.email $BAD was retried: $s"

metrics=$(curl -sf "http://127.0.0.1:$MP/metrics") || fail "/metrics"
echo "$metrics" | grep -E '^streamfleet_worker_tasks_processed_total\{.*type="thumbnail.render".*\} 4$' |
  grep -q 'outcome="succeeded"' || fail "/metrics: no 4 succeeded thumbnail.render: $(echo "$metrics" | grep tasks_processed)"
echo "$metrics" | grep -E '^streamfleet_worker_tasks_processed_total\{.*type="report.email".*\} 1$' |
  grep -q 'outcome="dead_lettered"' || fail "/metrics: no dead-lettered report.email: $(echo "$metrics" | grep tasks_processed)"

kill -TERM "$WORKER_PID"
rc=0
wait "$WORKER_PID" || rc=$?
[ "$rc" = 0 ] || fail "custom-worker exited $rc after SIGTERM"
echo "ok: examples/custom-worker built against the installed SDK ran ${#T[@]} thumbnail.render (succeeded),"
echo "    report.email $GOOD (succeeded, enqueued with streamfleet::Enqueue) and $BAD (dead: permanent error),"
echo "    counted in its /metrics, and stopped cleanly on SIGTERM"
