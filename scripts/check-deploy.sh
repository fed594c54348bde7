#!/usr/bin/env bash
# Offline checks of everything under deploy/ (no cluster, no Docker, no network needed):
#   1. promtool check rules  deploy/prometheus/alerts.yml
#   2. promtool test rules   deploy/prometheus/alerts_test.yml, and every alert has a firing
#      and a not-firing test case (needs python3-yaml; skipped without it); every alert has a
#      runbook_url docs/deploy.md#ANCHOR whose anchor is a heading of docs/deploy.md
#   3. promtool check config deploy/prometheus/prometheus.yml (Debian's promtool has no Kubernetes
#      service discovery compiled in; then a copy with kubernetes_sd_configs swapped for a static
#      target is checked instead, so relabeling, rule_files and alerting are still validated)
#   4. deploy/grafana/streamfleet-dashboard.json: valid JSON, dashboard structure (title,
#      schemaVersion, uid, unique panel ids, every panel has a query), and every PromQL `expr`
#      parses (Grafana variables substituted, wrapped as recording rules for promtool check rules)
#   5. every streamfleet_* metric the alerts and the dashboard use is registered in the sources
#   6. kubectl kustomize renders deploy/k8s/overlays/{dev,prod,prod-cluster,prod-sentinel}, and the optional
#      components on top of an overlay (COMPONENT_RENDERS: prod + redis-tls + redis-tls-client-cert,
#      prod-cluster + redis-tls, prod-sentinel + redis-tls; every component under deploy/k8s/components is
#      used by an overlay or rendered there); structural checks of each
#      render (probes, resources, security context, CONSUMER_NAME from the pod name; needs python3-yaml);
#      the KEDA triggers name exactly the streams `streamfleetctl --json streams --keys` lists for the
#      overlay's ConfigMap (one per chunk shard and task-queue shard; type redis-cluster-streams when
#      REDIS_CLUSTER=true, redis-sentinel-streams with the sentinels and master from the environment when
#      REDIS_SENTINELS is set); Secrets created out of band are those of the *.example.yaml files of the
#      overlay, the overlays it builds on and its components, and every key referenced is listed there
#   6b. Redis credentials in each render: every container that talks to Redis (the streamfleet-* processes;
#      not `streamfleetctl migrate`, database only) sets REDIS_USERNAME and REDIS_PASSWORD from a Secret
#      (secretKeyRef), each Deployment its own user; the ConfigMap and any envFrom Secret carry no Redis
#      credentials (REDIS_URL would win over them); the exporter sets REDIS_USER/REDIS_PASSWORD from a Secret,
#      the KEDA TriggerAuthentication username and password; with REDIS_TLS=true every REDIS_TLS_CA/CERT/KEY
#      (and the exporter's TLS files) is a key of a Secret mounted at that path, the exporter scrapes
#      rediss:// and KEDA gets `tls: enable` and `ca` (`cert`/`key` with a client certificate); $(VAR) in an
#      env value names a variable defined before it; where the render loads deploy/redis/users.acl (dev),
#      every user/password pair the Secrets give exists, is on and has that password there
#   6c. application secrets, least privilege: no streamfleet container (Deployments, the migrate Job) takes a
#      Secret whole (envFrom); each sets, one secretKeyRef per variable, only the secrets its process reads
#      (SECRETS_OF below, after KeepOnlySecretsOf in components/base/src/config.cc), the ones it needs not
#      optional; no secret variable in a ConfigMap; every key a secretKeyRef names is in its Secret (render or
#      *.example.yaml; an optional key may be missing from a Secret of the render)
#   7. yamllint (if installed; Debian package `yamllint`) on the renders and on deploy/**/*.yml|yaml
#   8. the PrometheusRule of deploy/k8s/components/monitoring is generated from alerts.yml (text
#      identical to a fresh generation, and identical groups in every render); the dashboard
#      ConfigMap in the renders holds exactly deploy/grafana/streamfleet-dashboard.json (label
#      grafana_dashboard: "1"); the PodMonitor selects the pods of ingest, compactor, queue-worker,
#      admin and the Redis exporter on port `metrics`
#   9. offline schema validation of every object of every render (tools/k8s-validate: Node.js
#      models of the Kubernetes, KEDA and prometheus-operator schemas; `npm ci` there first when
#      node_modules is missing or older than package-lock.json; needs node + npm and the npm registry)
#  10. the renders match the binaries: every env variable set for a streamfleet container (env and its
#      secretKeyRefs, envFrom ConfigMaps/Secrets, KEDA *FromEnv) is one `streamfleetctl --json config` lists
#      (binary: $STREAMFLEETCTL, default build/tools/streamfleetctl; this part is skipped when it
#      is missing); probes GET /healthz or /readyz on a port the process serves; container
#      ports, Service targetPorts and PodMonitor ports match METRICS_LISTEN / INGEST_LISTEN as set
#      in the manifests (defaults 9100 ingest, 9101 compactor, 9102 queue-worker, 9103 admin, 8080 ingest API,
#      8090 admin UI); the values each streamfleet container gets (ConfigMaps, the Secrets of the
#      render, out-of-band Secrets as their *.example.yaml give them) load: `streamfleetctl
#      check-config` with that environment, as the process would at start
# Exits non-zero on the first failure. Run from anywhere: it cds to the repository root.
#   scripts/check-deploy.sh --update-prometheusrule   regenerates the PrometheusRule and exits
set -euo pipefail
cd "$(dirname "$0")/.."

PROM=deploy/prometheus
DASH=deploy/grafana/streamfleet-dashboard.json
OVERLAYS=(deploy/k8s/overlays/dev deploy/k8s/overlays/prod deploy/k8s/overlays/prod-cluster deploy/k8s/overlays/prod-sentinel)
# Optional components (deploy/k8s/components) no overlay enables, rendered on top of one and checked like an
# overlay: NAME=OVERLAY:COMPONENT[,COMPONENT...].
COMPONENT_RENDERS=(
  "prod-tls=prod:redis-tls,redis-tls-client-cert"
  "prod-cluster-tls=prod-cluster:redis-tls"
  "prod-sentinel-tls=prod-sentinel:redis-tls"
)
PROMRULE=deploy/k8s/components/monitoring/prometheusrule.yaml
K8S_VALIDATE=tools/k8s-validate
STREAMFLEETCTL=${STREAMFLEETCTL:-build/tools/streamfleetctl}
YAMLLINT_CONFIG='{extends: default, rules: {document-start: disable, indentation: {indent-sequences: whatever}, line-length: {max: 140}, truthy: disable}}'
# The renders embed the dashboard JSON (a ConfigMap value) with its long lines: no line-length there.
RENDER_YAMLLINT_CONFIG='{extends: default, rules: {document-start: disable, indentation: {indent-sequences: whatever}, line-length: disable, truthy: disable}}'

TMP=$(mktemp -d /tmp/streamfleet-check-deploy.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# The PrometheusRule is alerts.yml's content (without its leading comments) under `spec:`, so its
# groups are identical to alerts.yml by construction; printed to stdout.
generate_prometheusrule() {
  cat <<'HDR'
# GENERATED from deploy/prometheus/alerts.yml by `scripts/check-deploy.sh --update-prometheusrule`.
# Do not edit: change alerts.yml (and alerts_test.yml), then regenerate. scripts/check-deploy.sh
# fails when this file is not what the generation gives.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: streamfleet
  labels:
    app.kubernetes.io/name: streamfleet
    app.kubernetes.io/part-of: streamfleet
spec:
HDR
  awk 'started || !/^[[:space:]]*(#|$)/ { started = 1; if ($0 == "") print ""; else print "  " $0 }' "$PROM/alerts.yml"
}

if [ "${1:-}" = "--update-prometheusrule" ]; then
  generate_prometheusrule >"$PROMRULE"
  echo "wrote $PROMRULE from $PROM/alerts.yml"
  exit 0
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--update-prometheusrule]" >&2
  exit 2
fi

step() { echo; echo "== $*"; }
ok() { echo "   ok: $*"; }
skip() { echo "   SKIPPED: $*"; }
fail() { echo "   FAILED: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
PY=/usr/bin/python3  # Debian's python: pyenv's python3 on PATH does not see python3-yaml
have_pyyaml() { [ -x "$PY" ] && "$PY" -c 'import yaml' 2>/dev/null; }

have promtool || fail "promtool not found (Debian package: prometheus)"
have jq || fail "jq not found (Debian package: jq)"

# ---------------------------------------------------------------------------------------------
step "promtool check rules $PROM/alerts.yml"
promtool check rules "$PROM/alerts.yml" || fail "promtool check rules $PROM/alerts.yml"

step "promtool test rules $PROM/alerts_test.yml"
promtool test rules "$PROM/alerts_test.yml" || fail "promtool test rules $PROM/alerts_test.yml"

step "every alert has a firing and a not-firing test case"
if have_pyyaml; then
  "$PY" - "$PROM/alerts.yml" "$PROM/alerts_test.yml" <<'EOF'
import sys, yaml
alerts = [r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r]
firing, quiet = set(), set()
for tc in yaml.safe_load(open(sys.argv[2]))["tests"]:
    for a in tc.get("alert_rule_test") or []:
        (firing if a.get("exp_alerts") else quiet).add(a["alertname"])
missing = [f"{a} (firing)" for a in alerts if a not in firing] + [f"{a} (not firing)" for a in alerts if a not in quiet]
unknown = sorted((firing | quiet) - set(alerts))
if missing or unknown:
    sys.exit("untested: %s; tests of unknown alerts: %s" % (", ".join(missing) or "-", ", ".join(unknown) or "-"))
print("   ok: %d alerts, each tested firing and not firing" % len(alerts))
EOF
else
  skip "python3 with the yaml module (python3-yaml) not available"
fi

step "every alert has a runbook_url to a section of docs/deploy.md"
if have_pyyaml; then
  "$PY" - "$PROM/alerts.yml" docs/deploy.md <<'EOF'
import re, sys, yaml
rules = [r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r]
# GitHub's heading anchors: lower case, punctuation but - and _ dropped, spaces to -.
anchors, fenced = set(), False
for line in open(sys.argv[2]):
    if line.startswith("```"):
        fenced = not fenced
    m = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*$", line)
    if m:
        anchors.add(re.sub(r"[^a-z0-9 _-]", "", m.group(1).strip().lower()).replace(" ", "-"))
errors = []
for r in rules:
    url = (r.get("annotations") or {}).get("runbook_url", "")
    m = re.fullmatch(r"docs/deploy\.md#([a-z0-9_-]+)", url)
    if not m:
        errors.append(f"{r['alert']}: runbook_url {url!r} is not docs/deploy.md#<anchor>")
    elif m.group(1) not in anchors:
        errors.append(f"{r['alert']}: no heading in {sys.argv[2]} has the anchor #{m.group(1)}")
if errors:
    sys.exit("   FAILED:\n     " + "\n     ".join(errors))
print(f"   ok: {len(rules)} alerts, each with a runbook section in {sys.argv[2]}")
EOF
else
  skip "python3 with the yaml module (python3-yaml) not available"
fi

step "$PROMRULE is generated from $PROM/alerts.yml"
generate_prometheusrule >"$TMP/prometheusrule.yaml"
if ! diff -u "$PROMRULE" "$TMP/prometheusrule.yaml" >"$TMP/prometheusrule.diff"; then
  head -40 "$TMP/prometheusrule.diff" >&2
  fail "$PROMRULE differs from $PROM/alerts.yml: run scripts/check-deploy.sh --update-prometheusrule"
fi
ok "identical to a fresh generation (the renders' groups are compared to alerts.yml below)"

# ---------------------------------------------------------------------------------------------
step "promtool check config $PROM/prometheus.yml"
if promtool check config "$PROM/prometheus.yml" >"$TMP/config.out" 2>&1; then
  cat "$TMP/config.out"
elif grep -q "field kubernetes_sd_configs not found" "$TMP/config.out"; then
  echo "   this promtool is built without Kubernetes service discovery (Debian); checking a copy"
  echo "   with kubernetes_sd_configs replaced by a static target"
  if have_pyyaml; then
    mkdir -p "$TMP/prom"
    cp "$PROM/alerts.yml" "$TMP/prom/alerts.yml"
    "$PY" - "$PROM/prometheus.yml" "$TMP/prom/prometheus.yml" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
n = 0
for sc in cfg.get("scrape_configs", []):
    if sc.pop("kubernetes_sd_configs", None) is not None:
        sc.setdefault("static_configs", []).append({"targets": ["127.0.0.1:9100"]})
        n += 1
if n == 0:
    sys.exit("no kubernetes_sd_configs found to replace")
yaml.safe_dump(cfg, open(sys.argv[2], "w"), sort_keys=False)
EOF
    promtool check config "$TMP/prom/prometheus.yml" || fail "promtool check config (static-target copy of $PROM/prometheus.yml)"
  else
    skip "python3-yaml not available to rewrite the copy"
  fi
else
  cat "$TMP/config.out" >&2
  fail "promtool check config $PROM/prometheus.yml"
fi

# ---------------------------------------------------------------------------------------------
step "Grafana dashboard $DASH: JSON and structure"
jq empty "$DASH" || fail "$DASH is not valid JSON"
jq -e '
  (.title == "Streamfleet fleet overview")
  and (.schemaVersion | type == "number" and . >= 36)
  and (.uid | type == "string" and length > 0)
  and (.panels | type == "array" and length > 0)
' "$DASH" >/dev/null || fail "dashboard needs title 'Streamfleet fleet overview', schemaVersion >= 36, a uid and panels"
# All panels, including those nested in collapsed rows.
jq '[.panels[] | ., (.panels // [])[]]' "$DASH" >"$TMP/panels.json"
dups=$(jq -r '[.[].id] | group_by(.) | map(select(length > 1) | .[0]) | map(tostring) | join(",")' "$TMP/panels.json")
[ -z "$dups" ] || fail "duplicate panel ids: $dups"
noquery=$(jq -r '[.[] | select(.type != "row") | select(([.targets[]?.expr | select(type == "string" and length > 0)] | length) == 0) | .title] | join(", ")' "$TMP/panels.json")
[ -z "$noquery" ] || fail "panels without a PromQL query: $noquery"
nogrid=$(jq -r '[.[] | select((.gridPos.w // 0) <= 0 or (.gridPos.h // 0) <= 0) | .title] | join(", ")' "$TMP/panels.json")
[ -z "$nogrid" ] || fail "panels without a gridPos: $nogrid"
ok "$(jq 'map(select(.type != "row")) | length' "$TMP/panels.json") panels, $(jq '[.. | objects | select(has("expr")) | .expr] | length' "$DASH") queries"

step "Grafana dashboard: every PromQL expr parses (promtool check rules)"
# Grafana's variables are not PromQL: substitute them with something valid in the same position.
jq '{groups: [{name: "grafana-dashboard-exprs", rules: ([.. | objects | select(has("expr")) | .expr] | to_entries | map({
      record: ("dashboard:expr_\(.key)"),
      expr: (.value
        | gsub("\\$(__rate_interval|\\{__rate_interval\\})"; "5m")
        | gsub("\\$(__interval|\\{__interval\\})"; "1m")
        | gsub("\\$(__range|\\{__range\\})"; "1h")
        | gsub("\\$\\{?[A-Za-z_][A-Za-z0-9_]*\\}?"; ".*"))
    }))}]}' "$DASH" >"$TMP/dashboard-rules.json"
promtool check rules "$TMP/dashboard-rules.json" || {
  echo "   the substituted expressions were:" >&2
  jq -r '.groups[0].rules[] | "   \(.record): \(.expr)"' "$TMP/dashboard-rules.json" >&2
  fail "a dashboard expression does not parse"
}

# ---------------------------------------------------------------------------------------------
step "streamfleet_* metrics used by alerts and dashboard are registered in the sources"
used=$( { grep -ohE 'streamfleet_[a-z0-9_]+' "$PROM/alerts.yml" "$PROM/alerts_test.yml"; \
          jq -r '.. | objects | select(has("expr")) | .expr' "$DASH" | grep -oE 'streamfleet_[a-z0-9_]+'; } \
        | sed -E 's/_(bucket|count|sum)$//' | sort -u)
unknown=()
for m in $used; do
  grep -rqF "\"$m\"" components ingest compactor queue-worker tools admin 2>/dev/null || unknown+=("$m")
done
[ ${#unknown[@]} -eq 0 ] || fail "not registered anywhere in the sources: ${unknown[*]}"
ok "$(echo "$used" | wc -l) metric names"

# ---------------------------------------------------------------------------------------------
yamllint_ok=0
if have yamllint; then yamllint_ok=1; fi

if have kubectl; then
  step "schema validator $K8S_VALIDATE (Node.js)"
  have node || fail "node not found (Debian packages nodejs npm); needed for the schema validation"
  have npm || fail "npm not found (Debian package npm); needed to install $K8S_VALIDATE"
  # npm ci when node_modules is missing or older than the lock file (npm writes its own copy of
  # the lock to node_modules/.package-lock.json on every install).
  if [ ! -f "$K8S_VALIDATE/node_modules/.package-lock.json" ] \
     || [ "$K8S_VALIDATE/package-lock.json" -nt "$K8S_VALIDATE/node_modules/.package-lock.json" ]; then
    echo "   npm ci in $K8S_VALIDATE"
    (cd "$K8S_VALIDATE" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in $K8S_VALIDATE"
  fi
  ok "node $(node --version), $(cd "$K8S_VALIDATE" && node -p '["kubernetes-models", "@kubernetes-models/keda", "@kubernetes-models/prometheus-operator", "yaml"].map(p => p + "@" + require("./node_modules/" + p + "/package.json").version).join(", ")')"

  step "streamfleetctl --json config (env variables the binaries read)"
  if [ -x "$STREAMFLEETCTL" ]; then
    "$STREAMFLEETCTL" --json config >"$TMP/config-vars.json" || fail "$STREAMFLEETCTL --json config"
    jq -e 'type == "array" and length > 0 and all(.[]; .name | type == "string")' "$TMP/config-vars.json" >/dev/null \
      || fail "$STREAMFLEETCTL --json config: expected a JSON array of {name, default, description}"
    ok "$(jq length "$TMP/config-vars.json") variables from $STREAMFLEETCTL"
    STREAMFLEETCTL="$STREAMFLEETCTL" bash scripts/gen-config-doc.sh --check >/dev/null \
      || fail "docs/CONFIGURATION.md differs from streamfleetctl config: run bash scripts/gen-config-doc.sh"
    ok "docs/CONFIGURATION.md matches the code's table"
  else
    echo '[]' >"$TMP/config-vars.json"
    skip "env variable names are NOT checked: $STREAMFLEETCTL not found (build it, or set STREAMFLEETCTL=/path/to/streamfleetctl); probes and ports are still checked"
  fi

  step "optional components: every one is used by an overlay or rendered on top of one"
  renders=("${OVERLAYS[@]}")
  declare -A label=()
  used=$(sed 's/#.*//' deploy/k8s/overlays/*/kustomization.yaml | grep -o 'components/[a-z0-9-]*' | sed 's|components/||' | sort -u)
  for cr in "${COMPONENT_RENDERS[@]}"; do
    rname=${cr%%=*}; spec=${cr#*=}; base=${spec%%:*}; comps=${spec#*:}
    dir="$TMP/overlays/$rname"
    mkdir -p "$dir"
    rel=$(realpath --relative-to="$dir" deploy/k8s)
    { echo "apiVersion: kustomize.config.k8s.io/v1beta1"; echo "kind: Kustomization"
      echo "resources:"; echo "  - $rel/overlays/$base"; echo "components:"
      for c in ${comps//,/ }; do echo "  - $rel/components/$c"; done; } >"$dir/kustomization.yaml"
    renders+=("$dir")
    label[$dir]="deploy/k8s/overlays/$base + components ${comps//,/, } (as $rname)"
    used+=$'\n'$(tr ',' '\n' <<<"$comps")
  done
  for c in deploy/k8s/components/*/; do
    c=$(basename "$c")
    grep -qx "$c" <<<"$used" || fail "component $c is in no overlay and not in COMPONENT_RENDERS: nothing checks it"
  done
  ok "${#COMPONENT_RENDERS[@]} renders with components: ${COMPONENT_RENDERS[*]}"

  for o in "${renders[@]}"; do
    name=$(basename "$o")
    step "kubectl kustomize ${label[$o]:-$o}"
    kubectl kustomize "$o" >"$TMP/$name.yaml" || fail "kustomize build of $o"
    ok "$(grep -c '^kind:' "$TMP/$name.yaml") objects: $(grep '^kind:' "$TMP/$name.yaml" | awk '{print $2}' | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}' | sed 's/, $//')"
    if have_pyyaml; then
      # Secrets created out of band: those of the *.example.yaml files of the overlay, of every overlay it builds
      # on and of its components (recursively), as {name: {key: example value}}.
      "$PY" - "$o" >"$TMP/$name.examples.json" <<'EOF' || fail "reading the *.example.yaml files of $o"
import base64, binascii, glob, json, os, sys, yaml
secrets, seen = {}, set()
def walk(d):
    d = os.path.normpath(d)
    if d in seen or not os.path.isfile(os.path.join(d, "kustomization.yaml")):
        return
    seen.add(d)
    for f in sorted(glob.glob(os.path.join(d, "*.example.yaml"))):
        for doc in yaml.safe_load_all(open(f)):
            if doc and doc.get("kind") == "Secret":
                values = secrets.setdefault(doc["metadata"]["name"], {})
                for k, v in (doc.get("stringData") or {}).items():
                    values.setdefault(k, "" if v is None else str(v))
                for k, v in (doc.get("data") or {}).items():
                    try:
                        values.setdefault(k, base64.b64decode(v or "", validate=True).decode())
                    except (binascii.Error, UnicodeDecodeError):
                        values.setdefault(k, str(v))
    k = yaml.safe_load(open(os.path.join(d, "kustomization.yaml"))) or {}
    for r in (k.get("resources") or []) + (k.get("components") or []):
        if os.path.isdir(os.path.join(d, r)):
            walk(os.path.join(d, r))
walk(sys.argv[1])
json.dump(secrets, sys.stdout)
EOF
      # The streams the consumer groups read under this overlay's ConfigMap, from the binary itself.
      echo '[]' >"$TMP/$name.keys.json"
      if [ -x "$STREAMFLEETCTL" ]; then
        "$PY" - "$TMP/$name.yaml" "$STREAMFLEETCTL" >"$TMP/$name.keys.json" <<'EOF' \
          || fail "streamfleetctl --json streams --keys with the $name ConfigMap"
import os, subprocess, sys, yaml
cm = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "ConfigMap"
      and d["metadata"]["name"].startswith("streamfleet-config")]
env = {"PATH": os.environ["PATH"], **cm[0]["data"]}
sys.stdout.write(subprocess.run([sys.argv[2], "--json", "streams", "--keys"], env=env, check=True,
                                capture_output=True, text=True).stdout)
EOF
      fi
      "$PY" - "$TMP/$name.yaml" "$name" "$TMP/$name.keys.json" "$TMP/$name.examples.json" <<'EOF'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
overlay = sys.argv[2]
consumed = json.load(open(sys.argv[3]))
examples = json.load(open(sys.argv[4]))
errors = []
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
fleet = {"streamfleet-ingest": 8080, "streamfleet-compactor": 9101, "streamfleet-queue-worker": 9102}
deps = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
for name in fleet:
    if name not in deps:
        errors.append(f"Deployment {name} missing")
        continue
    spec = deps[name]["spec"]["template"]["spec"]
    if name != "streamfleet-queue-worker" and spec.get("terminationGracePeriodSeconds") != 30:
        errors.append(f"{name}: terminationGracePeriodSeconds must be 30")
    if not spec.get("securityContext", {}).get("runAsNonRoot"):
        errors.append(f"{name}: pod runAsNonRoot")
    if "podAntiAffinity" not in spec.get("affinity", {}):
        errors.append(f"{name}: podAntiAffinity")
    if not any(v.get("emptyDir") is not None for v in spec.get("volumes", [])):
        errors.append(f"{name}: emptyDir volume")
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                and "ALL" in sc.get("capabilities", {}).get("drop", [])):
            errors.append(f"{name}/{c['name']}: securityContext")
        for p in ("readinessProbe", "livenessProbe"):
            probe = c.get(p, {}).get("httpGet", {})
            want = "/readyz" if p == "readinessProbe" else "/healthz"
            if probe.get("path") != want:
                errors.append(f"{name}/{c['name']}: {p} must GET {want}")
        res = c.get("resources", {})
        if not (res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory")):
            errors.append(f"{name}/{c['name']}: memory requests/limits")
        if not any(m.get("mountPath") == "/tmp" for m in c.get("volumeMounts", [])):
            errors.append(f"{name}/{c['name']}: /tmp mount")
        env = {e["name"]: e for e in c.get("env", [])}
        if env.get("CONSUMER_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
            errors.append(f"{name}/{c['name']}: CONSUMER_NAME from metadata.name")
        refs = [list(e.keys())[0] for e in c.get("envFrom", [])]
        if "configMapRef" not in refs:
            errors.append(f"{name}/{c['name']}: envFrom ConfigMap")
        if "secretRef" in refs:
            errors.append(f"{name}/{c['name']}: envFrom Secret (secrets go one by one, secretKeyRef)")
names = {(d["kind"], d["metadata"]["name"]) for d in docs}
# The admin's "compact now" runs a whole finalization in-process, as the compactor does (about 10x the
# generation's size, docs/deploy.md "Memory follows the largest generation"): its memory limit is the
# compactor's at least.
def mem_bytes(q):
    q = str(q)
    for suffix, mul in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("Ti", 2**40), ("k", 10**3), ("M", 10**6),
                        ("G", 10**9), ("T", 10**12)):
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * mul
    return float(q)
def mem_limit(dep):
    return max((mem_bytes(c.get("resources", {}).get("limits", {}).get("memory", 0))
                for c in dep["spec"]["template"]["spec"]["containers"]), default=0)
admin = next((d for d in by_kind.get("Deployment", []) if d["metadata"]["name"] == "streamfleet-admin"), None)
if admin is not None and "streamfleet-compactor" in deps:
    if mem_limit(admin) < mem_limit(deps["streamfleet-compactor"]):
        errors.append("streamfleet-admin: memory limit below the compactor's (\"compact now\" finalizes in the admin "
                      "process, about 10x the generation's size)")
# Every ConfigMap/Secret a workload references must be in the render or, created out of band, in an
# *.example.yaml of the overlay (prod: streamfleet-secrets, streamfleet-redis-users, ...).
external = {("Secret", n) for n in examples}
def refs(o, acc):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ("configMapRef", "configMapKeyRef") and isinstance(v, dict):
                acc.add(("ConfigMap", v["name"]))
            elif k in ("secretRef", "secretKeyRef") and isinstance(v, dict):
                acc.add(("Secret", v["name"]))
            else:
                refs(v, acc)
    elif isinstance(o, list):
        for v in o:
            refs(v, acc)
wanted = set()
for d in docs:
    refs(d.get("spec", {}), wanted)
for ta in by_kind.get("TriggerAuthentication", []):
    for s in ta["spec"].get("secretTargetRef", []):
        wanted.add(("Secret", s["name"]))
for w in sorted(wanted - names - external):
    errors.append(f"reference to missing {w[0]} {w[1]}")
for kind, need in (("Service", 2), ("PodDisruptionBudget", 3), ("NetworkPolicy", 1), ("HorizontalPodAutoscaler", 1),
                   ("ScaledObject", 2), ("Job", 1)):
    if len(by_kind.get(kind, [])) < need:
        errors.append(f"expected at least {need} {kind}")
for so in by_kind.get("ScaledObject", []):
    if so["apiVersion"] != "keda.sh/v1alpha1":
        errors.append(f"ScaledObject {so['metadata']['name']}: apiVersion")
    if so["spec"]["scaleTargetRef"]["name"] not in deps:
        errors.append(f"ScaledObject {so['metadata']['name']}: target not in render")
cms = [d for d in by_kind.get("ConfigMap", []) if d["metadata"]["name"].startswith("streamfleet-config")]
cluster = bool(cms) and cms[0]["data"].get("REDIS_CLUSTER", "false") == "true"
# A SIGTERM (rollout, KEDA scale-down) lets running tasks finish up to their timeout: the queue-worker's grace
# period must outlast the longest TASK_TIMEOUTS / TASK_TIMEOUT plus TASK_TIMEOUT_GRACE and a margin, or
# Kubernetes SIGKILLs a long task (a generation.run stream) mid-way (docs/deploy.md, Long tasks). That is one
# task per slot: the tasks a slot read ahead (up to WORKER_PREFETCH) run after it during the drain and are not
# covered; cut or not started, they stay pending and are claimed elsewhere after VISIBILITY_TIMEOUT.
def seconds(text):
    text = text.strip()
    for unit, mul in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * mul
    return int(text) if text.isdigit() else 0
if cms and "streamfleet-queue-worker" in deps:
    data = cms[0]["data"]
    longest = max([seconds(data.get("TASK_TIMEOUT", "0"))] +
                  [seconds(item.split("=", 1)[1]) for item in data.get("TASK_TIMEOUTS", "").split(",") if "=" in item])
    if longest == 0:
        errors.append("ConfigMap: set TASK_TIMEOUTS (or TASK_TIMEOUT) so the queue-worker's grace period can be sized")
    need = longest + seconds(data.get("TASK_TIMEOUT_GRACE", "5s")) + 30
    grace = deps["streamfleet-queue-worker"]["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    if grace < need:
        errors.append(f"streamfleet-queue-worker: terminationGracePeriodSeconds {grace} < longest task timeout "
                      f"{longest:g}s + TASK_TIMEOUT_GRACE + 30s = {need:g}s")
sentinel = bool(cms) and bool(cms[0]["data"].get("REDIS_SENTINELS"))
if sentinel and not cms[0]["data"].get("REDIS_SENTINEL_MASTER"):
    errors.append("ConfigMap: REDIS_SENTINELS without REDIS_SENTINEL_MASTER")
want_type = "redis-cluster-streams" if cluster else "redis-sentinel-streams" if sentinel else "redis-streams"
for so in by_kind.get("ScaledObject", []):
    for t in so["spec"]["triggers"]:
        if t["type"] != want_type or "lagCount" not in t["metadata"]:
            errors.append(f"ScaledObject {so['metadata']['name']}: {want_type} trigger with lagCount")
        # KEDA must ask the same sentinels for the same master as the processes.
        if sentinel and (t["metadata"].get("addressesFromEnv") != "REDIS_SENTINELS"
                         or t["metadata"].get("sentinelMasterFromEnv") != "REDIS_SENTINEL_MASTER"):
            errors.append(f"ScaledObject {so['metadata']['name']}: redis-sentinel-streams trigger on "
                          f"{t['metadata'].get('stream')} needs addressesFromEnv: REDIS_SENTINELS and "
                          "sentinelMasterFromEnv: REDIS_SENTINEL_MASTER")
# Every chunk shard and task-queue shard the binaries read (streamfleetctl streams --keys with this
# ConfigMap) has a trigger on the Deployment that reads it, and no trigger names a stream nobody reads.
triggers = {(t["metadata"]["stream"], t["metadata"]["consumerGroup"], so["spec"]["scaleTargetRef"]["name"])
            for so in by_kind.get("ScaledObject", []) for t in so["spec"]["triggers"]}
if consumed:
    read = {(c["stream"], c["group"], c["process"]) for c in consumed}
    for c in consumed:
        scaled = c["group"] in ("compactor", "workers") and not c["stream"].endswith("finalize")
        if scaled and (c["stream"], c["group"], c["process"]) not in triggers:
            errors.append(f"no KEDA trigger on {c['stream']} group {c['group']} for {c['process']}")
    for t in sorted(triggers - read):
        errors.append(f"KEDA trigger on {t[0]} group {t[1]} for {t[2]}: no consumer group reads it")
else:
    for want in (("streamfleet:chunks:0", "compactor"), ("streamfleet:queue:default", "workers")):
        if not any(t[:2] == want for t in triggers):
            errors.append(f"no KEDA trigger on {want[0]} group {want[1]}")
if overlay == "dev":
    for sts in ("redis", "postgresql"):
        if ("StatefulSet", sts) not in names:
            errors.append(f"dev: StatefulSet {sts} missing")
if errors:
    sys.exit("   FAILED:\n     " + "\n     ".join(errors))
print(f"   ok: structure of {len(docs)} objects")
EOF
      "$PY" - "$TMP/$name.yaml" "$TMP/$name.examples.json" deploy/redis/users.acl <<'EOF'
# Redis credentials: one ACL user per process from a Secret, KEDA's and the exporter's users, TLS files mounted.
import base64, json, posixpath, re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
examples = json.load(open(sys.argv[2]))
acl_file = open(sys.argv[3]).read()
errors = []
secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
def secret_keys(name):
    """Keys of a Secret in the render or documented in an *.example.yaml (None: neither)."""
    if name in secrets:
        d = secrets[name]
        return set(d.get("data") or {}) | set(d.get("stringData") or {})
    return set(examples[name]) if name in examples else None
def secret_value(name, key):
    """The value when the render holds the Secret (dev, generated), else None."""
    d = secrets.get(name) or {}
    if key in (d.get("stringData") or {}):
        return d["stringData"][key]
    if key in (d.get("data") or {}):
        return base64.b64decode(d["data"][key]).decode()
    return None
def check_ref(where, name, key):
    keys = secret_keys(name)
    if keys is None:
        errors.append(f"{where}: Secret {name} is neither in the render nor in an *.example.yaml")
    elif key not in keys:
        errors.append(f"{where}: Secret {name} has no key {key} (render or *.example.yaml)")
cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("streamfleet-config")]
config = cms[0].get("data") or {} if cms else {}
CREDENTIALS = ("REDIS_URL", "REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD")
for k in CREDENTIALS:
    if k in config:
        errors.append(f"ConfigMap streamfleet-config sets {k}: Redis credentials belong in a Secret, per process "
                      "(and REDIS_URL would win over REDIS_USERNAME/REDIS_PASSWORD)")
tls = config.get("REDIS_TLS") == "true"
def from_secret(env, var, where):
    e = env.get(var)
    ref = ((e or {}).get("valueFrom") or {}).get("secretKeyRef")
    if not ref:
        errors.append(f"{where}: {var} must come from a Secret (env valueFrom.secretKeyRef)")
        return None
    check_ref(f"{where} {var}", ref["name"], ref["key"])
    return (ref["name"], ref["key"])
def mounted_secret_key(spec, container, path, where, var):
    """path must be a key of a Secret volume mounted in this container."""
    vols = {v["name"]: v for v in spec.get("volumes") or []}
    for m in container.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/") + "/"
        if not path.startswith(mp):
            continue
        sec = (vols.get(m["name"]) or {}).get("secret")
        if not sec:
            errors.append(f"{where}: {var}={path} is on volume {m['name']}, not a Secret")
            return
        key = path[len(mp):]
        items = {i["path"]: i["key"] for i in sec.get("items") or []}
        check_ref(f"{where} {var}", sec["secretName"], items.get(key, key) if items else key)
        return
    errors.append(f"{where}: {var}={path} is not under any volumeMount of the container")
users = {}  # (secret, key) of REDIS_USERNAME -> workload
talking = 0
for w in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")):
    spec = w["spec"]["template"]["spec"]
    for c in spec["containers"]:
        where = f"{w['kind']} {w['metadata']['name']}/{c['name']}"
        env = {e["name"]: e for e in c.get("env") or []}
        # Kubernetes expands $(VAR) only for variables defined before (env order).
        seen = set()
        for e in c.get("env") or []:
            for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(e.get("value", ""))):
                if ref not in seen:
                    errors.append(f"{where}: {e['name']} uses $({ref}), not defined before it in env")
            seen.add(e["name"])
        cmd = c.get("command") or []
        if cmd[:1] and cmd[0].startswith("streamfleet") and cmd[:2] != ["streamfleetctl", "migrate"]:
            talking += 1
            for ef in c.get("envFrom") or []:
                for kind, refkey in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if refkey not in ef:
                        continue
                    n = ef[refkey]["name"]
                    keys = set((next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == n), {})
                                .get("data") or {})) | (secret_keys(n) or set() if kind == "Secret" else set())
                    for k in sorted(keys & set(CREDENTIALS)):
                        errors.append(f"{where}: envFrom {kind} {n} carries {k}: shared Redis credentials; "
                                      "give each process its own user (REDIS_USERNAME/REDIS_PASSWORD from a Secret)")
            user = from_secret(env, "REDIS_USERNAME", where)
            from_secret(env, "REDIS_PASSWORD", where)
            if user and w["kind"] == "Deployment":
                if user in users and users[user] != w["metadata"]["name"]:
                    errors.append(f"{where}: REDIS_USERNAME from {user[0]}/{user[1]} is also {users[user]}'s: "
                                  "every Deployment gets its own Redis user")
                users.setdefault(user, w["metadata"]["name"])
            if tls:
                for var in ("REDIS_TLS_CA", "REDIS_TLS_CERT", "REDIS_TLS_KEY"):
                    path = env.get(var, {}).get("value") or config.get(var)
                    if path:
                        mounted_secret_key(spec, c, path, where, var)
        elif c["name"] == "redis-exporter":
            talking += 1
            from_secret(env, "REDIS_USER", where)
            from_secret(env, "REDIS_PASSWORD", where)
            addr = env.get("REDIS_ADDR", {}).get("value", "")
            if "@" in addr:
                errors.append(f"{where}: REDIS_ADDR carries credentials")
            if not addr.startswith("rediss://" if tls else "redis://"):
                errors.append(f"{where}: REDIS_ADDR={addr} must be {'rediss' if tls else 'redis'}:// "
                              f"(REDIS_TLS={config.get('REDIS_TLS', 'false')})")
            for var in ("REDIS_EXPORTER_TLS_CA_CERT_FILE", "REDIS_EXPORTER_TLS_CLIENT_CERT_FILE",
                        "REDIS_EXPORTER_TLS_CLIENT_KEY_FILE"):
                if env.get(var, {}).get("value"):
                    mounted_secret_key(spec, c, env[var]["value"], where, var)
            if tls and bool(config.get("REDIS_TLS_CA")) != bool(env.get("REDIS_EXPORTER_TLS_CA_CERT_FILE")):
                errors.append(f"{where}: REDIS_EXPORTER_TLS_CA_CERT_FILE must follow REDIS_TLS_CA")
            if tls and bool(config.get("REDIS_TLS_CERT")) != bool(env.get("REDIS_EXPORTER_TLS_CLIENT_CERT_FILE")):
                errors.append(f"{where}: REDIS_EXPORTER_TLS_CLIENT_CERT_FILE/KEY_FILE must follow REDIS_TLS_CERT/KEY")
if talking < 5:
    errors.append(f"only {talking} containers talk to Redis (ingest, compactor, queue-worker, admin, exporter expected)")
# KEDA: its own user; TLS as the processes.
tas = {d["metadata"]["name"]: d for d in docs if d["kind"] == "TriggerAuthentication"}
for so in (d for d in docs if d["kind"] == "ScaledObject"):
    for t in so["spec"]["triggers"]:
        name = (t.get("authenticationRef") or {}).get("name")
        where = f"ScaledObject {so['metadata']['name']} ({t['metadata'].get('stream')})"
        if name not in tas:
            errors.append(f"{where}: authenticationRef names no TriggerAuthentication in the render")
            continue
        params = {s["parameter"]: s for s in tas[name]["spec"].get("secretTargetRef") or []}
        want = {"username", "password"} | ({"tls"} if tls else set()) | \
               ({"ca"} if tls and config.get("REDIS_TLS_CA") else set()) | \
               ({"cert", "key"} if tls and config.get("REDIS_TLS_CERT") else set())
        for p in sorted(want - set(params)):
            errors.append(f"TriggerAuthentication {name}: no `{p}` (secretTargetRef)")
        if not tls and "tls" in params:
            errors.append(f"TriggerAuthentication {name}: `tls` without REDIS_TLS=true")
for name, ta in tas.items():
    for s in ta["spec"].get("secretTargetRef") or []:
        check_ref(f"TriggerAuthentication {name} {s['parameter']}", s["name"], s["key"])
        if s["parameter"] == "tls":
            v = secret_value(s["name"], s["key"])
            if v is not None and v != "enable":
                errors.append(f"TriggerAuthentication {name}: tls is {v!r}, KEDA wants `enable`")
# Where the render loads users.acl (dev's Redis): it is deploy/redis/users.acl, and every user/password pair the
# workloads and KEDA get exists there, is on and has that password.
acl_secrets = [n for n, d in secrets.items() if "users.acl" in (d.get("data") or {})]
for n in acl_secrets:
    text = secret_value(n, "users.acl")
    if text != acl_file:
        errors.append(f"Secret {n}: users.acl differs from {sys.argv[3]}")
    acl = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "user":
            acl[parts[1]] = parts[2:]
    pairs = set()
    for w in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")):
        for c in w["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: ((e.get("valueFrom") or {}).get("secretKeyRef")) for e in c.get("env") or []}
            for u, p in (("REDIS_USERNAME", "REDIS_PASSWORD"), ("REDIS_USER", "REDIS_PASSWORD")):
                if env.get(u) and env.get(p):
                    pairs.add((f"{w['metadata']['name']}/{c['name']}", env[u]["name"], env[u]["key"], env[p]["name"], env[p]["key"]))
    for name, ta in tas.items():
        params = {s["parameter"]: s for s in ta["spec"].get("secretTargetRef") or []}
        if "username" in params and "password" in params:
            pairs.add((f"TriggerAuthentication {name}", params["username"]["name"], params["username"]["key"],
                       params["password"]["name"], params["password"]["key"]))
    for where, us, uk, ps, pk in sorted(pairs):
        u, p = secret_value(us, uk), secret_value(ps, pk)
        if u is None or p is None:
            continue
        rules = acl.get(u)
        if rules is None:
            errors.append(f"{where}: Redis user {u!r} is not in {sys.argv[3]}")
        elif "on" not in rules or ">" + p not in rules:
            errors.append(f"{where}: Redis user {u!r} is off or has another password in {sys.argv[3]}")
if errors:
    sys.exit("   FAILED:\n     " + "\n     ".join(errors))
print(f"   ok: Redis credentials: {talking} containers, each its own ACL user from a Secret; KEDA and exporter users"
      + ("; TLS files mounted, exporter rediss://, KEDA tls" if tls else "")
      + ("; users match " + sys.argv[3] if acl_secrets else ""))
EOF
      "$PY" - "$TMP/$name.yaml" "$TMP/$name.examples.json" <<'EOF'
# Application secrets, least privilege: no streamfleet container takes a Secret whole (envFrom); each sets, one
# secretKeyRef per variable, only the secrets its process reads (components/base/src/config.cc,
# KeepOnlySecretsOf; docs/CONFIGURATION.md), so the internet-facing ingest never holds ADMIN_TOKEN,
# PROVIDER_API_KEY or TASK_SIGNING_SECRET. Every key a secretKeyRef names exists in its Secret (in the render
# or its *.example.yaml); an optional one may be missing from a Secret in the render (dev), not from an example.
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
examples = json.load(open(sys.argv[2]))
errors = []
AWS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}  # ARTIFACT_STORE, every daemon
# process -> (secrets it may get, those it must get without `optional`: a missing INGEST_TOKENS would leave
# ingest open to everyone, a missing ADMIN_TOKEN keeps the admin from starting, a missing DATABASE_URL falls
# back to a SQLite file on a read-only filesystem).
SECRETS_OF = {
    "streamfleet-ingest": ({"DATABASE_URL", "INGEST_TOKENS", "TASK_API_TOKENS"} | AWS, {"DATABASE_URL", "INGEST_TOKENS"}),
    "streamfleet-compactor": ({"DATABASE_URL"} | AWS, {"DATABASE_URL"}),
    "streamfleet-queue-worker": ({"DATABASE_URL", "PROVIDER_API_KEY", "TASK_SIGNING_SECRET"} | AWS, {"DATABASE_URL"}),
    "streamfleet-admin": ({"DATABASE_URL", "ADMIN_TOKEN"} | AWS, {"DATABASE_URL", "ADMIN_TOKEN"}),
    "streamfleetctl migrate": ({"DATABASE_URL"}, {"DATABASE_URL"}),
}
SECRET_VARS = set().union(*(may for may, _ in SECRETS_OF.values()))
secrets = {d["metadata"]["name"]: set(d.get("data") or {}) | set(d.get("stringData") or {})
           for d in docs if d["kind"] == "Secret"}
for d in docs:
    if d["kind"] == "ConfigMap":
        for k in sorted(set(d.get("data") or {}) & SECRET_VARS):
            errors.append(f"ConfigMap {d['metadata']['name']} sets {k}: a secret, and every pod reads the ConfigMap")
checked = 0
for w in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")):
    for c in w["spec"]["template"]["spec"]["containers"]:
        where = f"{w['kind']} {w['metadata']['name']}/{c['name']}"
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if not ref:
                continue
            if ref["name"] in secrets:
                if ref["key"] not in secrets[ref["name"]] and not ref.get("optional"):
                    errors.append(f"{where}: {e['name']} from Secret {ref['name']} key {ref['key']}, which it lacks "
                                  "(and the reference is not optional)")
            elif ref["name"] in examples:
                if ref["key"] not in examples[ref["name"]]:
                    errors.append(f"{where}: {e['name']} from Secret {ref['name']} key {ref['key']}, not listed in "
                                  "its *.example.yaml")
        cmd = c.get("command") or [""]
        proc = "streamfleetctl migrate" if cmd[:2] == ["streamfleetctl", "migrate"] else cmd[0]
        if not proc.startswith("streamfleet"):
            continue
        if proc not in SECRETS_OF:
            errors.append(f"{where}: {proc} is not in SECRETS_OF of scripts/check-deploy.sh: say which secrets it reads")
            continue
        checked += 1
        for ef in c.get("envFrom") or []:
            if "secretRef" in ef:
                errors.append(f"{where}: envFrom Secret {ef['secretRef']['name']}: the process would hold every key of "
                              "it; set the secrets it reads one by one (env valueFrom.secretKeyRef)")
        may, must = SECRETS_OF[proc]
        env = {e["name"]: e for e in c.get("env") or []}
        for n in sorted(set(env) & SECRET_VARS):
            ref = (env[n].get("valueFrom") or {}).get("secretKeyRef")
            if n not in may:
                errors.append(f"{where}: {n}: {proc} does not read it (KeepOnlySecretsOf); do not give it to this pod")
            elif not ref:
                errors.append(f"{where}: {n} must come from a Secret (env valueFrom.secretKeyRef)")
            elif n in must and ref.get("optional"):
                errors.append(f"{where}: {n} must not be optional: {proc} needs it")
        for n in sorted(must - set(env)):
            errors.append(f"{where}: {n} is not set: {proc} needs it (env valueFrom.secretKeyRef)")
if checked < 5:
    errors.append(f"only {checked} streamfleet containers found (ingest, compactor, queue-worker, admin, migrate expected)")
if errors:
    sys.exit("   FAILED:\n     " + "\n     ".join(errors))
print(f"   ok: application secrets: {checked} streamfleet containers, no envFrom Secret, each only its own "
      "(secretKeyRef), every key referenced in its Secret or *.example.yaml")
EOF
    else
      skip "structural checks (python3-yaml not available)"
    fi
    echo "   schema validation of the $name render ($K8S_VALIDATE/validate.mjs)"
    node "$K8S_VALIDATE/validate.mjs" "$TMP/$name.yaml" | sed 's/^/   ok: /' \
      || fail "schema validation of the $name render (kubectl kustomize $o | node $K8S_VALIDATE/validate.mjs -)"
    if have_pyyaml; then
      "$PY" - "$TMP/$name.yaml" "$PROM/alerts.yml" "$DASH" <<'EOF'
# Monitoring objects: PrometheusRule groups == alerts.yml, dashboard ConfigMap == the JSON file,
# the PodMonitor selects the fleet's pods on a port they have.
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
alerts = yaml.safe_load(open(sys.argv[2]))["groups"]
dash_text = open(sys.argv[3]).read()
errors = []
def kinds(k):
    return [d for d in docs if d["kind"] == k]
rules = kinds("PrometheusRule")
if len(rules) != 1:
    errors.append(f"expected 1 PrometheusRule, found {len(rules)}")
for r in rules:
    if r["spec"].get("groups") != alerts:
        errors.append(f"PrometheusRule {r['metadata']['name']}: spec.groups differ from alerts.yml")
dash = [d for d in kinds("ConfigMap") if (d["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
if len(dash) != 1:
    errors.append(f'expected 1 ConfigMap labelled grafana_dashboard="1", found {len(dash)}')
for cm in dash:
    data = cm.get("data") or {}
    if list(data) != ["streamfleet-dashboard.json"] or data["streamfleet-dashboard.json"] != dash_text:
        errors.append(f"ConfigMap {cm['metadata']['name']}: must hold exactly streamfleet-dashboard.json, unchanged")
def selects(sel, labels):
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e["key"], e["operator"], e.get("values") or []
        if (op == "In" and labels.get(k) not in vals) or (op == "NotIn" and labels.get(k) in vals) \
           or (op == "Exists" and k not in labels) or (op == "DoesNotExist" and k in labels):
            return False
    return True
pms = kinds("PodMonitor")
if not pms:
    errors.append("no PodMonitor")
for proc in ("streamfleet-ingest", "streamfleet-compactor", "streamfleet-queue-worker", "streamfleet-admin",
             "streamfleet-redis-exporter"):
    dep = next((d for d in kinds("Deployment") if d["metadata"]["name"] == proc), None)
    if dep is None:
        errors.append(f"Deployment {proc} missing")
        continue
    tmpl = dep["spec"]["template"]
    ports = {p.get("name") for c in tmpl["spec"]["containers"] for p in c.get("ports", [])}
    scraped = [(pm, ep) for pm in pms if selects(pm["spec"]["selector"], tmpl["metadata"].get("labels") or {})
               for ep in pm["spec"].get("podMetricsEndpoints", []) if ep.get("port") in ports]
    if not scraped:
        errors.append(f"no PodMonitor scrapes a named port of {proc}")
    for pm, ep in scraped:
        if ep.get("path", "/metrics") != "/metrics":
            errors.append(f"PodMonitor {pm['metadata']['name']}: path must be /metrics")
        if pm["spec"].get("jobLabel") != "app.kubernetes.io/name":
            errors.append(f"PodMonitor {pm['metadata']['name']}: jobLabel must be app.kubernetes.io/name (alerts use job=streamfleet-*)")
if errors:
    sys.exit("   FAILED:\n     " + "\n     ".join(errors))
print(f"   ok: PrometheusRule = alerts.yml ({len(alerts)} groups), dashboard ConfigMap = {sys.argv[3]}, PodMonitor scrapes the fleet")
EOF
      "$PY" - "$TMP/$name.yaml" "$TMP/config-vars.json" "$o" "$TMP/$name.examples.json" <<'EOF'
# The manifests against what the binaries read and serve.
import glob, json, os, re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
known = {v["name"] for v in json.load(open(sys.argv[2]))}
overlay_dir = sys.argv[3]
errors = []
# METRICS_LISTEN defaults per binary (/metrics, /healthz, /readyz); ingest also serves its API,
# /healthz and /readyz on INGEST_LISTEN (default 8080).
DEFAULT_METRICS = {"streamfleet-ingest": 9100, "streamfleet-compactor": 9101, "streamfleet-queue-worker": 9102,
                   "streamfleet-admin": 9103}
# The second listener a process serves besides its metrics port: (variable, default port).
API_LISTEN = {"streamfleet-ingest": ("INGEST_LISTEN", 8080), "streamfleet-admin": ("ADMIN_LISTEN", 8090)}
PROBE_PATHS = {"/healthz", "/readyz"}
by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
# Secrets created out of band (prod): their keys as documented in the *.example.yaml files of the overlay,
# of the overlays it builds on (prod-cluster: ../prod) and of its components.
for n, keys in json.load(open(sys.argv[4])).items():
    by_name.setdefault(("Secret", n), {"stringData": {k: None for k in keys}})
def keys_of(kind, name, where):
    d = by_name.get((kind, name))
    if d is None:
        errors.append(f"{where}: envFrom {kind} {name} is neither in the render nor in {overlay_dir}/*.example.yaml")
        return {}
    if kind == "ConfigMap":
        return dict(d.get("data") or {})
    return {k: None for k in list(d.get("data") or {}) + list(d.get("stringData") or {})}
def port_of(listen, var, where):
    m = re.fullmatch(r"(?:.*:)?(\d+)", str(listen))
    if not m:
        errors.append(f"{where}: cannot take a port from {var}={listen!r}")
        return None
    return int(m.group(1))
containers_env = {}  # (workload, container) -> env names it gets
pods = []            # (labels, {port name: number}, served ports) of the serving processes
for w in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")):
    tmpl = w["spec"]["template"]
    for c in tmpl["spec"]["containers"]:
        cmd = (c.get("command") or [""])[0]
        if not cmd.startswith("streamfleet"):
            continue  # datastores, the Redis exporter
        where = f"{w['kind']} {w['metadata']['name']}/{c['name']}"
        env = {}
        for ef in c.get("envFrom", []):
            for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if ref in ef:
                    for k, v in keys_of(kind, ef[ref]["name"], where).items():
                        env[ef.get("prefix", "") + k] = (v, f"{kind} {ef[ref]['name']}")
        for e in c.get("env", []):
            env[e["name"]] = (e.get("value"), "env")
        containers_env[(w["metadata"]["name"], c["name"])] = set(env)
        if known:
            for n, (_, src) in sorted(env.items()):
                if n not in known:
                    errors.append(f"{where}: {n} (from {src}) is read by no streamfleet binary (streamfleetctl --json config)")
        if cmd not in DEFAULT_METRICS:
            if c.get("ports"):
                errors.append(f"{where}: {cmd} serves no port")
            continue
        served = {}
        mv = env.get("METRICS_LISTEN", (None,))[0]
        mp = port_of(mv, "METRICS_LISTEN", where) if mv is not None else DEFAULT_METRICS[cmd]
        served[mp] = "METRICS_LISTEN"
        ip = None
        if cmd in API_LISTEN:
            var, default = API_LISTEN[cmd]
            iv = env.get(var, (None,))[0]
            ip = port_of(iv, var, where) if iv is not None else default
            served[ip] = var
        named = {}
        for p in c.get("ports", []):
            if p["containerPort"] not in served:
                errors.append(f"{where}: containerPort {p['containerPort']} is not served "
                              f"({', '.join(f'{v}={k}' for k, v in served.items())})")
            if p.get("name"):
                named[p["name"]] = p["containerPort"]
        if named.get("metrics") != mp:
            errors.append(f"{where}: port `metrics` must be {mp} (METRICS_LISTEN)")
        if ip is not None and named.get("http") != ip:
            errors.append(f"{where}: port `http` must be {ip} ({API_LISTEN[cmd][0]})")
        for pn in ("startupProbe", "readinessProbe", "livenessProbe"):
            if pn not in c:
                continue
            hg = c[pn].get("httpGet")
            if hg is None:
                errors.append(f"{where}: {pn} must be an httpGet of /healthz or /readyz")
                continue
            if hg.get("path") not in PROBE_PATHS:
                errors.append(f"{where}: {pn} path {hg.get('path')!r} is not /healthz or /readyz")
            port = named.get(hg.get("port"), hg.get("port"))
            if port not in served:
                errors.append(f"{where}: {pn} port {hg.get('port')!r} is not one the process serves ({sorted(served)})")
            # Ingest's API listener refuses connections past INGEST_MAX_CONNECTIONS (503 too_many_connections):
            # liveness there restarts a pod that is merely full of live streams. The metrics listener has no cap.
            if pn == "livenessProbe" and cmd == "streamfleet-ingest" and port == ip:
                errors.append(f"{where}: livenessProbe on the API port {ip} (INGEST_LISTEN), which refuses connections "
                              "past INGEST_MAX_CONNECTIONS: probe /healthz on `metrics` (METRICS_LISTEN)")
        pods.append((tmpl["metadata"].get("labels") or {}, named, served))
# Services: a named targetPort must be on some selected streamfleet pod, a number must be served.
for svc in (d for d in docs if d["kind"] == "Service"):
    sel = svc["spec"].get("selector") or {}
    matched = [p for p in pods if sel and all(p[0].get(k) == v for k, v in sel.items())]
    for sp in svc["spec"].get("ports", []) if matched else []:
        tp = sp.get("targetPort", sp["port"])
        if isinstance(tp, str) and not any(tp in p[1] for p in matched):
            errors.append(f"Service {svc['metadata']['name']}: targetPort {tp} is on none of its streamfleet pods")
        elif isinstance(tp, int) and not any(tp in p[2] for p in matched):
            errors.append(f"Service {svc['metadata']['name']}: targetPort {tp} is served by none of its streamfleet pods")
# KEDA's scalers read connection parameters (*FromEnv) from the target container's environment.
for so in (d for d in docs if d["kind"] == "ScaledObject"):
    target = so["spec"]["scaleTargetRef"]["name"]
    names = set().union(*[v for (w, _), v in containers_env.items() if w == target])
    for t in so["spec"].get("triggers", []):
        for k, v in (t.get("metadata") or {}).items():
            if k.endswith("FromEnv") and v not in names:
                errors.append(f"ScaledObject {so['metadata']['name']}: {k}={v} is not set in {target}'s containers")
if errors:
    sys.exit("   FAILED:\n     " + "\n     ".join(errors))
print(f"   ok: {len(pods)} serving processes: probes, ports, Service targetPorts, KEDA *FromEnv"
      + (f"; env names of {len(containers_env)} containers all read by the binaries" if known
         else "; env names NOT checked (no streamfleetctl)"))
EOF
      if [ -x "$STREAMFLEETCTL" ]; then
        "$PY" - "$TMP/$name.yaml" "$TMP/$name.examples.json" "$STREAMFLEETCTL" <<'EOF' || fail "the environment of a $name container does not load"
# The values each streamfleet container gets load as the processes load them (streamfleetctl check-config):
# a value they refuse makes the process exit at start, on every pod (INGEST_TOKENS=dev:... once did).
# Secrets out of band take the values of the overlay's *.example.yaml; what cannot be resolved here (a
# Secret with neither) is left unset.
import base64, json, os, re, subprocess, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
objs = {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("ConfigMap", "Secret")}
for n, example in json.load(open(sys.argv[2])).items():
    objs.setdefault(("Secret", n), {"stringData": example})
def values(kind, name):
    d = objs.get((kind, name)) or {}
    out = {k: str(v) for k, v in (d.get("stringData") or {}).items()}
    for k, v in (d.get("data") or {}).items():
        out[k] = base64.b64decode(v).decode(errors="replace") if kind == "Secret" else str(v)
    return out
errors, checked = [], 0
for w in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")):
    for c in w["spec"]["template"]["spec"]["containers"]:
        if not (c.get("command") or [""])[0].startswith("streamfleet"):
            continue
        env = {}
        for ef in c.get("envFrom", []):
            for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if ref in ef:
                    env.update({ef.get("prefix", "") + k: v for k, v in values(kind, ef[ref]["name"]).items()})
        for e in c.get("env", []):
            vf = e.get("valueFrom") or {}
            if "value" in e:
                # Kubernetes expands $(NAME) from the variables defined before this one; $$( is a literal $(.
                env[e["name"]] = re.sub(r"\$\$\(|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                                        lambda m: "$(" if m.group(1) is None else env.get(m.group(1), m.group(0)),
                                        str(e["value"]))
            elif "fieldRef" in vf:
                env[e["name"]] = "pod-0"
            else:
                kind, ref = ("ConfigMap", vf["configMapKeyRef"]) if "configMapKeyRef" in vf else ("Secret", vf.get("secretKeyRef"))
                v = values(kind, ref["name"]).get(ref["key"]) if ref else None
                if v is not None:
                    env[e["name"]] = v
        # A *_FILE variable names a file inside the pod (SCHEDULES_FILE is read at start): not here to read.
        env = {k: v for k, v in env.items() if not k.endswith("_FILE")}
        r = subprocess.run([sys.argv[3], "check-config"], env={"PATH": os.environ["PATH"], **env},
                           capture_output=True, text=True)
        checked += 1
        if r.returncode != 0:
            errors.append(f"{w['kind']} {w['metadata']['name']}/{c['name']}: {r.stderr.strip()}")
if errors:
    sys.exit("   FAILED:\n     " + "\n     ".join(errors))
print(f"   ok: the environment of {checked} streamfleet containers loads (streamfleetctl check-config)")
EOF
      fi
    fi
    if [ $yamllint_ok = 1 ]; then
      yamllint -s -d "$RENDER_YAMLLINT_CONFIG" "$TMP/$name.yaml" || fail "yamllint of the $name render"
      ok "yamllint $name render"
    fi
  done
else
  step "kubectl kustomize"
  skip "kubectl not installed"
fi

step "yamllint deploy/"
if [ $yamllint_ok = 1 ]; then
  mapfile -t yamls < <(find deploy -type f \( -name '*.yml' -o -name '*.yaml' \) | sort)
  yamllint -s -d "$YAMLLINT_CONFIG" "${yamls[@]}" || fail "yamllint deploy/"
  ok "${#yamls[@]} files"
else
  skip "yamllint not installed (Debian package: yamllint)"
fi

echo
echo "check-deploy: all checks passed"
