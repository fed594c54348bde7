// The browser side of browser_test.sh: this script plays the app's backend (it signs the stream link with
// the organization's token, as docs/live.md shows, and serves the page from its own origin) and the
// producer (it posts the chunks), and drives Chromium. The page is plain EventSource code, as an app would
// write it.
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";

// playwright-core from the admin UI harness (NODE_PATH): one pinned copy for every browser test.
const require = createRequire(import.meta.url);
const { chromium } = require(process.env.NODE_PATH + "/playwright-core");

const { INGEST_URL, PAGE_PORT, TOKEN, SHOTS, CHROMIUM } = process.env;
const ORG = 3;
const GEN = 930001;
const CHUNKS = 40;

function check(cond, msg) {
  if (!cond) throw new Error("check failed: " + msg);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The backend's signing (docs/live.md, "Signed links"): HMAC-SHA256(token, "GET\n" + path + "\n" + exp).
function signedLink(path, token, ttlSeconds) {
  const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
  const sig = createHmac("sha256", token).update(`GET\n${path}\n${exp}`).digest("hex");
  return `${path}?exp=${exp}&sig=${sig}`;
}

const streamUrl = INGEST_URL + signedLink(`/v1/orgs/${ORG}/generations/${GEN}/stream`, TOKEN, 300);
const page_html = `<!doctype html>
<meta charset="utf-8"><title>live generation</title>
<style>body{font:15px system-ui;margin:24px;max-width:760px} pre{white-space:pre-wrap;background:#f4f4f4;padding:12px}
#state{font-weight:600}</style>
<h1>Generation ${GEN}</h1>
<p>state: <span id="state">connecting</span> · connections: <span id="opens">0</span> · chunks: <span id="count">0</span></p>
<pre id="text"></pre>
<script>
  const text = document.getElementById("text");
  let opens = 0, count = 0, body = "";
  const es = new EventSource(${JSON.stringify(streamUrl)});
  es.onopen = () => { opens++; document.getElementById("opens").textContent = opens;
                      document.getElementById("state").textContent = "live"; };
  es.addEventListener("chunk", (e) => {
    const c = JSON.parse(e.data);
    body += c.text; count++;
    text.textContent = body;
    document.getElementById("count").textContent = count;
  });
  es.addEventListener("compacted", (e) => {
    es.close();
    document.getElementById("state").textContent = "compacted (" + JSON.parse(e.data).chunk_count + " chunks)";
    window.done = { text: body, opens, count };
  });
  es.onerror = () => { if (!window.done) document.getElementById("state").textContent = "reconnecting"; };
</script>`;

const pageServer = createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end(page_html);
});
await new Promise((r) => pageServer.listen(Number(PAGE_PORT), "127.0.0.1", r));

async function post(seq, data, final) {
  const r = await fetch(`${INGEST_URL}/v1/orgs/${ORG}/generations/${GEN}/chunks`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ seq, data, final }),
  });
  check(r.status === 202, `chunk ${seq} answered ${r.status}`);
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  page.setDefaultTimeout(30000);
  await page.goto(`http://127.0.0.1:${PAGE_PORT}/`);
  await page.waitForFunction(() => document.getElementById("state").textContent === "live");
  // About 4 s of chunks: the server ends the stream every second, so the browser reconnects mid-generation.
  const words = ["The ", "answer, ", "in ", "pieces: ", "naïve ", "café ", "🚀 ", "\"quoted\" ", "line\n", "<b>not html</b> "];
  for (let s = 0; s < CHUNKS; s++) {
    await post(s, `${words[s % words.length]}${s} `, s === CHUNKS - 1);
    await sleep(100);
  }
  const done = await page.waitForFunction(() => window.done, null, { timeout: 30000 }).then((h) => h.jsonValue());
  await page.screenshot({ path: `${SHOTS}/live-generation.png`, fullPage: true });
  // The shell script compares it with the row's `compacted` (base64 of the text) in the database.
  writeFileSync(process.env.PAGE_TEXT, done.text);
  check(done.count === CHUNKS, `page got ${done.count} chunks, expected ${CHUNKS} (a duplicate or a gap)`);
  check(done.opens >= 3, `the browser connected ${done.opens} times: the server's cuts did not happen`);
  const shown = await page.locator("#text").textContent();
  check(shown === done.text, "the page does not show the text it received");
  console.log(`ok: ${CHUNKS} chunks in order, ${done.opens} connections (the browser reconnected by itself)`);
} finally {
  await browser.close();
  pageServer.close();
}
