// streamfleet admin UI: a small single-page app over the JSON API (/api/...). Every page has a real URL
// (History API), so reload and the back button work; the current page's data is re-fetched every few
// seconds without a full reload. Everything from the server is inserted as text (never as HTML).
"use strict";

const REFRESH_MS = 3000;
let csrf = "";
let timer = null;
let renderSeq = 0;

// h("tag", {attr: value, onclick: fn}, child, ...): a DOM element; strings become text nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else if (k === "style") el.style.cssText = v;  // CSSOM: allowed by the CSP, unlike a style attribute
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const fmt = (n, d = 0) => (n === null || n === undefined ? "–" : Number(n).toFixed(d));
const ago = (s) => (s >= 3600 ? fmt(s / 3600, 1) + " h" : s >= 60 ? fmt(s / 60, 1) + " min" : fmt(s, 1) + " s");
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z" : "–");
// A header row; a name ending in "#" is a numeric column (right-aligned like its cells).
function heads(names) {
  return h("tr", {}, names.map((t) => (t.endsWith("#") ? h("th", { class: "num" }, t.slice(0, -1)) : h("th", {}, t))));
}
function link(href, text, attrs) { return h("a", Object.assign({ href, "data-link": "1" }, attrs || {}), text); }

async function api(path, body) {
  const opts = { credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.headers["X-CSRF-Token"] = csrf;
    opts.body = JSON.stringify(body);
  }
  const r = await fetch("/api/" + path, opts);
  if (r.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new Error("not logged in");
  }
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((j.error || r.status) + ": " + (j.detail || ""));
  return j;
}

function flash(text, isError) {
  const f = document.getElementById("flash");
  f.replaceChildren(h("div", { class: isError ? "error" : "", "data-testid": "flash" }, text));
  setTimeout(() => { if (f.firstChild && f.firstChild.textContent === text) f.replaceChildren(); }, 6000);
}

// Runs an action, reports it, refreshes the page's data.
async function act(label, path, body) {
  try {
    const r = await api(path, body);
    flash(label + ": " + JSON.stringify(r));
    refresh();
    return r;
  } catch (e) {
    flash(label + " failed: " + e.message, true);
  }
}

// ---- pages: each has load() -> data and view(data) -> element; `static` parts (forms) are built once.

// The task lists (GET /api/tasks?state=...): what the time and detail columns mean in each, and which
// tasks can still be cancelled (those that have not started).
const TASK_TABS = [
  { state: "scheduled", label: "Scheduled", at: "runs at", detail: "", cancel: true,
    help: "Delayed tasks, earliest first. A cancelled task stays listed (marked cancelled) until it is due; then the worker skips it." },
  { state: "retrying", label: "Retries", at: "next attempt", detail: "last error", cancel: true,
    help: "Failed attempts waiting to run again, earliest first." },
  { state: "running", label: "Busy", at: "since", detail: "consumer", cancel: false,
    help: "Tasks a worker holds (running, or read ahead and about to run), oldest first." },
  { state: "dead", label: "Dead", at: "dead since", detail: "reason", cancel: false,
    help: "Tasks that failed for good, oldest first; requeue or delete them on the dead letters page." },
  { state: "succeeded", label: "Succeeded", at: "finished", detail: "result", cancel: false,
    help: "Recent results (kept TASK_RESULT_TTL): a scan of every record, for a quick look." },
];

function chart(title, samples, series) {
  const w = 400, hgt = 100;
  const max = Math.max(1e-9, ...samples.flatMap((s) => series.map((x) => s[x.key] || 0)));
  const lines = series.map((x) => {
    const pts = samples.map((s, i) => {
      const px = samples.length > 1 ? (i * w) / (samples.length - 1) : 0;
      return px.toFixed(1) + "," + (hgt - ((s[x.key] || 0) / max) * (hgt - 4) - 2).toFixed(1);
    });
    const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    pl.setAttribute("points", pts.join(" "));
    pl.setAttribute("stroke", x.color);
    return pl;
  });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.append(...lines);
  const last = samples[samples.length - 1] || {};
  return h("div", { class: "card chart" },
    h("div", { class: "label" }, title, h("span", { class: "muted" }, "  (max " + fmt(max, 1) + ")")), svg,
    h("div", { class: "legend" }, series.map((x) =>
      h("span", { style: "color:" + x.color }, "■ " + x.label + " " + fmt(last[x.key], x.digits || 1)))));
}

const pages = {
  overview: {
    title: "Overview",
    load: () => api("overview"),
    view(d) {
      const r = d.redis, b = d.buffers, s = d.samples;
      const minutes = ((s.length * d.sample_interval_ms) / 60000).toFixed(1);
      return h("div", {},
        h("div", { class: "cards" },
          card("Redis memory", r.used_memory_human + (r.maxmemory ? " / " + fmt(r.maxmemory / 1048576) + " MiB" : ""), "redis-memory"),
          card("Redis hit rate", r.hit_rate === null ? "–" : fmt(r.hit_rate * 100, 1) + " %", "hit-rate"),
          card("Evicted keys", r.evicted_keys, "evictions"),
          card("Live buffers", b.count, "buffer-count"),
          card("Buffered chunks", b.total_chunks),
          card("Over LLEN " + b.threshold, b.over_threshold.length, "over-threshold")),
        h("h2", {}, "Last " + minutes + " minutes"),
        s.length < 2 ? h("p", { class: "muted" }, "collecting samples…") : h("div", { class: "charts" },
          // Chunk-stream entries, not chunks: ingest writes a request's chunks as one entry (docs/ARCHITECTURE.md).
          chart("Chunk entries / s", s, [{ key: "chunks_in_per_s", label: "in", color: "#2f6fde" }, { key: "chunks_out_per_s", label: "read by compactors", color: "#1f8a4c" }]),
          chart("Tasks / s", s, [{ key: "tasks_in_per_s", label: "enqueued", color: "#2f6fde" }, { key: "tasks_out_per_s", label: "started", color: "#1f8a4c" }]),
          chart("Latency", s, [{ key: "oldest_pending_s", label: "oldest pending (s)", color: "#c2372b" }, { key: "redis_rtt_ms", label: "Redis RTT (ms)", color: "#8a4b00", digits: 2 }]),
          chart("Backlog", s, [{ key: "chunk_lag", label: "chunk entries lag", color: "#2f6fde", digits: 0 }, { key: "task_lag", label: "task lag", color: "#8a4b00", digits: 0 }])),
        h("h2", {}, "Live generations"),
        b.live.length === 0 ? h("p", { class: "muted" }, "no generation buffered") : h("div", { class: "scroll" },
          h("table", { "data-testid": "live-generations" },
            h("tr", {}, h("th", {}, "org"), h("th", {}, "scenario"), h("th", {}, "generation"), h("th", {}, "progress"),
              h("th", { class: "num" }, "LLEN"), h("th", { class: "num" }, "bytes"), h("th", {}, "last chunk")),
            b.live.map((g) => h("tr", { "data-generation": g.generation_id },
              h("td", {}, g.organization_id), h("td", {}, g.scenario_id || "–"),
              h("td", {}, link(`/generations?org=${g.organization_id}&gen=${g.generation_id}&scenario=${g.scenario_id || ""}`, String(g.generation_id))),
              h("td", {}, progress(g)),
              h("td", { class: "num" }, g.llen), h("td", { class: "num" }, g.received_bytes), h("td", {}, /^\d{12,}$/.test(g.last_chunk_at || "") ? when(Number(g.last_chunk_at)) : g.last_chunk_at || "–"))))),
        b.over_threshold.length ? h("div", {}, h("h2", { class: "error" }, "Buffers over the LLEN threshold"),
          h("table", {}, b.over_threshold.map((o) => h("tr", {}, h("td", {}, h("code", {}, o.key)), h("td", { class: "num" }, o.llen))))) : null);
    },
  },

  streams: {
    title: "Streams and groups",
    load: () => api("streams"),
    view(d) {
      const rows = [];
      for (const s of d) {
        if (s.groups.length === 0) rows.push(h("tr", {}, h("td", {}, h("code", {}, s.stream)), h("td", { class: "num" }, s.length), h("td", { colspan: 6, class: "muted" }, "no group")));
        for (const g of s.groups) {
          rows.push(h("tr", { "data-stream": s.stream },
            h("td", {}, h("code", {}, s.stream)), h("td", { class: "num" }, s.length), h("td", {}, g.group),
            h("td", { class: "num" }, g.pending), h("td", { class: "num" }, g.lag < 0 ? "?" : g.lag),
            h("td", { class: "num" }, ago(g.oldest_pending_seconds)),
            h("td", {}, g.consumer_list.map((c) => h("div", {}, c.name + ": " + c.pending + " pending, idle " + ago(c.idle_seconds)))),
            h("td", {}, g.pending > 0 ? link(`/streams/pending?stream=${encodeURIComponent(s.stream)}&group=${encodeURIComponent(g.group)}`, "pending entries") : "")));
        }
      }
      return h("div", { class: "scroll" }, h("table", { "data-testid": "streams" },
        heads(["stream", "length#", "group", "pending#", "lag#", "oldest pending#", "consumers (idle)", ""]), rows));
    },
  },

  pending: {
    title: "Pending entries",
    load() {
      const q = new URLSearchParams(location.search);
      return api(`streams/pending?stream=${encodeURIComponent(q.get("stream") || "")}&group=${encodeURIComponent(q.get("group") || "")}`);
    },
    view(d) {
      const q = new URLSearchParams(location.search);
      const stream = q.get("stream"), group = q.get("group");
      return h("div", {},
        h("p", {}, h("code", {}, stream), " / group ", h("b", {}, group), ". ",
          h("span", { class: "muted" }, "Release hands an entry back to the fleet now (any consumer's next claim takes it); claim moves it to the consumer you name.")),
        d.length === 0 ? h("p", { class: "muted" }, "nothing pending") : h("table", {},
          heads(["id", "consumer", "idle", "deliveries#", ""]),
          d.map((p) => h("tr", {}, h("td", {}, h("code", {}, p.id)), h("td", {}, p.consumer), h("td", {}, ago(p.idle_seconds)),
            h("td", { class: "num" }, p.times_delivered),
            h("td", {},
              h("button", { onclick: () => act("release " + p.id, "streams/release", { stream, group, id: p.id }) }, "release"), " ",
              h("button", { onclick: () => { const c = prompt("claim for which consumer?", "admin"); if (c) act("claim " + p.id, "streams/claim", { stream, group, id: p.id, consumer: c }); } }, "claim…"))))));
    },
  },

  queues: {
    title: "Queues",
    load: () => api("queues"),
    form() {
      const f = h("form", { class: "inline", "data-testid": "enqueue-form" },
        h("label", {}, "type", h("input", { name: "type", required: true, placeholder: "noop" })),
        h("label", {}, "queue", h("input", { name: "queue", value: "default" })),
        h("label", {}, "payload (JSON)", h("input", { name: "payload", value: "{}", size: 40 })),
        h("label", {}, "delay (s)", h("input", { name: "delay_seconds", type: "number", min: 0, value: 0, style: "width:6em" })),
        h("button", { class: "primary", type: "submit" }, "Enqueue"));
      f.addEventListener("submit", async (e) => {
        e.preventDefault();
        const v = Object.fromEntries(new FormData(f));
        const r = await act("enqueue", "tasks/enqueue", { type: v.type, queue: v.queue, payload: v.payload, delay_seconds: Number(v.delay_seconds || 0) });
        if (r && r.id) flash("enqueued task " + r.id);
      });
      return h("div", {}, h("h2", {}, "Enqueue a task"), f);
    },
    view(d) {
      return h("div", {},
        h("table", { "data-testid": "queues" },
          heads(["queue", "weight#", "state", "waiting#", "active#", "scheduled#", "dead#", "consumers#", ""]),
          d.queues.map((q) => h("tr", { "data-queue": q.queue },
            h("td", {}, h("b", {}, q.queue)), h("td", { class: "num" }, q.weight),
            h("td", {}, h("span", { class: "badge " + (q.paused ? "paused" : "running"), "data-testid": "queue-state-" + q.queue }, q.paused ? "paused" : "running")),
            h("td", { class: "num" }, q.waiting), h("td", { class: "num" }, q.active), h("td", { class: "num" }, q.scheduled),
            h("td", { class: "num" }, q.dead), h("td", { class: "num" }, q.consumers),
            h("td", {}, q.paused
              ? h("button", { "data-testid": "resume-" + q.queue, onclick: () => act("resume " + q.queue, "queues/resume", { queue: q.queue }) }, "resume")
              : h("button", { "data-testid": "pause-" + q.queue, onclick: () => act("pause " + q.queue, "queues/pause", { queue: q.queue }) }, "pause"))))),
        h("h2", {}, "Scheduled and delayed tasks (" + d.scheduled_total + ")"),
        d.scheduled.length === 0 ? h("p", { class: "muted" }, "none") : h("table", {},
          heads(["task", "type", "queue", "attempt#", "runs at", "last error"]),
          d.scheduled.map((t) => h("tr", {}, h("td", {}, link("/tasks/" + encodeURIComponent(t.id), t.id)), h("td", {}, t.type), h("td", {}, t.queue),
            h("td", { class: "num" }, t.attempt), h("td", {}, when(t.scheduled_for_ms)), h("td", {}, t.errors.length ? t.errors[t.errors.length - 1] : "")))));
    },
  },

  task: {
    title: "Task",
    load: () => api("tasks/" + encodeURIComponent(decodeURIComponent(location.pathname.slice(7)))),
    view(d) {
      const e = d.envelope;
      return h("div", { "data-testid": "task-detail" },
        h("h2", {}, "Status"),
        h("table", {}, Object.entries(d.status).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", { "data-field": k }, v)))),
        h("h2", {}, "Envelope " + (d.found_in ? "(found in " + d.found_in + ")" : "(not found in queues, scheduled set or dead letters)")),
        e ? h("div", {},
          h("p", {}, "type ", h("b", {}, e.type), ", queue ", h("b", {}, e.queue), ", attempt ", h("b", {}, e.attempt),
            ", enqueued ", when(e.enqueued_at_ms)),
          h("h2", {}, "Payload"), h("pre", {}, prettyJson(e.payload)),
          h("h2", {}, "Error history"), e.errors.length ? h("ol", {}, e.errors.map((x) => h("li", {}, x))) : h("p", { class: "muted" }, "no errors")) : null);
    },
  },

  // Sidekiq Web's Scheduled / Retries / Busy / Dead pages (plus recent results): one page of a list at a time,
  // in the URL (/tasks?state=&queue=&type=&cursor=), so a page survives reload and the back button.
  tasks: {
    title: "Tasks",
    form() {
      const q = new URLSearchParams(location.search);
      const state = TASK_TABS.some((t) => t.state === q.get("state")) ? q.get("state") : "scheduled";
      const tabs = h("nav", { class: "tabs", "data-testid": "task-tabs" }, TASK_TABS.map((t) => {
        const p = new URLSearchParams({ state: t.state });
        for (const k of ["queue", "type"]) if (q.get(k)) p.set(k, q.get(k));
        return link("/tasks?" + p.toString(), t.label, { class: t.state === state ? "active" : null, "data-tab": t.state });
      }));
      const f = h("form", { class: "inline", "data-testid": "task-filter" },
        h("label", {}, "queue", h("input", { name: "queue", value: q.get("queue") || "", placeholder: "every queue" })),
        h("label", {}, "type", h("input", { name: "type", value: q.get("type") || "", placeholder: "every type" })),
        h("button", { class: "primary", type: "submit" }, "Filter"));
      f.addEventListener("submit", (e) => {
        e.preventDefault();
        const p = new URLSearchParams({ state });
        for (const [k, v] of new FormData(f)) if (String(v).trim() !== "") p.set(k, String(v).trim());
        navigate("/tasks?" + p.toString());
      });
      return h("div", {}, tabs, f);
    },
    load() {
      const q = new URLSearchParams(location.search);
      const p = new URLSearchParams({ state: q.get("state") || "scheduled" });
      for (const k of ["queue", "type", "limit", "cursor"]) if (q.get(k)) p.set(k, q.get(k));
      return api("tasks?" + p.toString());
    },
    view(d) {
      const q = new URLSearchParams(location.search);
      const tab = TASK_TABS.find((t) => t.state === d.state) || TASK_TABS[0];
      const pageNo = Number(q.get("page") || 1);
      const nav = (cursor, page) => {
        const p = new URLSearchParams(q);
        if (cursor) { p.set("cursor", cursor); p.set("page", String(page)); } else { p.delete("cursor"); p.delete("page"); }
        return "/tasks?" + p.toString();
      };
      const cancel = (t) => confirm("Cancel task " + t.id + " (" + t.type + ")? It will not run.") &&
        act("cancel " + t.id, "tasks/cancel", { id: t.id });
      const pager = h("p", { class: "pager" },
        q.get("cursor") ? link(nav("", 1), "« first page", { "data-testid": "tasks-first" }) : null,
        h("span", { class: "muted" }, " page " + pageNo + " "),
        d.next_cursor ? link(nav(d.next_cursor, pageNo + 1), "next page »", { "data-testid": "tasks-next" }) : null);
      if (d.tasks.length === 0) {
        return h("div", {}, h("p", { class: "muted", "data-testid": "no-tasks" },
          "no " + tab.label.toLowerCase() + " tasks" + (q.get("cursor") ? " after this page" : "")), q.get("cursor") ? pager : null);
      }
      return h("div", {},
        h("p", { class: "muted" }, tab.help),
        h("div", { class: "scroll" }, h("table", { "data-testid": "tasks" },
          heads(["task", "type", "queue", "attempt#", tab.at, tab.detail, ""]),
          d.tasks.map((t) => h("tr", { "data-task": t.id },
            h("td", {}, link("/tasks/" + encodeURIComponent(t.id), t.id)), h("td", {}, t.type), h("td", {}, t.queue),
            h("td", { class: "num" }, t.attempt), h("td", {}, when(t.at_ms)),
            h("td", {}, t.detail, d.state === "running" && t.entry_id ? h("div", { class: "muted" }, "entry ", h("code", {}, t.entry_id)) : null),
            h("td", {},
              tab.cancel && t.record_state === "cancelled" ? h("span", { class: "badge paused", "data-testid": "cancelled-" + t.id }, "cancelled") : null,
              tab.cancel && t.record_state !== "cancelled" ? h("button", { class: "danger", "data-testid": "cancel-" + t.id, onclick: () => cancel(t) }, "cancel") : null,
              d.state === "dead" && t.entry_id ? link("/dead-letters?id=" + t.entry_id, "dead letter") : null))))),
        pager);
    },
  },

  "dead-letters": {
    title: "Dead letters",
    load: () => api("dead-letters"),
    view(d) {
      const selected = new URLSearchParams(location.search).get("id");
      return h("div", {},
        h("p", {},
          h("button", { "data-testid": "requeue-all", disabled: d.length === 0, onclick: () => confirm("Requeue all " + d.length + " dead letters?") && act("requeue all", "dead-letters/requeue", { all: true }) }, "requeue all"), " ",
          h("button", { class: "danger", disabled: d.length === 0, onclick: () => confirm("Delete all " + d.length + " dead letters?") && act("delete all", "dead-letters/delete", { all: true }) }, "delete all")),
        d.length === 0 ? h("p", { class: "muted", "data-testid": "no-dead-letters" }, "no dead letters") : h("div", { class: "scroll" }, h("table", { "data-testid": "dead-letters" },
          heads(["kind", "id", "source", "reason", "deliveries#", "what", ""]),
          d.map((x) => [
            h("tr", { "data-dead-letter": x.id },
              h("td", {}, x.kind), h("td", {}, link("/dead-letters?id=" + x.id, x.id)), h("td", {}, h("code", {}, x.source_stream || "")),
              h("td", {}, x.reason || ""), h("td", { class: "num" }, x.times_delivered || ""),
              h("td", {}, x.task ? link("/tasks/" + encodeURIComponent(x.task.id), x.task.type + " " + x.task.id)
                : x.chunk ? `org ${x.chunk.organization_id} gen ${x.chunk.generation_id} seq ${x.chunk.seq}` : ""),
              h("td", {},
                h("button", { "data-testid": "requeue-" + x.id, onclick: () => act("requeue " + x.id, "dead-letters/requeue", { id: x.id }) }, "requeue"), " ",
                h("button", { class: "danger", onclick: () => confirm("Delete dead letter " + x.id + "?") && act("delete " + x.id, "dead-letters/delete", { id: x.id }) }, "delete"))),
            selected === x.id ? h("tr", { class: "sub" }, h("td", { colspan: 7 }, h("pre", { "data-testid": "dead-letter-detail" }, JSON.stringify(x, null, 2)))) : null,
          ]))));
    },
  },

  generations: {
    title: "Generations",
    form() {
      const q = new URLSearchParams(location.search);
      const f = h("form", { class: "inline", "data-testid": "generation-search" },
        h("label", {}, "organization", h("input", { name: "org", type: "number", min: 1, required: true, value: q.get("org") || "" })),
        h("label", {}, "generation", h("input", { name: "gen", type: "number", min: 1, required: true, value: q.get("gen") || "" })),
        h("label", {}, "scenario (optional)", h("input", { name: "scenario", type: "number", min: 1, value: q.get("scenario") || "" })),
        h("button", { class: "primary", type: "submit" }, "Show"));
      f.addEventListener("submit", (e) => {
        e.preventDefault();
        const v = new URLSearchParams(Object.entries(Object.fromEntries(new FormData(f))).filter(([, x]) => x !== ""));
        navigate("/generations?" + v.toString());
      });
      return f;
    },
    load() {
      const q = new URLSearchParams(location.search);
      if (!q.get("org") || !q.get("gen")) return Promise.resolve(null);
      return api(`generations?org=${q.get("org")}&gen=${q.get("gen")}&scenario=${q.get("scenario") || ""}`);
    },
    view(d) {
      if (!d) return h("p", { class: "muted" }, "search by organization and generation id");
      const compact = (del) => act("compact now", "generations/compact", { org: d.organization_id, gen: d.generation_id, scenario: d.scenario_id, delete_buffer: del });
      return h("div", { "data-testid": "generation-detail" },
        h("h2", {}, "Redis buffer"),
        d.buffer.length === 0 ? h("p", { class: "muted" }, "no buffer keys (never started, expired, or deleted after compaction)") :
          h("table", {}, h("tr", {}, ["key", "type", "TTL", "LLEN / fields"].map((t) => h("th", {}, t))),
            d.buffer.map((k) => h("tr", {}, h("td", {}, h("code", {}, k.key)), h("td", {}, k.type), h("td", { class: "num" }, k.ttl),
              h("td", {}, k.llen !== undefined ? String(k.llen) : k.hash ? h("pre", {}, JSON.stringify(k.hash, null, 2)) : "")))),
        h("p", {},
          h("button", { class: "primary", "data-testid": "compact-now", disabled: d.buffer.length === 0, onclick: () => compact(false) }, "compact now"), " ",
          h("button", { disabled: d.buffer.length === 0, onclick: () => confirm("Compact and delete the Redis buffer?") && compact(true) }, "compact and delete buffer")),
        h("h2", {}, "Persisted row"),
        d.row ? h("div", {},
          h("p", {}, "chunk_count ", h("b", { "data-testid": "row-chunk-count" }, d.row.chunk_count), ", compacted at ", d.row.compacted_at || "–",
            " by ", d.row.compacted_by || "–", ", ",
            d.row.text_in === "store" ? h("span", { "data-testid": "row-text-in-store" }, "text in the object store: ", h("code", {}, d.row.artifact_url))
              : [fmt(d.row.compacted_bytes), " bytes compacted"]),
          h("pre", {}, JSON.stringify(d.row.metadata, null, 2)),
          d.row.llm_response_preview ? h("div", {}, h("h2", {}, "llm_response (first 2000 characters)"), h("pre", {}, d.row.llm_response_preview)) : null)
          : h("p", { class: "muted" }, d.row_error ? "database: " + d.row_error : "no row yet"));
    },
  },
};

function card(label, value, testid) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value", "data-testid": testid }, value));
}
function progress(g) {
  if (g.state === "finalizing") return h("span", { class: "badge" }, "finalizing");
  if (g.percent === null) return h("span", { class: "muted", "data-testid": "progress-" + g.generation_id }, g.received_chunks + " chunks (total unknown)");
  return h("div", { class: "bar", title: g.received_chunks + " / " + g.total_chunks, "data-testid": "progress-" + g.generation_id },
    h("div", { style: "width:" + g.percent + "%" }), h("span", {}, g.received_chunks + " / " + g.total_chunks + " (" + g.percent + "%)"));
}
function prettyJson(s) { try { return JSON.stringify(JSON.parse(s), null, 2); } catch (e) { return s; } }

// ---- routing

function route() {
  const p = location.pathname;
  if (p === "/") return "overview";
  if (p === "/streams") return "streams";
  if (p === "/streams/pending") return "pending";
  if (p === "/queues") return "queues";
  if (p === "/tasks") return "tasks";
  if (p.startsWith("/tasks/")) return "task";
  if (p === "/dead-letters") return "dead-letters";
  if (p === "/generations") return "generations";
  return null;
}

function navigate(url) {
  history.pushState(null, "", url);
  render();
}

let dataSlot = null;
async function refresh() {
  const name = route();
  const seq = renderSeq;
  if (!name || !dataSlot) return;
  try {
    const d = await pages[name].load();
    if (seq !== renderSeq) return;  // the user moved on meanwhile
    dataSlot.replaceChildren(pages[name].view(d));
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (seq !== renderSeq) return;
    document.getElementById("status").textContent = "error: " + e.message;
  }
}

function render() {
  renderSeq++;
  const name = route();
  const main = document.getElementById("page");
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.dataset.nav === name || (name === "pending" && a.dataset.nav === "streams") || (name === "task" && a.dataset.nav === "tasks"));
  }
  if (!name) {
    main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, link("/", "back to the overview")));
    return;
  }
  const page = pages[name];
  document.title = page.title + " · streamfleet admin";
  dataSlot = h("div", { "data-testid": "page-" + name }, h("p", { class: "muted" }, "loading…"));
  main.replaceChildren(...[h("h1", {}, page.title), page.form ? page.form() : null, dataSlot].filter(Boolean));
  refresh();
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a");
  if (!a || a.origin !== location.origin || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
});
window.addEventListener("popstate", render);

async function start() {
  try {
    csrf = (await api("session")).csrf;
  } catch (e) {
    return;
  }
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
    location.href = "/login";
  });
  render();
  timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}
start();
