#!/usr/bin/env bash
# The fault suite (tests/fault/fault_suite.py): short form in CI (ctest fault_short), long form on demand.
#   tests/fault/run.sh BUILD_DIR [--short | --long] [--only chunks,redis_restart,pg_outage,object_store,tasks,memory]
# /usr/bin/python3: Debian's python3-redis and python3-protobuf (scripts/install-deps.sh) live there.
# exec: python is ctest's direct child, and every process it starts dies with it (PR_SET_PDEATHSIG).
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/fault_suite.py" "$@"
