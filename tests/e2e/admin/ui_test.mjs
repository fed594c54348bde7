// Drives the admin UI in headless Chromium (see admin_ui_test.sh for the fleet it runs against).
// Every step asserts what the page shows and, for actions, the effect on the fleet through the API.
import { chromium } from "playwright-core";

const { ADMIN_URL, ADMIN_TOKEN, INGEST_URL, POISON_ID, SHOTS, CHROMIUM } = process.env;
const TIMEOUT = 15000;

function check(cond, msg) {
  if (!cond) throw new Error("check failed: " + msg);
}
async function until(what, fn, timeoutMs = TIMEOUT) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const step = (s) => console.log("-- " + s);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 850 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  const apiGet = async (path) => (await page.request.get(ADMIN_URL + "/api/" + path)).json();

  step("unauthenticated: the API answers 401, a page redirects to the login form");
  const anon = await page.request.get(ADMIN_URL + "/api/overview");
  check(anon.status() === 401, "anonymous /api/overview answered " + anon.status());
  const anonPost = await page.request.post(ADMIN_URL + "/api/queues/pause", { data: { queue: "default" } });
  check(anonPost.status() === 401, "anonymous pause answered " + anonPost.status());

  step("login page: a next= a browser would resolve to another site is not carried into the form");
  // login.js keeps SafeNext's rules (admin_server.cc): browsers drop tabs and read "\" as "/", so
  // "/\t/evil.example/x" would be //evil.example/x.
  for (const next of ["/\t/evil.example/x", "/a\\b", "/\x7f/x", "//evil.example/"]) {
    await page.goto(ADMIN_URL + "/login?next=" + encodeURIComponent(next));
    const kept = await page.inputValue("#next");
    check(kept === "/", `next=${JSON.stringify(next)} put ${JSON.stringify(kept)} into the login form`);
  }
  await page.goto(ADMIN_URL + "/login?next=" + encodeURIComponent("/tasks?state=dead"));
  check((await page.inputValue("#next")) === "/tasks?state=dead", "a local next= was not carried into the form");

  await page.goto(ADMIN_URL + "/queues");
  check(new URL(page.url()).pathname === "/login", "not redirected to /login: " + page.url());
  await page.fill("#token", "wrong-token");
  await page.click("#login-submit");
  await page.waitForSelector("#login-error:not([hidden])");
  await shot("login");

  step("log in; back where we wanted to go");
  await page.fill("#token", ADMIN_TOKEN);
  await page.click("#login-submit");
  await page.waitForSelector('[data-testid="queues"]');
  check(new URL(page.url()).pathname === "/queues", "after login at " + page.url());

  step("overview: the live generation's progress, updated without a reload");
  await page.click('header nav a[data-nav="overview"]');
  const bar = page.locator('[data-testid="progress-77"]');
  await until("4 / 10 on the overview", async () => (await bar.textContent()).includes("4 / 10 (40%)"));
  await page.evaluate(() => { window.__noReload = true; });
  for (const seq of [4, 5, 6]) {
    const r = await fetch(`${INGEST_URL}/v1/orgs/5/generations/77/chunks`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ seq, data: `part ${seq} `, total_chunks: 10 }),
    });
    check(r.status === 202, "ingest answered " + r.status);
  }
  await until("7 / 10 after more chunks", async () => (await bar.textContent()).includes("7 / 10 (70%)"));
  check(await page.evaluate(() => window.__noReload === true), "the page was reloaded");
  await until("samples for the charts", async () => (await page.locator(".chart svg").count()) === 4);
  await shot("overview");

  step("streams and groups");
  await page.click('header nav a[data-nav="streams"]');
  await page.waitForSelector('[data-testid="streams"] tr[data-stream="streamfleet:chunks:0"]');
  await shot("streams");

  step("queues: pause from the UI, a task waits, resume, it runs");
  await page.click('header nav a[data-nav="queues"]');
  await page.click('[data-testid="pause-default"]');
  await until("default paused", async () => (await page.textContent('[data-testid="queue-state-default"]')) === "paused");
  check((await apiGet("queues")).queues.find((q) => q.queue === "default").paused, "API does not report default paused");
  // A worker slot already parked in XREADGROUP BLOCK (500 ms) sees the pause at its next poll.
  await new Promise((r) => setTimeout(r, 1000));
  await page.fill('[data-testid="enqueue-form"] input[name="type"]', "noop");
  await page.click('[data-testid="enqueue-form"] button[type="submit"]');
  const flash = await until("enqueue confirmation", async () => {
    const t = await page.textContent('[data-testid="flash"]');
    return t.startsWith("enqueued task ") ? t : undefined;
  });
  const waitingId = flash.slice("enqueued task ".length).trim();
  await new Promise((r) => setTimeout(r, 1500));
  check((await apiGet("tasks/" + waitingId)).status.state === "pending", "a task ran while its queue was paused");
  await shot("queues-paused");
  await page.click('[data-testid="resume-default"]');
  await until("default running", async () => (await page.textContent('[data-testid="queue-state-default"]')) === "running");
  await until("the waiting task ran after resume", async () => (await apiGet("tasks/" + waitingId)).status.state === "succeeded");
  await shot("queues");

  step("tasks: a delayed task shows under Scheduled and is cancelled with its button");
  await page.fill('[data-testid="enqueue-form"] input[name="type"]', "report.later");
  await page.fill('[data-testid="enqueue-form"] input[name="delay_seconds"]', "3600");
  await page.click('[data-testid="enqueue-form"] button[type="submit"]');
  const laterFlash = await until("delayed enqueue confirmation", async () => {
    const t = await page.textContent('[data-testid="flash"]');
    return t.startsWith("enqueued task ") && !t.includes(waitingId) ? t : undefined;
  });
  const laterId = laterFlash.slice("enqueued task ".length).trim();
  check((await apiGet("tasks/" + laterId)).status.state === "scheduled", "the delayed task is not scheduled");
  await page.click('header nav a[data-nav="tasks"]');
  await page.waitForSelector('[data-testid="page-tasks"]');
  check((await page.textContent('[data-testid="task-tabs"] a.active')) === "Scheduled", "Scheduled is not the first tab");
  const laterRow = page.locator(`[data-testid="tasks"] tr[data-task="${laterId}"]`);
  await until("the delayed task under Scheduled", async () => (await laterRow.count()) === 1);
  check((await laterRow.textContent()).includes("report.later"), "row: " + (await laterRow.textContent()));
  // The filters narrow the list (and live in the URL).
  await page.fill('[data-testid="task-filter"] input[name="queue"]', "low");
  await page.click('[data-testid="task-filter"] button[type="submit"]');
  await page.waitForSelector('[data-testid="no-tasks"]');
  check(new URL(page.url()).search.includes("queue=low"), "filter is not in the URL: " + page.url());
  await page.fill('[data-testid="task-filter"] input[name="queue"]', "default");
  await page.fill('[data-testid="task-filter"] input[name="type"]', "report.later");
  await page.click('[data-testid="task-filter"] button[type="submit"]');
  await until("the delayed task, filtered by queue and type", async () => (await laterRow.count()) === 1);
  page.once("dialog", (d) => d.accept());
  await page.click(`[data-testid="cancel-${laterId}"]`);
  await until("the row marked cancelled", async () => (await page.locator(`[data-testid="cancelled-${laterId}"]`).count()) === 1);
  check((await page.textContent('[data-testid="flash"]')).includes('"state":"cancelled"'), "no cancel confirmation");
  check((await page.locator(`[data-testid="cancel-${laterId}"]`).count()) === 0, "still offers to cancel it");
  const rec = (await apiGet("tasks/" + laterId)).status;
  check(rec.state === "cancelled", "the record says " + rec.state);
  await shot("tasks-scheduled");
  // The server's refusal is shown as it says it: the button's action on a task that already ran (409).
  await page.evaluate((id) => act("cancel " + id, "tasks/cancel", { id }), waitingId);
  const refused = await until("the refusal", async () => {
    const t = await page.textContent('#flash .error');
    return t.includes("failed") ? t : undefined;
  });
  check(refused.includes("too_late: task " + waitingId + " is succeeded"), "cancel of a finished task: " + refused);

  step("tasks: the Dead tab lists the poison task");
  await page.click('header nav a[data-nav="tasks"]');  // the tabs keep the filters; the nav link drops them
  await page.click('[data-testid="task-tabs"] a[data-tab="dead"]');
  const deadRow = page.locator(`[data-testid="tasks"] tr[data-task="${POISON_ID}"]`);
  await until("the poison task under Dead", async () => (await deadRow.count()) === 1, 20000);
  check((await deadRow.textContent()).includes("MAX_DELIVERIES"), "dead row: " + (await deadRow.textContent()));
  check((await deadRow.locator("button").count()) === 0, "a dead task offers a cancel");
  await shot("tasks-dead");

  step("dead letters: the poison task is requeued from the UI and then processed");
  await page.click('header nav a[data-nav="dead-letters"]');
  const row = page.locator('[data-testid="dead-letters"] tr', { hasText: POISON_ID });
  await until("the poison task among the dead letters", async () => (await row.count()) === 1, 20000);
  check((await row.textContent()).includes("MAX_DELIVERIES"), "dead letter reason: " + (await row.textContent()));
  await row.locator("a", { hasText: /^\d+-\d+$/ }).click();  // inspect: ?id=... shows the whole entry
  await page.waitForSelector('[data-testid="dead-letter-detail"]');
  check((await page.textContent('[data-testid="dead-letter-detail"]')).includes('poison'), "detail lacks the payload");
  await shot("dead-letters");
  await row.locator("button", { hasText: "requeue" }).click();
  await until("the dead letter is gone", async () => (await row.count()) === 0);
  await until("the requeued task succeeded", async () => (await apiGet("tasks/" + POISON_ID)).status.state === "succeeded");
  await page.goto(ADMIN_URL + "/tasks/" + POISON_ID);
  await page.waitForSelector('[data-testid="task-detail"] td[data-field="state"]');
  check((await page.textContent('td[data-field="state"]')) === "succeeded", "task page state");
  await shot("task");

  step("back button and reload");
  await page.goBack();
  await page.waitForSelector('[data-testid="page-dead-letters"]');
  check(new URL(page.url()).pathname === "/dead-letters", "back went to " + page.url());
  await page.reload();
  await page.waitForSelector('[data-testid="no-dead-letters"]');

  step("tasks: Succeeded, one per page, paged to the end and back to the first page");
  await page.goto(ADMIN_URL + "/tasks?state=succeeded&limit=1");
  await page.waitForSelector('[data-testid="page-tasks"] [data-testid="tasks"], [data-testid="no-tasks"]');
  const seen = [];
  for (let i = 0; i < 10; i++) {
    const rows = page.locator('[data-testid="tasks"] tr[data-task]');
    if ((await rows.count()) === 1) seen.push(await rows.getAttribute("data-task"));
    const next = page.locator('[data-testid="tasks-next"]');
    if ((await next.count()) === 0) break;
    const before = page.url();
    await next.click();
    await until("the next page", async () => page.url() !== before && (await page.locator('[data-testid="page-tasks"] table, [data-testid="no-tasks"]').count()) > 0);
  }
  check(seen.includes(waitingId) && seen.includes(POISON_ID), "succeeded pages listed " + JSON.stringify(seen));
  check(new Set(seen).size === seen.length, "a task on two pages: " + JSON.stringify(seen));
  await page.click('[data-testid="tasks-first"]');
  await until("the first page again", async () => !new URL(page.url()).searchParams.has("cursor") &&
    (await page.locator('[data-testid="tasks"] tr[data-task]').count()) === 1);
  await shot("tasks-succeeded");

  step("generations: search, buffer and meta");
  await page.click('header nav a[data-nav="generations"]');
  await page.fill('[data-testid="generation-search"] input[name="org"]', "5");
  await page.fill('[data-testid="generation-search"] input[name="gen"]', "77");
  await page.click('[data-testid="generation-search"] button[type="submit"]');
  await page.waitForSelector('[data-testid="generation-detail"]');
  check(new URL(page.url()).search.includes("org=5"), "search is not in the URL: " + page.url());
  await until("the buffer's LLEN", async () => (await page.textContent('[data-testid="generation-detail"]')).includes('"total_chunks": "10"'));
  await shot("generations");

  step("logged out: refused again");
  await page.click("#logout");
  await page.waitForURL(/\/login/);
  const after = await page.request.get(ADMIN_URL + "/api/overview");
  check(after.status() === 401, "after logout /api/overview answered " + after.status());
  console.log("ui test passed");
} finally {
  await browser.close();
}
