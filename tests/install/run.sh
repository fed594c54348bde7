#!/usr/bin/env bash
# `cmake --install` of BUILD_DIR into a temporary prefix, then a project outside the tree
# (tests/install/consumer) built with find_package(streamfleet) and pkg-config against it, run against a
# real redis-server: its task must be in the queue stream with the status record the fleet writes.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/streamfleet-install.XXXXXX)
REDIS_PID=
cleanup() { if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT

cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null
test -f "$WORK/prefix/lib/cmake/streamfleet/streamfleetConfig.cmake"
test -f "$WORK/prefix/include/streamfleet/taskqueue/task_queue.h"
test -f "$WORK/prefix/include/streamfleet/v1/task.pb.h"
test -f "$WORK/prefix/share/streamfleet/proto/streamfleet/v1/task.proto"
if [ -e "$WORK/prefix/include/streamfleet/testing" ]; then echo "FAIL: test harness installed" >&2; exit 1; fi

cmake -S "$HERE/consumer" -B "$WORK/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$WORK/prefix" >"$WORK/configure.log" 2>&1 ||
  { cat "$WORK/configure.log" >&2; exit 1; }
cmake --build "$WORK/consumer" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
# The pkg-config module names the same headers and libraries.
PKG_CONFIG_PATH="$WORK/prefix/lib/pkgconfig" pkg-config --cflags --libs streamfleet | grep -q -- "-lstreamfleet_taskqueue"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

id=$(REDIS_URL="redis://127.0.0.1:$PORT" "$WORK/consumer/enqueue_one")
len=$(redis-cli -p "$PORT" xlen streamfleet:queue:default)
state=$(redis-cli -p "$PORT" hget "streamfleet:task:$id" state)
if [ "$len" != 1 ] || [ "$state" != pending ]; then
  echo "FAIL: task $id: queue length $len, state '$state'" >&2
  exit 1
fi
echo "ok: installed package builds an out-of-tree project; its task $id is queued ($state)"
