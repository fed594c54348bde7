#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   installs packages, builds with -Wall -Wextra -Werror, starts a throwaway PostgreSQL on loopback
#   (each test binary starts its own redis-server on a free port), runs every test with ctest, then
#   builds and runs everything again under AddressSanitizer + UndefinedBehaviorSanitizer (all but the
#   long end-to-end scripts labelled e2e).
# Every server it starts is stopped on exit, also on failure or Ctrl-C.
#   SKIP_SANITIZERS=1 scripts/test.sh   runs only the normal build (quick local loop)
#   SKIP_FUZZ=1 scripts/test.sh         skips the short libFuzzer pass (scripts/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-2}

bash scripts/install-deps.sh

# ccache (CMakeLists.txt uses it when present): paths relative to the checkout and no directory in the hash,
# so a clone in another folder (CI's fresh clone) reuses what an earlier run on this machine compiled.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1

PG_DIR=$(mktemp -d /tmp/streamfleet-test-pg.XXXXXX)
cleanup() { bash scripts/pg.sh stop "$PG_DIR" || true; }
trap cleanup EXIT INT TERM
export STREAMFLEET_TEST_PG_URL=$(bash scripts/pg.sh start "$PG_DIR")
echo "test PostgreSQL: $STREAMFLEET_TEST_PG_URL"

# build_and_test DIR "CTEST ARGS" CMAKE ARGS...
build_and_test() {
  local dir=$1 ctest_args=$2; shift 2
  cmake -S "$ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
  # shellcheck disable=SC2086
  (cd "$dir" && ctest --output-on-failure -j 1 $ctest_args)
}

echo "== build + tests (-Wall -Wextra -Werror) =="
build_and_test build "" -DCMAKE_BUILD_TYPE=RelWithDebInfo

echo "== deploy checks (promtool, dashboard PromQL, kustomize renders, schemas, manifests vs binaries, yamllint) =="
STREAMFLEETCTL="$ROOT/build/tools/streamfleetctl" bash scripts/check-deploy.sh
echo "== deploy/Dockerfile runtime stage provides every shared library of the executables =="
bash scripts/check-image-libs.sh build
echo "== deploy/Dockerfile build stage copies every directory and file the build reads; ports, labels =="
bash scripts/check-dockerfile.sh

if [ "${SKIP_FUZZ:-0}" != "1" ]; then
  # Short: ~1 min of build plus FUZZ_SECONDS per target, two targets at a time. Longer runs on demand:
  # bash scripts/fuzz.sh 60 (docs/reliability.md, Fuzzing).
  FUZZ_SECONDS=${FUZZ_SECONDS:-15}
  echo "== fuzz (libFuzzer, $FUZZ_SECONDS s per target) =="
  JOBS="$JOBS" FUZZ_JOBS="$JOBS" bash scripts/fuzz.sh "$FUZZ_SECONDS"
fi

if [ "${SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== build + tests under AddressSanitizer + UndefinedBehaviorSanitizer =="
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # The long end-to-end scripts (label e2e: browser UI, fault suite) ran above; under the sanitizers every
  # unit and integration suite runs, plus the short fleet/ACL/Prometheus scripts on the sanitized binaries.
  # The compactor, ingest and worker suites re-run on the cluster (label cluster_suite) are the same code as their
  # single-server runs; the cluster client itself runs sanitized in redis_cluster_test and
  # chunk_path_cluster_test.
  build_and_test build-asan "-LE e2e|cluster_suite|install|clients" -DCMAKE_BUILD_TYPE=Debug -DSTREAMFLEET_SANITIZE=ON -DSTREAMFLEET_BUILD_BENCH=OFF
fi
