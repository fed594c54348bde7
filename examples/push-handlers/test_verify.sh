#!/usr/bin/env bash
# The push-handler signature verifiers (verify.py, verify.js, verify.php) and the sample handler servers
# (handler.py, handler.js), checked against the signature the queue-worker sends
# (queue-worker/push_handlers.cc PushSignature: "v1=" + lowercase hex HMAC-SHA256(secret, ts + "." + body)).
# The expected signatures are computed here with Python's hmac, a fixed known vector is checked against
# that and against `openssl dgst` (the library the worker signs with); then every verifier must accept the
# good request and reject a tampered body, a wrong secret, an old or future timestamp and a missing header.
# Needs python3, node, php, curl, openssl. Usage: bash examples/push-handlers/test_verify.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/streamfleet-push-verify.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done >&2; exit 1; }
for tool in python3 node php curl openssl; do command -v "$tool" >/dev/null || fail "$tool not installed"; done

# sign SECRET TIMESTAMP BODY_FILE: the worker's X-Streamfleet-Signature, computed independently of the verifiers.
sign() {
  python3 -c 'import hashlib, hmac, sys
body = open(sys.argv[3], "rb").read()
print("v1=" + hmac.new(sys.argv[1].encode(), sys.argv[2].encode() + b"." + body, hashlib.sha256).hexdigest())' "$@"
}

# --- the known vector: fixed secret, timestamp and body (raw UTF-8, as the worker sends it: no \u escapes)
KNOWN_SECRET=whsec_known_vector
KNOWN_TS=1700000000
printf '%s' '{"id":"01J9Z8X7","type":"send_notifications","payload":{"user_ids":[1,2],"text":"héllo 中 😀"},"attempt":0,"queue":"default","enqueued_at_ms":1699999999000,"deadline_ms":null}' >"$WORK/known.json"
KNOWN_SIG=v1=6b84b145495ca0c735968a02c74b2b9e39627deda29fc8b2e1904656b2cf90c6
[ "$(sign "$KNOWN_SECRET" "$KNOWN_TS" "$WORK/known.json")" = "$KNOWN_SIG" ] || fail "python hmac disagrees with the known vector"
OPENSSL_HEX=$( { printf '%s.' "$KNOWN_TS"; cat "$WORK/known.json"; } | openssl dgst -sha256 -hmac "$KNOWN_SECRET" | awk '{print $NF}')
[ "v1=$OPENSSL_HEX" = "$KNOWN_SIG" ] || fail "openssl HMAC disagrees with the known vector: v1=$OPENSSL_HEX"

# --- the verifiers, one runner per language: ARGS secret ts sig body_file now; "-" = header missing.
# Each prints "ok" or "reject".
run_py() {
  python3 - "$@" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from verify import verify
_, _, secret, ts, sig, body_file, now = sys.argv
arg = lambda v: None if v == "-" else v
print("ok" if verify(secret, arg(ts), arg(sig), open(body_file, "rb").read(), now=int(now)) else "reject")
EOF
}
run_js() {
  node -e '
const { verify } = require(process.argv[1] + "/verify.js");
const [secret, ts, sig, bodyFile, now] = process.argv.slice(2);
const arg = (v) => (v === "-" ? undefined : v);
const body = require("fs").readFileSync(bodyFile);
console.log(verify(secret, arg(ts), arg(sig), body, Number(now)) ? "ok" : "reject");' "$@"
}
run_php() {
  php -r '
require $argv[1] . "/verify.php";
[, , $secret, $ts, $sig, $bodyFile, $now] = $argv;
$arg = fn($v) => $v === "-" ? null : $v;
echo streamfleet_verify($secret, $arg($ts), $arg($sig), file_get_contents($bodyFile), (int) $now) ? "ok" : "reject", "\n";' "$@"
}

SECRET='s3cr3t-ünïcode key'
NOW=$(date +%s)
printf '%s' '{"id":"1712345678901-0","type":"send_notifications","payload":{"user_ids":[7],"msg":"a\"b é"},"attempt":2,"queue":"default","enqueued_at_ms":1712345678901,"deadline_ms":1712345738901}' >"$WORK/body.json"
printf '%s' '{"id":"1712345678901-0","type":"send_notifications","payload":{"user_ids":[7,8],"msg":"a\"b é"},"attempt":2,"queue":"default","enqueued_at_ms":1712345678901,"deadline_ms":1712345738901}' >"$WORK/tampered.json"
SIG=$(sign "$SECRET" "$NOW" "$WORK/body.json")
OLD=$((NOW - 301)); SIG_OLD=$(sign "$SECRET" "$OLD" "$WORK/body.json")
EDGE=$((NOW - 299)); SIG_EDGE=$(sign "$SECRET" "$EDGE" "$WORK/body.json")
FUTURE=$((NOW + 301)); SIG_FUTURE=$(sign "$SECRET" "$FUTURE" "$WORK/body.json")
SIG_OTHER_SECRET=$(sign "other secret" "$NOW" "$WORK/body.json")

# name | expected | secret | ts | sig | body | now
CASES=(
  "known vector|ok|$KNOWN_SECRET|$KNOWN_TS|$KNOWN_SIG|$WORK/known.json|$((KNOWN_TS + 10))"
  "good signature|ok|$SECRET|$NOW|$SIG|$WORK/body.json|$NOW"
  "inside the window (299 s old)|ok|$SECRET|$EDGE|$SIG_EDGE|$WORK/body.json|$NOW"
  "tampered body|reject|$SECRET|$NOW|$SIG|$WORK/tampered.json|$NOW"
  "wrong secret|reject|wrong|$NOW|$SIG|$WORK/body.json|$NOW"
  "signed with another secret|reject|$SECRET|$NOW|$SIG_OTHER_SECRET|$WORK/body.json|$NOW"
  "old timestamp (301 s, correctly signed)|reject|$SECRET|$OLD|$SIG_OLD|$WORK/body.json|$NOW"
  "future timestamp (301 s ahead, correctly signed)|reject|$SECRET|$FUTURE|$SIG_FUTURE|$WORK/body.json|$NOW"
  "timestamp header changed|reject|$SECRET|$((NOW - 1))|$SIG|$WORK/body.json|$NOW"
  "known vector replayed a day later|reject|$KNOWN_SECRET|$KNOWN_TS|$KNOWN_SIG|$WORK/known.json|$((KNOWN_TS + 86400))"
  "missing signature header|reject|$SECRET|$NOW|-|$WORK/body.json|$NOW"
  "missing timestamp header|reject|$SECRET|-|$SIG|$WORK/body.json|$NOW"
  "signature without v1= prefix|reject|$SECRET|$NOW|${SIG#v1=}|$WORK/body.json|$NOW"
  "empty signature|reject|$SECRET|$NOW||$WORK/body.json|$NOW"
  "truncated signature|reject|$SECRET|$NOW|${SIG:0:40}|$WORK/body.json|$NOW"
  "non-numeric timestamp|reject|$SECRET|${NOW}x|$SIG|$WORK/body.json|$NOW"
)
checks=0
for lang in py js php; do
  for c in "${CASES[@]}"; do
    IFS='|' read -r name want secret ts sig body now <<<"$c"
    got=$("run_$lang" "$HERE" "$secret" "$ts" "$sig" "$body" "$now" 2>"$WORK/$lang.log") || fail "verify.$lang crashed on: $name"
    [ "$got" = "$want" ] || fail "verify.$lang, $name: got '$got', want '$want'"
    checks=$((checks + 1))
  done
  echo "verify.$lang: ${#CASES[@]} cases ok"
done

# --- docs/push-handlers.md shows the three verifiers verbatim, each in a fenced block of its own.
DOC="$HERE/../../docs/push-handlers.md"
if [ -f "$DOC" ]; then
  python3 - "$DOC" "$HERE" <<'EOF' || fail "docs/push-handlers.md: a verifier's code block differs from the file"
import pathlib, sys
doc = pathlib.Path(sys.argv[1]).read_text()
for name, lang in (("verify.py", "python"), ("verify.js", "js"), ("verify.php", "php")):
    code = (pathlib.Path(sys.argv[2]) / name).read_text()
    if f"```{lang}\n{code}```\n" not in doc:
        sys.exit(f"{name} is not in the doc verbatim")
EOF
  echo "docs/push-handlers.md: the three verifiers verbatim"
fi

# --- the sample servers: a signed request answers 200 with JSON, a bad signature 401, and two requests share
# one keep-alive connection.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
check_server() {  # NAME PORT
  local name=$1 port=$2 ts sig out
  for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
  ts=$(date +%s)
  printf '%s' '{"id":"t-1","type":"send_notifications","payload":{"user_ids":[1,2,3]},"attempt":0,"queue":"default","enqueued_at_ms":1,"deadline_ms":null}' >"$WORK/req.json"
  sig=$(sign "$SECRET" "$ts" "$WORK/req.json")
  out=$(curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' -H "Idempotency-Key: t-1" \
    -H "X-Streamfleet-Timestamp: $ts" -H "X-Streamfleet-Signature: $sig" --data-binary "@$WORK/req.json" \
    "http://127.0.0.1:$port/tasks") || fail "$name: no answer"
  [ "$(tail -n1 <<<"$out")" = 200 ] || fail "$name: signed request answered $(tail -n1 <<<"$out")"
  python3 -c 'import json,sys; assert json.loads(sys.argv[1]) == {"sent": 3}, sys.argv[1]' "$(head -n1 <<<"$out")" \
    || fail "$name: unexpected result $(head -n1 <<<"$out")"
  out=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Streamfleet-Timestamp: $ts" -H "X-Streamfleet-Signature: $SIG_OTHER_SECRET" \
    --data-binary "@$WORK/req.json" "http://127.0.0.1:$port/tasks")
  [ "$out" = 401 ] || fail "$name: bad signature answered $out, want 401"
  # Two requests in one curl run: the second must reuse the first's connection (num_connects 0).
  out=$(curl -s -o /dev/null -o /dev/null -w "%{num_connects} " -H "X-Streamfleet-Timestamp: $ts" -H "X-Streamfleet-Signature: $sig" \
    --data-binary "@$WORK/req.json" "http://127.0.0.1:$port/tasks" "http://127.0.0.1:$port/tasks")
  [ "$out" = "1 0 " ] || fail "$name: keep-alive not used (connects per request: $out)"
  # A payload of the wrong shape (the task API accepts any JSON value) is a 400, dead-lettered, not a 500 that
  # would be retried; so is a body that is JSON but not an object.
  local bad
  for bad in '[]' '"x"' 'null' '{"user_ids": 7}'; do
    printf '{"id":"t-2","type":"send_notifications","payload":%s,"attempt":0}' "$bad" >"$WORK/bad.json"
    sig=$(sign "$SECRET" "$ts" "$WORK/bad.json")
    out=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Streamfleet-Timestamp: $ts" -H "X-Streamfleet-Signature: $sig" \
      --data-binary "@$WORK/bad.json" "http://127.0.0.1:$port/tasks")
    [ "$out" = 400 ] || fail "$name: payload $bad answered $out, want 400"
  done
  printf '[1, 2]' >"$WORK/array.json"
  sig=$(sign "$SECRET" "$ts" "$WORK/array.json")
  out=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Streamfleet-Timestamp: $ts" -H "X-Streamfleet-Signature: $sig" \
    --data-binary "@$WORK/array.json" "http://127.0.0.1:$port/tasks")
  [ "$out" = 400 ] || fail "$name: a body that is not an object answered $out, want 400"
  # A body over the worker's largest request (or a bad length) is refused before it is read: it is read before
  # its signature can be checked.
  for len in 999999999 -5; do
    out=$(python3 - "$port" "$len" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + sys.argv[2].encode() + b"\r\n\r\n{}")
print(s.recv(64).split(b" ")[1].decode())
PY
)
    # A negative length: 413 from the handler, or 400 from Node's own HTTP parser, which refuses it first.
    [ "$out" = 413 ] || { [ "$len" = -5 ] && [ "$out" = 400 ]; } || fail "$name: Content-Length $len answered $out, want 413"
  done
  echo "$name: 200 + result, 401 on a bad signature, 400 on a payload of the wrong shape, 413 on an oversized body, keep-alive ok"
}
P=$(free_port)
TASK_SIGNING_SECRET="$SECRET" PORT=$P python3 "$HERE/handler.py" >"$WORK/handler-py.log" 2>&1 &
PIDS+=($!)
check_server handler.py "$P"
P=$(free_port)
TASK_SIGNING_SECRET="$SECRET" PORT=$P node "$HERE/handler.js" >"$WORK/handler-js.log" 2>&1 &
PIDS+=($!)
check_server handler.js "$P"
echo "push-handler verifiers passed ($checks verifier checks, 2 servers)"
