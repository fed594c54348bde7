#!/usr/bin/env bash
# Every binary answers --help and --version and exits without starting anything; usage errors exit 2
# (docs/CLI.md); streamfleetctl takes --json before or after its command.
#   bash tests/e2e/cli_flags_test.sh BUILD_DIR VERSION
set -euo pipefail
BUILD=$1
VERSION=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
# No Redis anywhere near: a daemon that started despite --help would fail to connect or hang; the timeout
# turns that into a failure instead of a stuck test.
export REDIS_URL=redis://127.0.0.1:1 DATABASE_URL=sqlite:/nonexistent/dir/x.db

for bin in ingest/streamfleet-ingest compactor/streamfleet-compactor queue-worker/streamfleet-queue-worker \
           admin/streamfleet-admin; do
  name=$(basename "$bin")
  out=$(timeout 10 "$BUILD/$bin" --help) || fail "$name --help exited $?"
  grep -q "docs/CONFIGURATION.md" <<<"$out" || fail "$name --help does not point to the configuration table"
  grep -q "Listens on: .*METRICS_LISTEN" <<<"$out" || fail "$name --help does not name its ports"
  out=$(timeout 10 "$BUILD/$bin" --version) || fail "$name --version exited $?"
  [ "$out" = "$name $VERSION" ] || fail "$name --version printed \"$out\", expected \"$name $VERSION\""
  rc=0
  timeout 10 "$BUILD/$bin" --no-such-flag 2>/dev/null || rc=$?
  [ "$rc" = 2 ] || fail "$name with an unknown argument exited $rc, expected 2"
  echo "ok: $name --help, --version, unknown argument"
done

ctl="$BUILD/tools/streamfleetctl"
out=$(timeout 10 "$ctl" --version) || fail "streamfleetctl --version exited $?"
grep -q "$VERSION" <<<"$out" || fail "streamfleetctl --version printed \"$out\""
for args in "" "no-such-command" "inspect-generation" "inspect-generation x y" "--no-such-flag config"; do
  rc=0
  # shellcheck disable=SC2086
  timeout 10 "$ctl" $args >/dev/null 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "streamfleetctl $args exited $rc, expected 2 (usage error)"
done
echo "ok: streamfleetctl usage errors exit 2"
before=$(timeout 10 "$ctl" --json config) || fail "streamfleetctl --json config exited $?"
after=$(timeout 10 "$ctl" config --json) || fail "streamfleetctl config --json exited $?"
[ "$before" = "$after" ] || fail "--json before and after the command differ"
jq -e 'type == "array" and length > 10' <<<"$after" >/dev/null || fail "config --json is not a JSON array"
echo "ok: streamfleetctl --json before or after the command"
echo "cli_flags: 1 passed, 0 failed"
