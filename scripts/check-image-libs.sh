#!/usr/bin/env bash
# Offline check of deploy/Dockerfile's runtime stage (no base image can be pulled here): every shared
# library the built executables load must come from a package the runtime stage installs (directly or as a
# dependency) or from Debian's "required" base set that debian:12 images contain.
# Usage: scripts/check-image-libs.sh BUILD_DIR
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
runtime=$(awk '/^FROM .* AS runtime/{r=1} r && /apt-get install/{i=1; next} i{ if ($0 ~ /&&/) exit; print }' deploy/Dockerfile |
  tr -d '\\' | tr ' ' '\n' | grep -v '^$')
[ -n "$runtime" ] || { echo "check-image-libs: no runtime package list found in deploy/Dockerfile"; exit 1; }
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances $runtime 2>/dev/null | grep -v '^ ' | sed 's/:amd64$//' | sort -u)
bad=0
for bin in ingest/streamfleet-ingest compactor/streamfleet-compactor queue-worker/streamfleet-queue-worker tools/streamfleetctl admin/streamfleet-admin; do
  [ -x "$BUILD/$bin" ] || { echo "check-image-libs: $BUILD/$bin not built"; exit 1; }
  for lib in $(ldd "$BUILD/$bin" | awk '/=> \//{print $3}'); do
    pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -z "$pkg" ] && pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1) || true
    if [ -z "$pkg" ]; then echo "  $bin: $lib belongs to no package"; bad=1; continue; fi
    prio=$(dpkg-query -W -f='${Priority}' "$pkg" 2>/dev/null || true)
    if [ "$prio" = required ] || grep -qx "$pkg" <<<"$closure"; then continue; fi
    echo "  $bin: $lib ($pkg) is not installed by the runtime stage"; bad=1
  done
done
[ $bad = 0 ] && echo "   ok: every library of the 5 executables is provided by the runtime stage"
exit $bad
