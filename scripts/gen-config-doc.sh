#!/usr/bin/env bash
# Regenerates the variable table of docs/CONFIGURATION.md from the code's own table
# (`streamfleetctl --json config`), or with --check fails when the document has drifted from the code.
#   STREAMFLEETCTL=build/tools/streamfleetctl bash scripts/gen-config-doc.sh [--check]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CTL=${STREAMFLEETCTL:-$ROOT/build/tools/streamfleetctl}
DOC=$ROOT/docs/CONFIGURATION.md
new=$(mktemp)
trap 'rm -f "$new"' EXIT
"$CTL" --json config | python3 -c '
import json, sys
doc = open(sys.argv[1]).read().split("\n")
# Keep everything before the table header and after the table; replace the rows.
start = next(i for i, l in enumerate(doc) if l.startswith("| variable |"))
end = start + 2
while end < len(doc) and doc[end].startswith("| `"):
    end += 1
rows = []
for r in json.load(sys.stdin):
    d = r["default"]
    cell = lambda s: s.replace("|", "\\|")
    rows.append("| `%s` | %s | %s |" % (r["name"], "`%s`" % cell(d) if d else "(empty)", cell(r["description"])))
print("\n".join(doc[: start + 2] + rows + doc[end:]), end="")
' "$DOC" >"$new"
if [ "${1:-}" = --check ]; then
  if ! diff -u "$DOC" "$new"; then
    echo "docs/CONFIGURATION.md is out of date: run bash scripts/gen-config-doc.sh" >&2
    exit 1
  fi
  echo "docs/CONFIGURATION.md matches streamfleetctl config"
else
  cp "$new" "$DOC"
fi
