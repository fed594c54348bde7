#!/usr/bin/env bash
# Live streams end to end (tests/live/live_stream_test.py) on real servers.
# /usr/bin/python3: the fault suite's process helpers (tests/fault/fleet.py) run there.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/live_stream_test.py" "$@"
