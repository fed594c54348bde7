#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (build-fuzz, -fsanitize=fuzzer,address,undefined) and runs
# each for SECONDS_PER_TARGET seconds over a COPY of its committed corpus (fuzz/corpus/<target>/), so the
# committed corpus never grows by itself. Fails on any crash, leak, UB report, timeout or out-of-memory;
# the input that caused it is kept in build-fuzz/artifacts/ (add it to the corpus once the bug is fixed).
#   bash scripts/fuzz.sh            60 s per target (on demand)
#   bash scripts/fuzz.sh 15         the CI pass (scripts/test.sh)
#   bash scripts/fuzz.sh 0          only replays the committed corpora (a regression check, seconds)
# Environment: JOBS (build parallelism, default 1), FUZZ_JOBS (targets run at once, default 1),
# FUZZ_TARGETS="route sse" (a subset), FUZZ_KEEP_CORPUS=DIR (keep the grown corpora there, to review and
# commit new interesting inputs by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECONDS_PER_TARGET=${1:-60}
JOBS=${JOBS:-1}
FUZZ_JOBS=${FUZZ_JOBS:-1}
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
ALL_TARGETS="route chunk_json ndjson sse generation_request chunk_envelope task_envelope config json_input cron live buffer_element chunk_batch request_framing"
TARGETS=${FUZZ_TARGETS:-$ALL_TARGETS}

dict_of() {
  case $1 in
    chunk_json|ndjson|sse|generation_request|json_input) echo "$ROOT/fuzz/dict/json.dict" ;;
    route) echo "$ROOT/fuzz/dict/route.dict" ;;
    config) echo "$ROOT/fuzz/dict/config.dict" ;;
  esac
}

started=$(date +%s)
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTREAMFLEET_FUZZ=ON \
  -DSTREAMFLEET_BUILD_TESTS=OFF -DSTREAMFLEET_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target $(for t in $TARGETS; do printf 'fuzz_%s ' "$t"; done)
built=$(date +%s)
echo "fuzz: build took $((built - started)) s"

WORK=$(mktemp -d /tmp/streamfleet-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$BUILD/artifacts"
# Leaks are reported by libFuzzer itself (-detect_leaks=1, its default); UBSan stops at the first report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
if command -v llvm-symbolizer-14 >/dev/null 2>&1; then export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer-14)}; fi

run_target() {
  local t=$1 corpus=$WORK/corpus/$t log=$WORK/$t.log dict
  mkdir -p "$corpus"
  cp "$ROOT/fuzz/corpus/$t/"* "$corpus/"
  local args=(-rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1
              -artifact_prefix="$BUILD/artifacts/$t-")
  dict=$(dict_of "$t")
  if [ -n "$dict" ]; then args+=(-dict="$dict"); fi
  if [ "$SECONDS_PER_TARGET" -gt 0 ]; then
    args+=(-max_total_time="$SECONDS_PER_TARGET")
  else
    args+=(-runs=0)
  fi
  local rc=0
  # A hard stop well past max_total_time, for a target stuck in one input longer than -timeout can see.
  timeout --signal=KILL $((SECONDS_PER_TARGET + 120)) "$BUILD/fuzz/fuzz_$t" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  local runs secs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  printf '%s rc=%s seeds=%s corpus=%s runs=%s execs_per_s=%s\n' "$t" "$rc" "$(ls "$ROOT/fuzz/corpus/$t" | wc -l)" \
    "$(ls "$corpus" | wc -l)" "${runs:-?}" "$([ -n "${runs:-}" ] && [ "${secs:-0}" -gt 0 ] && echo $((runs / secs)) || echo -)" \
    >"$WORK/$t.result"
  if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then mkdir -p "$FUZZ_KEEP_CORPUS/$t" && cp "$corpus/"* "$FUZZ_KEEP_CORPUS/$t/"; fi
  return "$rc"
}

failed=()
running=0
for t in $TARGETS; do
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$FUZZ_JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

for t in $TARGETS; do
  result=$(cat "$WORK/$t.result" 2>/dev/null || echo "$t rc=missing")
  echo "fuzz: $result"
  if [[ "$result" != *" rc=0 "* ]]; then
    failed+=("$t")
    echo "---- fuzz_$t log (tail) ----"
    grep -v '^#[0-9]' "$WORK/$t.log" | tail -60 || true
    ls "$BUILD/artifacts/$t-"* 2>/dev/null | sed 's/^/reproducer: /' || true
  fi
done
echo "fuzz: ${SECONDS_PER_TARGET} s per target, $(echo $TARGETS | wc -w) targets, $((FUZZ_JOBS)) at once, total $(( $(date +%s) - started )) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (reproduce: build-fuzz/fuzz/fuzz_<target> <reproducer>)" >&2
  exit 1
fi
