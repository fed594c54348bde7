#!/usr/bin/env bash
# The fleet behind Redis Sentinel through a master SIGKILL (tests/sentinel/sentinel_fleet_test.py).
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/sentinel_fleet_test.py" "$@"
