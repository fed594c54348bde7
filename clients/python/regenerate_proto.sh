#!/usr/bin/env bash
# Regenerates streamfleet_client/task_pb2.py from proto/streamfleet/v1/task.proto. The generated module is
# checked in so the client never runs protoc at run time; it was generated with Debian 12's protoc
# (libprotoc 3.21.12, package protobuf-compiler), which matches Debian's python3-protobuf 4.21.
# tests/test_keys_and_config.py (GeneratedCodeTest) fails when the checked-in file differs from what protoc makes now.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
protoc -I "$ROOT/proto" --python_out="$OUT" streamfleet/v1/task.proto
cp "$OUT/streamfleet/v1/task_pb2.py" "$HERE/streamfleet_client/task_pb2.py"
