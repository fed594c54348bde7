// Push handlers against the real queue-worker (run by push_node_test.sh, which starts redis-server and passes
// STREAMFLEET_BUILD, REDIS_PORT and WORK). This file runs a Node handler server that checks every request with
// examples/push-handlers/verify.js, starts streamfleet-queue-worker with TASK_ROUTES pointing at it, enqueues
// tasks with streamfleetctl and reads their status records. The task type decides what the handler answers.
// Tests run in order on one worker; the last one SIGKILLs it mid-request and starts another.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const { verify } = require(path.join(HERE, '../../examples/push-handlers/verify.js'));

const BUILD = process.env.STREAMFLEET_BUILD;
const REDIS_PORT = process.env.REDIS_PORT;
const WORK = process.env.WORK;
if (!BUILD || !REDIS_PORT || !WORK) throw new Error('run through push_node_test.sh (STREAMFLEET_BUILD, REDIS_PORT, WORK)');
const SECRET = 'push-test secret ✓'; // non-ASCII: the key is hashed as UTF-8 bytes on both sides
const CONCURRENCY = 4;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns a truthy value; fails after timeoutMs with `what`.
async function waitFor(what, fn, timeoutMs = 15000, everyMs = 25) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// --- streamfleetctl
function ctl(...args) {
  return new Promise((resolve, reject) => {
    execFile(`${BUILD}/tools/streamfleetctl`, ['--json', ...args], { env: { ...process.env, REDIS_PORT }, timeout: 10000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`streamfleetctl ${args.join(' ')}: ${stderr || err.message}`));
        else resolve(JSON.parse(stdout));
      });
  });
}
async function enqueue(type, payload) {
  const r = await ctl('enqueue', type, '--payload', JSON.stringify(payload));
  assert.equal(typeof r.id, 'string');
  return r.id;
}
const show = (id) => ctl('tasks', 'show', id);
async function waitState(id, states, timeoutMs = 15000) {
  let last;
  try {
    return await waitFor(`task ${id} in state ${states.join('|')}`, async () => {
      last = await show(id);
      return states.includes(last.state) ? last : null;
    }, timeoutMs, 100);
  } catch (e) {
    e.message += `; last status ${JSON.stringify(last)}`;
    throw e;
  }
}

// --- the handler server: records every request; what it answers depends on the task type and on how many
// requests for this task id came before (n = 1 for the first).
const requests = [];
const forId = (id) => requests.filter((r) => r.id === id);

function reply(res, rec, code, body, headers = {}) {
  rec.answerCode = code;
  rec.answerBody = body;
  rec.answeredAt = Date.now();
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const behaviour = {
  'node.ok': (rec, res) => reply(res, rec, 200, JSON.stringify({ handled: rec.id, echo: rec.body.payload, lang: 'node' })),
  'node.bad': (rec, res) => reply(res, rec, 400, '{"error":"payload rejected"}'),
  'node.busy': (rec, res, n) =>
    n === 1 ? reply(res, rec, 503, '{"error":"busy"}', { 'Retry-After': '2' }) : reply(res, rec, 200, '{"busy":"done"}'),
  'node.flaky': (rec, res, n) => (n === 1 ? reply(res, rec, 500, '{"error":"boom"}') : reply(res, rec, 200, '{"flaky":"done"}')),
  // First attempt: never answered (the worker's 1 s timeout cuts it); then 200.
  'node.hang': (rec, res, n) => { if (n > 1) reply(res, rec, 200, '{"hang":"done"}'); },
  'node.keep': (rec, res) => reply(res, rec, 200, `{"keep":${rec.body.payload.i}}`),
  // First delivery: held open until the worker dies; then 200.
  'node.kill': (rec, res, n) => { if (n > 1) reply(res, rec, 200, '{"kill":"done"}'); },
};

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    const rec = {
      at: Date.now(), method: req.method, url: req.url, headers: req.headers, raw,
      port: req.socket.remotePort, closedAt: null,
      sigOk: verify(SECRET, req.headers['x-streamfleet-timestamp'], req.headers['x-streamfleet-signature'], raw),
    };
    res.on('close', () => { rec.closedAt = Date.now(); });
    try {
      rec.body = JSON.parse(raw.toString('utf8'));
    } catch {
      rec.body = null;
    }
    rec.id = rec.body && rec.body.id;
    requests.push(rec);
    if (!rec.sigOk) return reply(res, rec, 401, '{"error":"bad signature"}');
    const fn = rec.body && behaviour[rec.body.type];
    if (!fn) return reply(res, rec, 404, '{"error":"unknown type"}');
    fn(rec, res, forId(rec.id).length);
  });
});
server.keepAliveTimeout = 60000; // idle connections stay: the worker's reuse shows in remotePort
let handlerPort;

// --- workers
const workers = [];
async function startWorker(name) {
  const metrics = await freePort();
  const log = fs.openSync(path.join(WORK, `worker-${name}.log`), 'a');
  const child = spawn(`${BUILD}/queue-worker/streamfleet-queue-worker`, [], {
    env: {
      ...process.env,
      REDIS_PORT,
      DATABASE_URL: `sqlite:${WORK}/push-${name}.db`,
      METRICS_LISTEN: `127.0.0.1:${metrics}`,
      CONSUMER_NAME: `push-${name}`,
      TASK_ROUTES: `node.*=http://127.0.0.1:${handlerPort}/task`,
      TASK_SIGNING_SECRET: SECRET,
      TASK_TIMEOUTS: 'node.hang=1s',
      // node.hang's backoff is 1-2 s so that its retry_scheduled state lasts long enough to be seen.
      TASK_POLICY: 'node.hang=3/2000/2000',
      TASK_BACKOFF_BASE: '200ms',
      TASK_BACKOFF_CAP: '1s',
      TASK_MAX_ATTEMPTS: '3',
      VISIBILITY_TIMEOUT: '2s',
      WORKER_CONCURRENCY: String(CONCURRENCY),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  fs.appendFileSync(path.join(WORK, 'worker.pids'), `${child.pid}\n`); // the shell script kills what is left
  const w = { name, child, exited: false };
  child.on('exit', () => { w.exited = true; });
  workers.push(w);
  await waitFor(`worker ${name} ready on ${metrics}`, async () => {
    if (w.exited) throw new Error(`worker ${name} exited at start (see worker-${name}.log)`);
    try {
      const r = await fetch(`http://127.0.0.1:${metrics}/readyz`, { signal: AbortSignal.timeout(1000) });
      return r.ok;
    } catch {
      return false;
    }
  }, 15000, 100);
  return w;
}

before(async () => {
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  handlerPort = server.address().port;
  await startWorker('w1');
});

after(async () => {
  for (const w of workers) {
    if (!w.exited) w.child.kill('SIGTERM');
  }
  for (const w of workers) {
    try {
      await waitFor(`worker ${w.name} to stop`, () => w.exited, 5000);
    } catch {
      w.child.kill('SIGKILL');
    }
  }
  server.closeAllConnections();
  server.close();
});

test('200: succeeded with the body as result; signed request with the task fields', { timeout: 20000 }, async () => {
  const payload = { msg: 'héllo 中 😀 "quoted"', n: 1, nested: { list: [1, 2, 3] } };
  const before = Date.now();
  const id = await enqueue('node.ok', payload);
  const st = await waitState(id, ['succeeded', 'dead']);
  assert.equal(st.state, 'succeeded', JSON.stringify(st));
  assert.equal(st.attempts, 1);
  const reqs = forId(id);
  assert.equal(reqs.length, 1);
  const r = reqs[0];
  assert.equal(st.result, r.answerBody, 'the result is the handler body verbatim');

  assert.equal(r.method, 'POST');
  assert.equal(r.url, '/task');
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers['idempotency-key'], id);
  const ts = r.headers['x-streamfleet-timestamp'];
  assert.match(ts, /^[0-9]+$/);
  assert.ok(Math.abs(Number(ts) - r.at / 1000) < 10, `timestamp ${ts} is now`);
  const sig = r.headers['x-streamfleet-signature'];
  assert.match(sig, /^v1=[0-9a-f]{64}$/);
  const expected = 'v1=' + crypto.createHmac('sha256', SECRET).update(`${ts}.`).update(r.raw).digest('hex');
  assert.equal(sig, expected, 'signature = HMAC-SHA256(secret, ts + "." + raw body)');
  assert.ok(r.sigOk, 'verify.js accepts it');
  assert.equal(verify('another secret', ts, sig, r.raw), false);
  // No timeout of its own: the deadline is TASK_ROUTE_TIMEOUT's (60 s by default), when the request is cut.
  const left = Number(r.headers['x-streamfleet-deadline-ms']);
  assert.ok(left >= 55000 && left <= 60000, `X-Streamfleet-Deadline-Ms ${r.headers['x-streamfleet-deadline-ms']}`);

  assert.deepEqual(Object.keys(r.body).sort(), ['attempt', 'deadline_ms', 'enqueued_at_ms', 'id', 'payload', 'queue', 'type']);
  assert.equal(r.body.id, id);
  assert.equal(r.body.type, 'node.ok');
  assert.deepEqual(r.body.payload, payload);
  assert.equal(r.body.attempt, 0);
  assert.equal(r.body.queue, 'default');
  assert.equal(r.body.enqueued_at_ms, st.enqueued_at_ms);
  assert.ok(r.body.enqueued_at_ms >= before - 1000 && r.body.enqueued_at_ms <= r.at, 'enqueued_at_ms is the enqueue time');
  assert.ok(Math.abs(r.body.deadline_ms - (r.at + left)) <= 5000, `deadline_ms ${r.body.deadline_ms} = now + ${left}`);
});

test('400: dead-lettered after one attempt', { timeout: 20000 }, async () => {
  const id = await enqueue('node.bad', { x: 1 });
  const st = await waitState(id, ['dead', 'succeeded']);
  assert.equal(st.state, 'dead', JSON.stringify(st));
  assert.equal(st.attempts, 1);
  assert.match(st.error, /400/);
  assert.equal(forId(id).length, 1, 'not retried');
});

test('503 + Retry-After: 2: retried at Retry-After, then succeeds', { timeout: 20000 }, async (t) => {
  const id = await enqueue('node.busy', { y: 2 });
  const st = await waitState(id, ['retry_scheduled', 'succeeded', 'dead']);
  assert.equal(st.state, 'retry_scheduled', JSON.stringify(st));
  assert.match(st.error, /503/);
  const first = forId(id)[0];
  const want = first.answeredAt + 2000;
  assert.ok(Math.abs(st.run_at_ms - want) <= 700, `run_at_ms ${st.run_at_ms} is the 503 + 2000 ms (${want})`);
  t.diagnostic(`run_at_ms - (503 answer + 2000) = ${st.run_at_ms - want} ms`);
  const done = await waitState(id, ['succeeded', 'dead']);
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
  assert.equal(done.attempts, 2);
  assert.equal(done.result, '{"busy":"done"}');
  const reqs = forId(id);
  assert.equal(reqs.length, 2);
  assert.ok(reqs[1].at >= st.run_at_ms - 250, `second request ${reqs[1].at - st.run_at_ms} ms from run_at_ms`);
  assert.deepEqual(reqs.map((r) => r.body.attempt), [0, 1]);
  assert.deepEqual(reqs.map((r) => r.headers['idempotency-key']), [id, id]);
});

test('500: retried with the backoff, then succeeds', { timeout: 20000 }, async () => {
  const id = await enqueue('node.flaky', { z: 3 });
  const st = await waitState(id, ['succeeded', 'dead']);
  assert.equal(st.state, 'succeeded', JSON.stringify(st));
  assert.equal(st.attempts, 2);
  assert.equal(st.result, '{"flaky":"done"}');
  const reqs = forId(id);
  assert.deepEqual(reqs.map((r) => r.answerCode), [500, 200]);
  assert.deepEqual(reqs.map((r) => r.body.attempt), [0, 1]);
  assert.deepEqual(reqs.map((r) => r.headers['idempotency-key']), [id, id]);
});

test('a handler slower than the 1 s timeout: cut, retried; told its deadline', { timeout: 25000 }, async (t) => {
  const id = await enqueue('node.hang', {});
  const first = await waitFor('the first node.hang request', () => forId(id)[0]);
  const left = Number(first.headers['x-streamfleet-deadline-ms']);
  assert.ok(left > 0 && left <= 1000, `X-Streamfleet-Deadline-Ms ${first.headers['x-streamfleet-deadline-ms']}`);
  assert.equal(typeof first.body.deadline_ms, 'number');
  assert.ok(Math.abs(first.body.deadline_ms - (first.at + left)) <= 500, `deadline_ms ${first.body.deadline_ms} = now + ${left}`);
  const st = await waitState(id, ['retry_scheduled', 'succeeded', 'dead']);
  assert.equal(st.state, 'retry_scheduled', JSON.stringify(st));
  assert.equal(st.attempts, 1);
  assert.match(st.error, /time/i);
  assert.ok(first.closedAt !== null, 'the worker closed the timed-out request');
  const waited = first.closedAt - first.at;
  assert.ok(waited >= 700 && waited < 5000, `request cut after ${waited} ms`);
  t.diagnostic(`X-Streamfleet-Deadline-Ms ${left}, request cut after ${waited} ms, error: ${st.error}`);
  const done = await waitState(id, ['succeeded', 'dead']);
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
  assert.equal(done.attempts, 2);
  assert.equal(forId(id)[1].headers['idempotency-key'], id);
});

test('keep-alive: tasks reuse the worker slots\' connections', { timeout: 25000 }, async (t) => {
  const n = 12;
  const ids = [];
  for (let i = 0; i < n; i++) ids.push(await enqueue('node.keep', { i }));
  await waitFor(`${n} node.keep requests`, () => ids.every((id) => forId(id).some((r) => r.answerCode === 200)));
  for (const id of ids) {
    const st = await waitState(id, ['succeeded', 'dead']);
    assert.equal(st.state, 'succeeded', JSON.stringify(st));
  }
  const ports = new Set(ids.flatMap((id) => forId(id).map((r) => r.port)));
  t.diagnostic(`${n} tasks over ${ports.size} connections`);
  assert.ok(ports.size < n, `${n} tasks over ${ports.size} connections`);
  assert.ok(ports.size <= CONCURRENCY, `${ports.size} connections for ${CONCURRENCY} worker slots`);
});

test('SIGKILL mid-request: the task runs again with the same Idempotency-Key', { timeout: 40000 }, async (t) => {
  const id = await enqueue('node.kill', { k: 1 });
  const held = await waitFor('the node.kill request', () => forId(id)[0]);
  const w1 = workers[0];
  w1.child.kill('SIGKILL');
  await waitFor('worker w1 to die', () => w1.exited, 5000);
  await waitFor('the held request to be closed', () => held.closedAt !== null, 5000);
  assert.equal(held.answerCode, undefined, 'never answered');
  await startWorker('w2');
  const again = await waitFor('the node.kill task again (after VISIBILITY_TIMEOUT)', () => forId(id)[1], 20000);
  t.diagnostic(`delivered again ${again.at - held.closedAt} ms after the kill`);
  assert.equal(again.headers['idempotency-key'], id);
  assert.equal(again.headers['idempotency-key'], held.headers['idempotency-key']);
  assert.equal(again.body.id, id);
  assert.equal(again.body.attempt, held.body.attempt, 'a redelivery is not a new attempt');
  assert.deepEqual(again.body.payload, { k: 1 });
  assert.ok(again.sigOk);
  const st = await waitState(id, ['succeeded', 'dead']);
  assert.equal(st.state, 'succeeded', JSON.stringify(st));
  assert.equal(st.result, '{"kill":"done"}');
  assert.equal(forId(id).length, 2);
});

test('every request was signed correctly', () => {
  assert.ok(requests.length > 0);
  assert.deepEqual(requests.filter((r) => !r.sigOk).map((r) => r.headers), []);
});
