#!/usr/bin/env bash
# Installs every Debian 12 package streamfleet needs to build, test and run.
# Idempotent and quick when everything is present: apt is only called for what is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ninja-build ccache
  libhiredis-dev libuv1-dev libhttp-parser-dev
  libprotobuf-dev protobuf-compiler
  libsoci-dev libsqlite3-dev libpq-dev libboost-dev
  prometheus-cpp-dev libcivetweb-dev civetweb
  libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libssl-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  redis-server redis-tools postgresql postgresql-client sqlite3
  prometheus curl jq python3-redis python3-protobuf yamllint python3-yaml
  chromium  # tests/e2e/admin: the admin UI in headless Chromium
  clang libclang-rt-dev llvm  # scripts/fuzz.sh: libFuzzer runtime, llvm-symbolizer for its stack traces
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm (the offline Kubernetes-manifest validation in check-deploy.sh): Debian's package only when no npm is
# on the PATH, so a Node.js installed another way (e.g. NodeSource) is not replaced.
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

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
