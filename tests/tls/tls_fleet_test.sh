#!/usr/bin/env bash
# The fleet end to end over TLS (tests/tls/tls_fleet_test.py) on real servers.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/tls_fleet_test.py" "$@"
