#!/usr/bin/env node
'use strict';
// A minimal streamfleet push handler (docs/push-handlers.md), Node stdlib only.
//
//   TASK_SIGNING_SECRET=... PORT=8000 node handler.js
//   # worker: TASK_ROUTES='send_notifications=http://127.0.0.1:8000/tasks'
//
// Answers: 200 + a JSON result (stored as the task's result), 401 bad signature (dead-lettered: fix the
// secret and requeue), 400 unknown type or bad body (dead-lettered), 500 when the handler throws (retried).
// Node's http server keeps connections alive: the worker reuses one connection per worker slot.
const http = require('http');
const { verify } = require('./verify');

const SECRET = process.env.TASK_SIGNING_SECRET || '';

// A payload a type can never handle: answered 400, so the worker dead-letters it instead of retrying.
class BadPayload extends Error {}

const handlers = {
  // Delivery is at least once: dedupe side effects on task.id (= the Idempotency-Key header).
  send_notifications: async (task) => {
    const payload = task.payload; // any JSON value the producer sent: check its shape before using it
    const isObject = payload !== null && typeof payload === 'object' && !Array.isArray(payload);
    if (!isObject || (payload.user_ids !== undefined && !Array.isArray(payload.user_ids))) {
      throw new BadPayload('payload must be an object with a list "user_ids"');
    }
    return { sent: (payload.user_ids || []).length };
  },
  echo: async (task) => ({ echo: task.payload }),
};

// The largest request the worker sends: a 16 MiB payload and its envelope. The body is collected before its
// signature can be checked, so anything larger is refused, not buffered.
const MAX_BODY = 17 * 1024 * 1024;

function answer(res, code, doc, close = false) {
  const body = JSON.stringify(doc);
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
  if (close) headers.Connection = 'close';
  res.writeHead(code, headers);
  res.end(body);
}

const server = http.createServer((req, res) => {
  const tooLarge = () => answer(res, 413, { error: 'body too large' }, true);
  if (Number(req.headers['content-length'] || 0) > MAX_BODY) {
    req.resume(); // discarded
    return tooLarge();
  }
  const chunks = [];
  let size = 0;
  let refused = false;
  req.on('data', (c) => {
    if (refused) return;
    size += c.length;
    if (size > MAX_BODY) { // a chunked body without a Content-Length
      refused = true;
      chunks.length = 0;
      tooLarge();
      return;
    }
    chunks.push(c);
  });
  req.on('end', async () => {
    if (refused) return;
    const raw = Buffer.concat(chunks);
    if (!verify(SECRET, req.headers['x-streamfleet-timestamp'], req.headers['x-streamfleet-signature'], raw)) {
      return answer(res, 401, { error: 'bad signature' });
    }
    let task;
    try {
      task = JSON.parse(raw.toString('utf8'));
    } catch {
      return answer(res, 400, { error: 'bad body' });
    }
    const fn = task && Object.prototype.hasOwnProperty.call(handlers, task.type) ? handlers[task.type] : null;
    if (!fn) return answer(res, 400, { error: 'unknown task type' });
    try {
      answer(res, 200, await fn(task));
    } catch (e) {
      if (e instanceof BadPayload) return answer(res, 400, { error: e.message });
      answer(res, 500, { error: String(e && e.message) }); // retried by the worker
    }
  });
});

if (!SECRET) {
  console.error('set TASK_SIGNING_SECRET');
  process.exit(1);
}
server.keepAliveTimeout = 65000; // keep idle connections 65 s (default 5 s): the worker reuses them across quiet gaps
server.listen(Number(process.env.PORT || 8000), '127.0.0.1', () => {
  console.log(`push handler on http://127.0.0.1:${server.address().port}`);
});
