#!/usr/bin/env bash
# No secret in logs, metrics or health bodies (docs/reliability.md "Security"): the three real binaries run
# with every kind of secret configured (Redis ACL user passwords in REDIS_URL and in REDIS_USERNAME /
# REDIS_PASSWORD, org tokens, a DATABASE_URL with a password, a webhook URL with user:password and a token in
# its query, a provider API key), at LOG_LEVEL=debug, and exercise them, including failing connections so
# errors get logged: a wrong Redis password, a PostgreSQL that is not there, a webhook that never answers,
# a provider that refuses connections, wrong and foreign tokens. Then every log line and every /metrics,
# /healthz and /readyz body is scanned for each secret and for the chunk payload text. Loopback only.
# Usage: secrets_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$(dirname "$0")/lib.sh"
DEADLINE=$((SECONDS + ${DEADLINE:-60}))

RP=$(free_port); IP=$(free_port); MI=$(free_port); MC=$(free_port); MW=$(free_port); MB1=$(free_port)
MB2=$(free_port); NOPG=$(free_port); NOPROVIDER=$(free_port); HOOK=$(free_port)
# Secrets: distinctive strings, so any appearance is a leak and not a coincidence.
S_INGEST=ingest-pw-7f3a91 S_COMPACTOR=compactor-pw-52c0e8 S_WORKER=worker-pw-d41b77
S_WRONG=wrong-pw-9e0c13 S_DB=db-pw-3b8f60 S_HOOK_PW=hook-pw-a61d25 S_HOOK_TOKEN=hook-token-c90e44
S_PROVIDER=sk-provider-0d7e19 S_TOK12=org12-token-6a2f58 S_TOK13=org13-token-e35b02 PAYLOAD=payload-canary-81f4c6
SECRETS=("$S_INGEST" "$S_COMPACTOR" "$S_WORKER" "$S_WRONG" "$S_DB" "$S_HOOK_PW" "$S_HOOK_TOKEN" "$S_PROVIDER"
  "$S_TOK12" "$S_TOK13" "$PAYLOAD")

sed -e "s/change-me-ingest/$S_INGEST/; s/change-me-compactor/$S_COMPACTOR/; s/change-me-worker/$S_WORKER/" \
  "$ROOT/deploy/redis/users.acl" >"$WORK/users.acl"
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" \
  --aclfile "$WORK/users.acl" &
PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p "$RP" --user ingest --pass "$S_INGEST" --no-auth-warning ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
# A webhook that accepts connections and never answers: the webhook task times out (its error names the URL).
python3 -c 'import socket,time,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); time.sleep(120)' "$HOOK" &
PIDS+=($!)

export LOG_LEVEL=debug GENERATION_IDLE_TIMEOUT=2s
INGEST_TOKENS="12:$S_TOK12,13:$S_TOK13" REDIS_URL="redis://ingest:$S_INGEST@127.0.0.1:$RP" \
  DATABASE_URL="postgresql://streamfleet:$S_DB@127.0.0.1:$NOPG/streamfleet" \
  INGEST_LISTEN=127.0.0.1:$IP METRICS_LISTEN=127.0.0.1:$MI "$BUILD/ingest/streamfleet-ingest" >"$WORK/ingest.log" 2>&1 &
PIDS+=($!)
REDIS_PORT=$RP REDIS_USERNAME=compactor REDIS_PASSWORD="$S_COMPACTOR" DATABASE_URL="sqlite:$WORK/fleet.db" CONSUMER_NAME=c1 \
  METRICS_LISTEN=127.0.0.1:$MC REDIS_INFO_METRICS=true "$BUILD/compactor/streamfleet-compactor" >"$WORK/compactor.log" 2>&1 &
PIDS+=($!)
REDIS_URL="redis://worker:$S_WORKER@127.0.0.1:$RP" DATABASE_URL="sqlite:$WORK/fleet.db" CONSUMER_NAME=w \
  EVENTS_WEBHOOK_URL="http://hookuser:$S_HOOK_PW@127.0.0.1:$HOOK/hook?token=$S_HOOK_TOKEN" WEBHOOK_TIMEOUT=1s \
  WEBHOOK_ALLOW_NETS=127.0.0.0/8 \
  TASK_MAX_ATTEMPTS=2 TASK_BACKOFF_BASE=200ms PROVIDER_API_KEY="$S_PROVIDER" \
  PROVIDER_BASE_URL="http://127.0.0.1:$NOPROVIDER/v1" METRICS_LISTEN=127.0.0.1:$MW \
  "$BUILD/queue-worker/streamfleet-queue-worker" >"$WORK/worker.log" 2>&1 &
PIDS+=($!)
# Failing connections: a compactor with a wrong Redis password, one whose PostgreSQL is not there.
REDIS_URL="redis://compactor:$S_WRONG@127.0.0.1:$RP" DATABASE_URL="sqlite:$WORK/bad.db" CONSUMER_NAME=bad1 \
  METRICS_LISTEN=127.0.0.1:$MB1 "$BUILD/compactor/streamfleet-compactor" >"$WORK/bad-redis.log" 2>&1 &
PIDS+=($!)
REDIS_PORT=$RP REDIS_USERNAME=compactor REDIS_PASSWORD="$S_COMPACTOR" CONSUMER_NAME=bad2 METRICS_LISTEN=127.0.0.1:$MB2 \
  DATABASE_URL="postgresql://streamfleet:$S_DB@127.0.0.1:$NOPG/streamfleet" \
  "$BUILD/compactor/streamfleet-compactor" >"$WORK/bad-db.log" 2>&1 &
PIDS+=($!)
for p in $MI $MC $MW; do wait_http "http://127.0.0.1:$p/readyz"; done
wait_http "http://127.0.0.1:$MB1/healthz"
sleep 1  # the worker's housekeeper creates the events group at "$" on its first round: events after it count

api() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
auth12=(-H "Authorization: Bearer $S_TOK12")
for i in 0 1; do
  code=$(api -X POST "http://127.0.0.1:$IP/v1/orgs/12/generations/59/chunks" "${auth12[@]}" -H 'Content-Type: application/json' \
    -d "{\"seq\": $i, \"data\": \"$PAYLOAD $i\", \"final\": $([ $i = 1 ] && echo true || echo false)}")
  [ "$code" = 202 ] || fail "chunk $i: HTTP $code"
done
# Refused requests: a foreign token, an unknown token, a malformed line carrying the payload text.
[ "$(api -X POST "http://127.0.0.1:$IP/v1/orgs/13/generations/60/chunks" "${auth12[@]}" -H 'Content-Type: application/json' -d "{\"data\": \"$PAYLOAD\"}")" = 403 ] || fail "foreign token"
[ "$(api "http://127.0.0.1:$IP/v1/orgs/12/generations/59/progress" -H "Authorization: Bearer x$S_TOK13")" = 401 ] || fail "unknown token"
[ "$(api -X POST "http://127.0.0.1:$IP/v1/orgs/12/generations/61/chunks" "${auth12[@]}" -H 'Content-Type: application/x-ndjson' --data-binary "{\"data\": \"$PAYLOAD\" oops}")" = 400 ] || fail "malformed line"
# The database behind GET is not there: 503, and the error is logged.
[ "$(api "http://127.0.0.1:$IP/v1/orgs/12/generations/59" "${auth12[@]}")" = 503 ] || fail "GET without database"
# A provider generation against a provider that refuses connections (the API key goes only into a header).
[ "$(api -X POST "http://127.0.0.1:$IP/v1/orgs/12/generations" "${auth12[@]}" -H 'Content-Type: application/json' -d '{"instruction": {"content": "plan"}}')" = 202 ] || fail "start generation"

# Wait until the failure paths have been logged: the compacted generation's webhook timed out, the provider
# was unreachable, the bad compactors complained.
until grep -q "webhook timed out" "$WORK/worker.log" && grep -qi "provider unreachable" "$WORK/worker.log" \
  && grep -q "WRONGPASS" "$WORK/bad-redis.log" && grep -q "database not ready" "$WORK/bad-db.log"; do
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "the failure paths were not all exercised (see the logs)"
  sleep 0.3
done
echo "ok: generation compacted, webhook timed out, provider unreachable, wrong Redis password and missing database logged"

for p in $MI $MC $MW $MB1 $MB2; do
  for path in metrics healthz readyz; do curl -s "http://127.0.0.1:$p/$path" >"$WORK/http-$p-$path.out" || true; done
done
for path in healthz readyz; do curl -s "http://127.0.0.1:$IP/$path" >"$WORK/http-api-$path.out" || true; done
grep -q streamfleet_ "$WORK/http-$MI-metrics.out" || fail "no metrics scraped"
leaks=0
for s in "${SECRETS[@]}"; do
  if hits=$(grep -lF -- "$s" "$WORK"/*.log "$WORK"/*.out 2>/dev/null); then
    echo "LEAK: \"$s\" appears in: $hits" >&2
    grep -hF -- "$s" $hits | head -3 >&2
    leaks=1
  fi
done
[ "$leaks" = 0 ] || fail "secrets or payload text in logs, metrics or health bodies"
echo "ok: $(cat "$WORK"/*.log | wc -l) log lines and $(ls "$WORK"/*.out | wc -l) /metrics, /healthz, /readyz bodies, no secret or payload text"
echo "PASS secrets_test"
