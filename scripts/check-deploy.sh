#!/usr/bin/env bash
# Offline checks of everything under deploy/ (no cluster, no Docker, no network needed):
#   1. promtool check rules  deploy/prometheus/alerts.yml
#   2. promtool test rules   deploy/prometheus/alerts_test.yml, and every alert has a firing
#      and a not-firing test case (needs python3-yaml; skipped without it)
#   3. promtool check config deploy/prometheus/prometheus.yml (Debian's promtool has no Kubernetes
#      service discovery compiled in; then a copy with kubernetes_sd_configs swapped for a static
#      target is checked instead, so relabeling, rule_files and alerting are still validated)
#   4. deploy/grafana/streamfleet-dashboard.json: valid JSON, dashboard structure (title,
#      schemaVersion, uid, unique panel ids, every panel has a query), and every PromQL `expr`
#      parses (Grafana variables substituted, wrapped as recording rules for promtool check rules)
#   5. every streamfleet_* metric the alerts and the dashboard use is registered in the sources
#   6. kubectl kustomize renders deploy/k8s/overlays/{dev,prod}; structural checks of the render
#      (probes, resources, security context, CONSUMER_NAME from the pod name; needs python3-yaml)
#   7. yamllint (if installed; Debian package `yamllint`) on the renders and on deploy/**/*.yml|yaml
# Exits non-zero on the first failure. Run from anywhere: it cds to the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

PROM=deploy/prometheus
DASH=deploy/grafana/streamfleet-dashboard.json
OVERLAYS=(deploy/k8s/overlays/dev deploy/k8s/overlays/prod)
YAMLLINT_CONFIG='{extends: default, rules: {document-start: disable, indentation: {indent-sequences: whatever}, line-length: {max: 140}, truthy: disable}}'

TMP=$(mktemp -d /tmp/streamfleet-check-deploy.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

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
  grep -rqF "\"$m\"" common ingest compactor queue-worker tools 2>/dev/null || unknown+=("$m")
done
[ ${#unknown[@]} -eq 0 ] || fail "not registered anywhere in the sources: ${unknown[*]}"
ok "$(echo "$used" | wc -l) metric names"

# ---------------------------------------------------------------------------------------------
yamllint_ok=0
if have yamllint; then yamllint_ok=1; fi

if have kubectl; then
  for o in "${OVERLAYS[@]}"; do
    name=$(basename "$o")
    step "kubectl kustomize $o"
    kubectl kustomize "$o" >"$TMP/$name.yaml" || fail "kustomize build of $o"
    ok "$(grep -c '^kind:' "$TMP/$name.yaml") objects: $(grep '^kind:' "$TMP/$name.yaml" | awk '{print $2}' | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}' | sed 's/, $//')"
    if have_pyyaml; then
      "$PY" - "$TMP/$name.yaml" "$name" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
overlay = sys.argv[2]
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
    if spec.get("terminationGracePeriodSeconds") != 30:
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
        if "configMapRef" not in refs or "secretRef" not in refs:
            errors.append(f"{name}/{c['name']}: envFrom ConfigMap and Secret")
names = {(d["kind"], d["metadata"]["name"]) for d in docs}
# Every ConfigMap/Secret a workload references must be in the render (prod: streamfleet-secrets is external).
external = {("Secret", "streamfleet-secrets")} if overlay == "prod" else set()
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
    for t in so["spec"]["triggers"]:
        if t["type"] != "redis-streams" or "lagCount" not in t["metadata"]:
            errors.append(f"ScaledObject {so['metadata']['name']}: redis-streams trigger with lagCount")
triggers = {(t["metadata"]["stream"], t["metadata"]["consumerGroup"]) for so in by_kind.get("ScaledObject", []) for t in so["spec"]["triggers"]}
for want in (("streamfleet:chunks:0", "compactor"), ("streamfleet:queue:default", "workers")):
    if want not in triggers:
        errors.append(f"no KEDA trigger on {want[0]} group {want[1]}")
if overlay == "dev":
    for sts in ("redis", "postgresql"):
        if ("StatefulSet", sts) not in names:
            errors.append(f"dev: StatefulSet {sts} missing")
if errors:
    sys.exit("   FAILED:\n     " + "\n     ".join(errors))
print(f"   ok: structure of {len(docs)} objects")
EOF
    else
      skip "structural checks (python3-yaml not available)"
    fi
    if [ $yamllint_ok = 1 ]; then
      yamllint -s -d "$YAMLLINT_CONFIG" "$TMP/$name.yaml" || fail "yamllint of the $name render"
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
