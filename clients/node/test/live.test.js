'use strict';
// Signed live-stream links (lib/live.js): the signature against a known vector and the argument checks without
// servers; then links made here against a real streamfleet-ingest, which tests/clients/node_client_test.sh starts
// and passes as STREAMFLEET_TEST_INGEST_URL, with the organization and token of its INGEST_TOKENS in
// STREAMFLEET_TEST_INGEST_ORG and STREAMFLEET_TEST_INGEST_TOKEN.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const {
  eventsPath, generationStreamPath, signedEventsLink, signedGenerationStreamLink, signedStreamLink, streamLinkSignature,
} = require('..');

const VECTOR_SIG = 'cbb3e6d4743bb856e33e0362fe2215e154581b7c710a47be4330837e9dee3358';

test('the signature of a known vector', () => {
  // HMAC-SHA256("tok-org-1", "GET\n/v1/orgs/1/generations/7/stream\n1800000000"), as ingest computes it.
  const path = '/v1/orgs/1/generations/7/stream';
  assert.equal(streamLinkSignature('tok-org-1', path, 1800000000), VECTOR_SIG);
  const want = `${path}?exp=1800000000&sig=${VECTOR_SIG}`;
  assert.equal(signedStreamLink('tok-org-1', path, { ttlS: 600, now: 1799999400 }), want);
  assert.equal(signedGenerationStreamLink('tok-org-1', 1, 7, { now: 1799999400.9 }), want); // 600 s by default
  assert.equal(signedGenerationStreamLink('tok-org-1', '1', 7n, { ttlS: 1, now: new Date(1799999999000) }), want);
  assert.equal(signedGenerationStreamLink('tok-org-1', 1, 7, { baseUrl: 'https://in.example/sf/', now: 1799999400 }),
    `https://in.example/sf${want}`);
});

test('events links, and the expiry counts from now', () => {
  assert.equal(signedEventsLink('t', 42, { ttlS: 60, baseUrl: 'http://127.0.0.1:8080', now: 1000 }),
    `http://127.0.0.1:8080/v1/orgs/42/events?exp=1060&sig=${streamLinkSignature('t', '/v1/orgs/42/events', 1060)}`);
  const before = Math.floor(Date.now() / 1000);
  const exp = Number(new URL(signedEventsLink('t', 1, { ttlS: 30 }), 'http://x').searchParams.get('exp'));
  assert.ok(exp >= before + 30 && exp <= Math.floor(Date.now() / 1000) + 30, String(exp));
  // Ids beyond 2^53 as strings or BigInts, exactly.
  assert.equal(generationStreamPath('999999999999999999', 999999999999999999n),
    '/v1/orgs/999999999999999999/generations/999999999999999999/stream');
  assert.equal(eventsPath(5), '/v1/orgs/5/events');
});

test('invalid arguments throw before anything is signed', () => {
  const badIds = [0, -1, 1.5, 2 ** 53, 10n ** 18n, 0n, NaN, null, undefined, true, '', '01', '+1', ' 1', '1x', '1e3'];
  for (const bad of badIds) {
    assert.throws(() => signedEventsLink('t', bad), { name: 'TypeError', message: /^org must be a positive integer/ },
      String(bad));
    assert.throws(() => signedGenerationStreamLink('t', 1, bad), { message: /^gen must be a positive integer/ },
      String(bad));
  }
  for (const ttlS of [0, -5, 1.5, '600', NaN, Infinity, null]) {
    assert.throws(() => signedEventsLink('t', 1, { ttlS }), { message: /^ttlS must be a positive integer/ },
      String(ttlS));
  }
  assert.throws(() => signedEventsLink('t', 1, { ttlS: 1e12 }), { message: /^ttlS too large/ });
  for (const token of ['', null, undefined, Buffer.from('tok')]) {
    assert.throws(() => signedEventsLink(token, 1), { message: /^token must be/ }, String(token));
  }
  for (const path of ['/v1/orgs/1/events?after=0', 'v1/orgs/1/events', '/v1/orgs/0/events', '/v1/orgs/1/generations/7',
    '/v1/orgs/1/generations/7/chunks', 'http://h/v1/orgs/1/events', '/v1/orgs/1/events/', undefined]) {
    assert.throws(() => signedStreamLink('t', path), { message: /^path must be/ }, String(path));
  }
  for (const baseUrl of ['ingest:8080', 'http://h/x?y=1', 'ftp://h', 'http://h/#x', null]) {
    assert.throws(() => signedEventsLink('t', 1, { baseUrl }), { message: /^baseUrl must be/ }, String(baseUrl));
  }
  for (const now of [Date.now(), -1, NaN, '1800000000', new Date(NaN)]) {
    assert.throws(() => signedEventsLink('t', 1, { now }), { message: /^now must be a Date or unix seconds/ },
      String(now));
  }
});

// GET url without an Authorization header (an EventSource cannot send one): the status, the Content-Type and the
// first bytes of the body ("retry: 1000" of an event stream), then the connection is closed.
function get(url, want = 'retry: 1000'.length) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let body = Buffer.alloc(0);
      const done = () => {
        req.destroy();
        resolve({ status: res.statusCode, type: res.headers['content-type'] || '', body: body.toString() });
      };
      res.on('data', (d) => {
        body = Buffer.concat([body, d]);
        if (res.statusCode === 200 && body.length >= want) done();
      });
      res.on('end', done);
      res.on('error', reject);
    });
    req.setTimeout(10000, () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
  });
}

test('links made here open streams of a real ingest; another path or an expired link is 403', async (t) => {
  const url = process.env.STREAMFLEET_TEST_INGEST_URL;
  const org = process.env.STREAMFLEET_TEST_INGEST_ORG;
  const token = process.env.STREAMFLEET_TEST_INGEST_TOKEN;
  if (!url || !org || !token) {
    throw new Error('STREAMFLEET_TEST_INGEST_URL, _ORG and _TOKEN are not set: ' +
      'run tests/clients/node_client_test.sh BUILD_DIR');
  }
  const gen = 600000 + (Date.now() % 100000);
  // One chunk with the bearer token (the producer's side), so the generation's stream has begun.
  const posted = await fetch(`${url}/v1/orgs/${org}/generations/${gen}/chunks`, {
    method: 'POST', body: JSON.stringify({ seq: 0, data: 'hello' }),
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
  });
  assert.equal(posted.status, 202, await posted.text());

  const link = signedGenerationStreamLink(token, org, gen, { ttlS: 60, baseUrl: `${url}/` });
  await t.test('the generation stream', async () => {
    const r = await get(link);
    assert.equal(r.status, 200, `${link}: ${r.body}`);
    assert.match(r.type, /^text\/event-stream/);
    assert.equal(r.body.slice(0, 'retry: 1000'.length), 'retry: 1000');
  });
  await t.test("the same signature on another generation's path", async () => {
    const r = await get(url + generationStreamPath(org, gen + 1) + link.slice(link.indexOf('?')));
    assert.equal(r.status, 403, r.body);
    assert.equal(JSON.parse(r.body).error, 'forbidden');
  });
  await t.test('an expired link', async () => {
    const now = Date.now() / 1000 - 120;
    const expired = signedGenerationStreamLink(token, org, gen, { ttlS: 60, baseUrl: url, now });
    const r = await get(expired);
    assert.equal(r.status, 403, r.body);
    assert.match(JSON.parse(r.body).detail, /expired/);
  });
  await t.test("a link signed with a token that is not the organization's", async () => {
    assert.equal((await get(signedGenerationStreamLink(`${token}x`, org, gen, { baseUrl: url }))).status, 403);
  });
  await t.test('the events stream (the page adds its own parameters)', async () => {
    const r = await get(`${signedEventsLink(token, org, { ttlS: 60, baseUrl: url })}&after=0`);
    assert.equal(r.status, 200, r.body);
    assert.match(r.type, /^text\/event-stream/);
    assert.equal(r.body.slice(0, 'retry: 1000'.length), 'retry: 1000');
  });
});
