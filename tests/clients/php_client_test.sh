#!/usr/bin/env bash
# clients/php (ingest's HTTP task API) against a real redis-server, a real streamfleet-ingest with task API
# tokens enforced, and a real streamfleet-queue-worker; plus a second ingest whose redis-server is killed (503)
# and tests/fake_server.php under `php -S` for answers ingest never gives. Runs clients/php/tests with Debian's
# phpunit: TaskClientTest.php, and SignedStreamLinkTest.php (signed live-stream links opened on the first ingest,
# organization 7 of its INGEST_TOKENS). Every server is stopped on exit, also on failure.
# Usage: php_client_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../e2e/lib.sh"
PHP_DIR="$HERE/../../clients/php"

command -v phpunit >/dev/null || fail "phpunit not found (Debian: apt-get install phpunit php-curl)"
# Captured before grep: `php -m | grep -q` fails under pipefail when grep leaves before php's last write (SIGPIPE).
grep -qx curl <<<"$(php -m)" || fail "PHP has no curl extension (Debian: apt-get install php-curl)"

RP=$(free_port); RP2=$(free_port); IP=$(free_port); IP2=$(free_port); MI=$(free_port); MI2=$(free_port)
MW=$(free_port); FP=$(free_port)
WRITER=php-writer-$RANDOM$RANDOM; READER=php-reader-$RANDOM$RANDOM
CHUNK_ORG=7; CHUNK_TOKEN=php-chunk-token   # INGEST_TOKENS: the chunk and live routes' organization token
start_redis "$RP"
export DATABASE_URL="sqlite:$WORK/fleet.db" QUEUES=default:3,low:1 LOG_LEVEL=warn \
  TASK_API_TOKENS="$WRITER:enqueue+read,$READER:read" INGEST_TOKENS="$CHUNK_ORG:$CHUNK_TOKEN" \
  TASK_MAX_PAYLOAD_BYTES=65536
REDIS_PORT=$RP INGEST_LISTEN=127.0.0.1:$IP METRICS_LISTEN=127.0.0.1:$MI \
  "$BUILD/ingest/streamfleet-ingest" 2>"$WORK/ingest.log" &
PIDS+=($!)
REDIS_PORT=$RP METRICS_LISTEN=127.0.0.1:$MW CONSUMER_NAME=w-php \
  "$BUILD/queue-worker/streamfleet-queue-worker" 2>"$WORK/worker.log" &
PIDS+=($!)

# The ingest of the 503 test: up and ready on its own redis-server, which is then killed.
start_redis "$RP2"
REDIS2=${PIDS[-1]}
REDIS_PORT=$RP2 REDIS_TIMEOUT=500ms INGEST_LISTEN=127.0.0.1:$IP2 METRICS_LISTEN=127.0.0.1:$MI2 \
  "$BUILD/ingest/streamfleet-ingest" 2>"$WORK/ingest-down.log" &
PIDS+=($!)

touch "$WORK/fake-requests.ndjson"
# One process (no PHP_CLI_SERVER_WORKERS: its forked workers would outlive a kill -9 of the server).
STREAMFLEET_FAKE_LOG="$WORK/fake-requests.ndjson" php -S "127.0.0.1:$FP" "$PHP_DIR/tests/fake_server.php" \
  >/dev/null 2>"$WORK/fake-server.log" &
PIDS+=($!)

for p in $IP $IP2 $MI $MI2 $MW $FP; do wait_http "http://127.0.0.1:$p/healthz"; done
for p in $MI $MI2 $MW; do
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$p/readyz" >/dev/null || fail "process with metrics on $p not ready"
done
kill -9 "$REDIS2"
wait "$REDIS2" 2>/dev/null || true

cd "$PHP_DIR"
STREAMFLEET_TEST_URL=http://127.0.0.1:$IP STREAMFLEET_TEST_TOKEN=$WRITER STREAMFLEET_TEST_READ_TOKEN=$READER \
STREAMFLEET_TEST_DOWN_URL=http://127.0.0.1:$IP2 STREAMFLEET_TEST_FAKE_URL=http://127.0.0.1:$FP \
STREAMFLEET_TEST_FAKE_LOG="$WORK/fake-requests.ndjson" STREAMFLEET_TEST_CTL="$BUILD/tools/streamfleetctl" \
STREAMFLEET_TEST_REDIS_PORT=$RP STREAMFLEET_TEST_INGEST_ORG=$CHUNK_ORG STREAMFLEET_TEST_INGEST_TOKEN=$CHUNK_TOKEN \
  phpunit --do-not-cache-result --colors=never tests/ || fail "clients/php tests failed"
echo "php client tests passed"
