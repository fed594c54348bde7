#!/usr/bin/env bash
# Installs the Debian 12 packages streamfleet needs.
#   bash scripts/install-deps.sh            everything: build, run and the whole test suite (scripts/test.sh)
#   bash scripts/install-deps.sh --runtime  only what building and running the fleet needs (scripts/demo.sh):
#                                           compilers and build tools, the -dev libraries, redis-server,
#                                           sqlite3, curl; no test frameworks, browsers, clang or PostgreSQL
#   bash scripts/install-deps.sh --bench    what bench/run.sh needs: the runtime set, Google Benchmark, npm (BullMQ,
#                                           s3rver), and the other references of ../shared/anchors (Sidekiq)
# Idempotent and quick when everything is present: apt is only called for what is missing.
set -euo pipefail

case ${1:-} in
  "") MODE=all ;;
  --runtime) MODE=runtime ;;
  --bench) MODE=bench ;;
  *) echo "usage: $0 [--runtime|--bench]" >&2; exit 2 ;;
esac

# Build the binaries (tests and benchmarks off) and run the demo: scripts/demo.sh, deploy/Dockerfile's build stage.
RUNTIME_PACKAGES=(
  build-essential cmake pkg-config ninja-build ccache
  libhiredis-dev libuv1-dev libhttp-parser-dev
  libprotobuf-dev protobuf-compiler
  libsoci-dev libsqlite3-dev libpq-dev libboost-dev
  prometheus-cpp-dev libcivetweb-dev civetweb
  libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libssl-dev libcurl4-openssl-dev libzstd-dev
  libjemalloc-dev  # the compactor's allocator (cmake/StreamfleetAllocator.cmake)
  redis-server redis-tools sqlite3  # the embedded default: a local Redis and a SQLite file
  curl python3                      # demo.sh posts with curl and picks free ports with python3
)
# Only for scripts/test.sh and the tools it runs.
TEST_PACKAGES=(
  libgtest-dev libgmock-dev googletest libbenchmark-dev  # the suites and bench/ (STREAMFLEET_BUILD_TESTS/BENCH)
  postgresql postgresql-client                           # scripts/pg.sh: the throwaway test PostgreSQL
  prometheus jq yamllint python3-yaml                    # scripts/check-deploy.sh (promtool), prometheus_e2e
  python3-redis python3-protobuf                         # tests/fault, clients/python and its tests (tests/clients)
  php-cli php-curl phpunit                               # clients/php (over the HTTP task API) and its tests
  chromium                                               # tests/e2e/admin: the admin UI in headless Chromium
  openssl                                                # components/testing/scripts/make_test_certs.sh (TLS tests)
  clang libclang-rt-dev llvm  # scripts/fuzz.sh: libFuzzer runtime, llvm-symbolizer for its stack traces
)

# Only for bench/run.sh: the anchors it runs beside its own figures (../shared/anchors/06_sidekiq.py drives
# Sidekiq with redis-py).
BENCH_PACKAGES=(
  libbenchmark-dev libgtest-dev libgmock-dev  # bench/ builds with the suites' frameworks present
  ruby-sidekiq python3-redis
)

PACKAGES=("${RUNTIME_PACKAGES[@]}")
if [ "$MODE" = all ]; then PACKAGES+=("${TEST_PACKAGES[@]}"); fi
if [ "$MODE" = bench ]; then PACKAGES+=("${BENCH_PACKAGES[@]}"); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm (tests and bench/run.sh: the offline Kubernetes-manifest validation in check-deploy.sh, clients/node's tests,
# which need Node >= 18 for node --test (Debian 12's nodejs is 18), and bench/run.sh's BullMQ and s3rver): Debian's
# package only when no npm is on the PATH, so a Node.js installed another way (e.g. NodeSource) is not replaced.
if [ "$MODE" != runtime ] && ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages start system services on install; the project starts its own throwaway
# servers on free loopback ports, so the stock ones are not needed (and not relied on).
