#!/usr/bin/env node
// Offline schema validation of rendered Kubernetes manifests (multi-document YAML), e.g.
//   kubectl kustomize deploy/k8s/overlays/prod | node tools/k8s-validate/validate.mjs -
//   node tools/k8s-validate/validate.mjs /tmp/prod.yaml /tmp/dev.yaml
//
// Every object is validated with the model class of its apiVersion/kind:
//   core and built-in API groups  kubernetes-models                        (Kubernetes 1.3x schemas)
//   keda.sh                       @kubernetes-models/keda                  (ScaledObject, TriggerAuthentication, ...)
//   monitoring.coreos.com         @kubernetes-models/prometheus-operator   (PodMonitor, PrometheusRule, ...)
// An apiVersion/kind without a model, a YAML syntax error, or a document that is not a mapping
// with apiVersion/kind fails. Exit status: 0 all valid, 1 invalid objects, 2 usage/read errors.
//
// Limitation: the models' JSON schemas come from the OpenAPI documents, which do not forbid
// unknown fields, so a misspelled optional field passes here (the API server's strict field
// validation, `kubectl apply --dry-run=server`, catches those). Types, enums, required fields and
// formats are checked.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// API group -> module prefix; "<prefix>/<group>/<version>" (or "<prefix>/<version>" for the
// core group) exports one class per kind.
const CRD_PACKAGES = {
  "keda.sh": "@kubernetes-models/keda",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

const moduleCache = new Map();
async function modelModule(apiVersion) {
  if (moduleCache.has(apiVersion)) return moduleCache.get(apiVersion);
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const pkg = CRD_PACKAGES[group] ?? "kubernetes-models";
  let mod = null;
  // Only built-in groups (no dot, or *.k8s.io) come from kubernetes-models; any other CRD group
  // must be listed in CRD_PACKAGES.
  if (CRD_PACKAGES[group] || group === "" || !group.includes(".") || group.endsWith(".k8s.io")) {
    try {
      mod = await import(`${pkg}/${apiVersion}`);
    } catch {
      mod = null;
    }
  }
  moduleCache.set(apiVersion, mod);
  return mod;
}

// kustomize's secretGenerator wraps long base64 values over several lines; the API server's
// base64 decoder skips line breaks, the models' "byte" format does not: drop them first.
function normalizeBase64(obj) {
  const fields = obj.apiVersion === "v1" && obj.kind === "Secret" ? ["data"]
    : obj.apiVersion === "v1" && obj.kind === "ConfigMap" ? ["binaryData"] : [];
  for (const f of fields) {
    const m = obj[f];
    if (!m || typeof m !== "object") continue;
    for (const [k, v] of Object.entries(m)) {
      if (typeof v === "string") m[k] = v.replace(/[\r\n]/g, "");
    }
  }
}

function describe(obj) {
  const md = (obj && obj.metadata) || {};
  return `${obj.kind} ${md.namespace ? md.namespace + "/" : ""}${md.name ?? "(no name)"}`;
}

function formatError(err) {
  // @kubernetes-models/validate throws a ValidationError whose message lists every ajv error
  // ("data/spec/replicas must be integer, data/spec/... must have required property ...").
  const msg = String(err && err.message ? err.message : err);
  return msg.split(/,\s*(?=data[/ ])/).map((s) => s.trim());
}

async function validateText(text, source) {
  const results = { ok: 0, errors: [] };
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) {
    // parseAllDocuments returns an EmptyStream for empty input.
    return results;
  }
  for (const [i, doc] of docs.entries()) {
    const where = `${source} document ${i + 1}`;
    if (doc.errors.length) {
      results.errors.push(`${where}: YAML error: ${doc.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const obj = doc.toJS({ maxAliasCount: -1 });
    if (obj === null || obj === undefined) continue; // empty document (e.g. trailing ---)
    if (typeof obj !== "object" || Array.isArray(obj)) {
      results.errors.push(`${where}: not a mapping`);
      continue;
    }
    if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
      results.errors.push(`${where}: missing apiVersion or kind`);
      continue;
    }
    normalizeBase64(obj);
    const mod = await modelModule(obj.apiVersion);
    const Cls = mod && mod[obj.kind];
    if (typeof Cls !== "function" || typeof Cls.prototype?.validate !== "function") {
      results.errors.push(`${where}: ${describe(obj)}: no schema for ${obj.apiVersion} ${obj.kind} (unknown kind)`);
      continue;
    }
    try {
      new Cls(obj).validate();
      results.ok++;
    } catch (err) {
      for (const line of formatError(err)) {
        results.errors.push(`${where}: ${obj.apiVersion} ${describe(obj)}: ${line}`);
      }
    }
  }
  return results;
}

async function main(argv) {
  const quiet = argv.includes("-q") || argv.includes("--quiet");
  const files = argv.filter((a) => a !== "-q" && a !== "--quiet");
  if (files.length === 0 || files.includes("-h") || files.includes("--help")) {
    console.error("usage: validate.mjs [-q] FILE.yaml... (use - for standard input)");
    return 2;
  }
  let failed = 0;
  for (const f of files) {
    let text;
    try {
      text = readFileSync(f === "-" ? 0 : f, "utf8");
    } catch (err) {
      console.error(`k8s-validate: cannot read ${f}: ${err.message}`);
      return 2;
    }
    const name = f === "-" ? "<stdin>" : f;
    const { ok, errors } = await validateText(text, name);
    if (errors.length) {
      failed++;
      console.error(`k8s-validate: ${name}: ${errors.length} error(s), ${ok} valid object(s)`);
      for (const e of errors) console.error(`  INVALID ${e}`);
    } else if (ok === 0) {
      failed++;
      console.error(`k8s-validate: ${name}: no objects found`);
    } else if (!quiet) {
      console.log(`k8s-validate: ${name}: ${ok} object(s) valid`);
    }
  }
  return failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
