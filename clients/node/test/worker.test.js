'use strict';
// streamfleet-client against a real redis-server and real streamfleet-queue-workers, one per key schema
// (tests/clients/node_client_test.sh starts them, tests/clients/fleet.sh, and passes STREAMFLEET_TEST_REDIS_PORT).
// Tasks enqueued here must run, delayed ones wait, unique ones dedupe, paused queues hold their tasks until
// resumed, and the status record reads back what the worker wrote.
const test = require('node:test');
const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');
const Redis = require('ioredis');
const { TaskClient, TaskKeys, crc16, decodeEnvelope } = require('..');

const port = Number(process.env.STREAMFLEET_TEST_REDIS_PORT);
if (!port) throw new Error('STREAMFLEET_TEST_REDIS_PORT is not set: run tests/clients/node_client_test.sh BUILD_DIR');

async function waitFor(what, condition, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// Envelopes in every shard stream of a queue.
async function queueEnvelopes(redis, keys, queue) {
  const out = [];
  for (const stream of keys.queueShards(queue)) {
    for (const [, fields] of await redis.xrangeBuffer(stream, '-', '+')) out.push(decodeEnvelope(fields[1]));
  }
  return out;
}

for (const [schema, keys] of [
  ['standard', new TaskKeys({ prefix: 'streamfleet' })],
  ['cluster', new TaskKeys({ prefix: 'sfc', cluster: true, shards: 4 })],
]) {
  test(`${schema} key schema`, async (t) => {
    const redis = new Redis({ port, lazyConnect: false });
    const client = new TaskClient(redis, { keys });
    const state = async (id) => (await client.status(id))?.state ?? null;
    const succeeded = (id) => waitFor(`task ${id} to succeed`, async () => (await state(id)) === 'succeeded');
    t.after(() => redis.quit());

    await t.test('an enqueued task runs and its status round-trips', async () => {
      const res = await client.enqueue('noop', { from: 'node' });
      assert.deepEqual([res.duplicate, res.scheduled], [false, false]);
      await succeeded(res.id);
      const s = await client.status(res.id);
      assert.equal(s.attempts, 1);
      assert.equal(s.result, '');
      assert.equal(s.fields.type, 'noop');
      assert.equal(s.fields.queue, 'default');
      assert.match(s.fields.worker, /^w-/);
      const ttl = await redis.ttl(keys.status(res.id));
      assert.ok(ttl > 86000 && ttl <= 86400, String(ttl));
    });

    await t.test('the status of a waiting task and of an unknown one', async () => {
      const res = await client.enqueue('noop', '{}', { queue: 'unread' });
      const s = await client.status(res.id);
      assert.deepEqual(s.fields, { state: 'pending', type: 'noop', queue: 'unread', attempts: '0' });
      assert.equal(await client.status('no-such-task'), null);
      const envelope = (await queueEnvelopes(redis, keys, 'unread')).find((e) => e.id === res.id);
      assert.equal(envelope.type, 'noop');
      assert.equal(envelope.queue, 'unread');
      assert.equal(Buffer.from(envelope.payload).toString(), '{}');
    });

    await t.test('a delayed task waits until due', async () => {
      const enqueued = Date.now();
      const res = await client.enqueue('noop', '{}', { delayMs: 1500 });
      assert.equal(res.scheduled, true);
      assert.equal(await state(res.id), 'scheduled');
      await sleep(800);
      assert.equal(await state(res.id), 'scheduled');
      await succeeded(res.id);
      assert.ok(Date.now() - enqueued >= 1500);
    });

    await t.test('runAt a time', async () => {
      const runAt = new Date(Date.now() + 1000);
      const res = await client.enqueue('noop', '{}', { runAt });
      assert.equal(await state(res.id), 'scheduled');
      await succeeded(res.id);
      assert.ok(Date.now() >= runAt.getTime());
    });

    await t.test('a unique key dedupes to the first task', async () => {
      const key = `node-unique-${process.hrtime.bigint()}`;
      const first = await client.enqueue('noop', '{}', { queue: 'unread', uniqueKey: key });
      const again = await client.enqueue('noop', '{}', { queue: 'unread', uniqueKey: key });
      assert.deepEqual([again.duplicate, again.id], [true, first.id]);
      assert.equal((await queueEnvelopes(redis, keys, 'unread')).filter((e) => e.uniqueKey === key).length, 1);
      // With the cluster schema it is on the shard its key hashes to, as from every other language.
      const stream = keys.queue('unread', crc16(key) % keys.shards);
      const there = await redis.xrangeBuffer(stream, '-', '+');
      assert.ok(there.some(([, f]) => decodeEnvelope(f[1]).id === first.id));
      const ran = await client.enqueue('noop', '{}', { uniqueKey: `${key}-run` });
      await succeeded(ran.id);
      assert.equal((await client.enqueue('noop', '{}', { uniqueKey: `${key}-run` })).id, ran.id);
    });

    await t.test('bulk enqueue', async () => {
      const tasks = Array.from({ length: 12 }, (_, i) => ({ type: 'noop', payload: { i }, queue: ['critical', 'default', 'low'][i % 3] }));
      tasks.push({ type: 'noop', delayMs: 500 });
      const results = await client.enqueueMany(tasks);
      assert.equal(new Set(results.map((r) => r.id)).size, 13);
      assert.deepEqual(results.map((r) => r.scheduled), [...Array(12).fill(false), true]);
      for (const r of results) await succeeded(r.id);
    });

    await t.test('bulk refuses unique tasks and invalid input, sending nothing', async () => {
      const before = (await queueEnvelopes(redis, keys, 'unread')).length;
      await assert.rejects(client.enqueueMany([{ type: 'noop', queue: 'unread' }, { type: 'noop', queue: 'unread', uniqueKey: 'k' }]));
      await assert.rejects(client.enqueue('noop', '{}', { queue: 'Unread' }));
      await assert.rejects(client.enqueue('', '{}', { queue: 'unread' }));
      await assert.rejects(client.enqueue('noop', '{}', { queue: 'unread', delayMs: 1, runAt: Date.now() }));
      assert.equal((await queueEnvelopes(redis, keys, 'unread')).length, before);
    });

    await t.test('a paused queue holds its tasks until resumed', async () => {
      await client.pause('low');
      let ids;
      try {
        assert.ok((await client.pausedQueues()).includes('low'));
        if (keys.cluster) {
          for (const s of keys.queueShards('low')) assert.equal(await redis.get(keys.pausedFlagOf(s)), '1');
        }
        await sleep(700); // a slot blocked in XREADGROUP on "low" re-reads the paused set after its BLOCK (500 ms)
        ids = [];
        for (let i = 0; i < 3; i++) ids.push((await client.enqueue('noop', '{}', { queue: 'low' })).id);
        await sleep(1000);
        for (const id of ids) assert.equal(await state(id), 'pending');
        await succeeded((await client.enqueue('noop')).id); // other queues keep running
      } finally {
        await client.resume('low');
      }
      assert.deepEqual(await client.pausedQueues(), []);
      for (const id of ids) await succeeded(id);
    });

    await t.test('a refused task is dead with the reason', async () => {
      const bad = await client.enqueue('generation.compact', {});
      const unknown = await client.enqueue('no.such.type');
      await waitFor('both dead', async () => (await state(bad.id)) === 'dead' && (await state(unknown.id)) === 'dead');
      assert.match((await client.status(bad.id)).error, /^permanent error: INVALID_ARGUMENT/);
      assert.equal((await client.status(unknown.id)).error, 'unknown task type "no.such.type"');
    });
  });
}
