'use strict';
// streamfleet-client against a real redis-server and real streamfleet-queue-workers, one per key schema
// (tests/clients/node_client_test.sh starts them, tests/clients/fleet.sh, and passes STREAMFLEET_TEST_REDIS_PORT).
// Tasks enqueued here must run, delayed ones wait, unique ones dedupe, paused queues hold their tasks until
// resumed, the status record reads back what the worker wrote, and a cancelled task is acked by the worker without
// running while a started or finished one cannot be cancelled.
const test = require('node:test');
const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');
const Redis = require('ioredis');
const {
  CANCEL_MARKER_TTL_MS, CANCEL_RECORD_SCRIPT_SHA1, ENQUEUE_SCRIPT_SHA1, EnqueueManyError, TaskClient, TaskKeys, crc16,
  decodeEnvelope,
} = require('..');

const port = Number(process.env.STREAMFLEET_TEST_REDIS_PORT);
if (!port) throw new Error('STREAMFLEET_TEST_REDIS_PORT is not set: run tests/clients/node_client_test.sh BUILD_DIR');

async function waitFor(what, condition, timeoutMs = 10000) {
  // Monotonic: a step of the wall clock (NTP on a fresh machine) must not end the wait early.
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await condition()) return;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// "1700000000000-3" as [ms, seq] numbers, to compare stream entry ids.
const entryIdParts = (id) => id.split('-').map(Number);
const entryIdAtLeast = (a, b) => {
  const [x, y] = [entryIdParts(a), entryIdParts(b)];
  return x[0] > y[0] || (x[0] === y[0] && x[1] >= y[1]);
};

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
    // The task's cancel-marker score in the markers of every shard of the queue (one key with the standard schema).
    const markers = async (queue, id) => {
      const out = [];
      for (const s of keys.queueShards(queue)) out.push(await redis.zscore(keys.cancelledOf(s), id));
      return out;
    };
    const noMarkers = Array(keys.shards).fill(null);
    // [shard stream, entry id] of the task's entry in the queue, or null while it has none.
    const entryOf = async (queue, id) => {
      for (const stream of keys.queueShards(queue)) {
        for (const [entryId, f] of await redis.xrangeBuffer(stream, '-', '+')) {
          if (decodeEnvelope(f[1]).id === id) return [stream, entryId.toString()];
        }
      }
      return null;
    };
    // Waits until a worker has read the cancelled task and skipped it (the read script drops the marker of its
    // shard and acks the entry in one step); then the entry must be delivered and acked, and the record must never
    // have moved on from "cancelled".
    const skipped = async (queue, id) => {
      await waitFor(`task ${id} to reach a stream`, async () => (await entryOf(queue, id)) !== null);
      const [stream, entryId] = await entryOf(queue, id);
      await waitFor(`a worker to skip task ${id}`, async () => (await redis.zscore(keys.cancelledOf(stream), id)) === null);
      const groups = await redis.xinfo('GROUPS', stream);
      const group = groups.map((g) => Object.fromEntries(Array.from({ length: g.length / 2 }, (_, i) => [g[2 * i], g[2 * i + 1]])))
        .find((g) => g.name === 'workers');
      assert.ok(entryIdAtLeast(group['last-delivered-id'], entryId), 'the entry was read');
      assert.deepEqual(await redis.xpending(stream, 'workers', entryId, entryId, 1), [], 'the entry is acked');
      const s = await client.status(id);
      assert.equal(s.state, 'cancelled');
      for (const never of ['worker', 'started_at_ms', 'finished_at_ms', 'result']) assert.equal(s.fields[never], undefined, never);
      assert.equal(s.startedAtMs, null);
    };

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
      // The timestamps: the producer's at enqueue, the worker's when it started and finished (one clock here).
      assert.equal(typeof s.enqueuedAtMs, 'number');
      assert.ok(s.enqueuedAtMs <= s.startedAtMs && s.startedAtMs <= s.finishedAtMs,
        JSON.stringify([s.enqueuedAtMs, s.startedAtMs, s.finishedAtMs]));
      assert.equal(s.cancelledAtMs, null);
    });

    await t.test('the status of a waiting task and of an unknown one', async () => {
      const before = Date.now();
      const res = await client.enqueue('noop', '{}', { queue: 'unread' });
      const after = Date.now();
      const s = await client.status(res.id);
      const enqueuedAt = s.fields.enqueued_at_ms;
      assert.deepEqual(s.fields, { state: 'pending', type: 'noop', queue: 'unread', attempts: '0', enqueued_at_ms: enqueuedAt });
      assert.ok(before <= Number(enqueuedAt) && Number(enqueuedAt) <= after, JSON.stringify([before, enqueuedAt, after]));
      assert.equal(s.enqueuedAtMs, Number(enqueuedAt));
      assert.equal(s.startedAtMs, null);
      assert.equal(await client.status('no-such-task'), null);
      const envelope = (await queueEnvelopes(redis, keys, 'unread')).find((e) => e.id === res.id);
      assert.equal(envelope.type, 'noop');
      assert.equal(envelope.queue, 'unread');
      assert.equal(Buffer.from(envelope.payload).toString(), '{}');
      assert.equal(String(envelope.enqueuedAtMs), enqueuedAt); // the same clock reading as the envelope's
    });

    await t.test('bulk status records carry the enqueue time', async () => {
      const results = await client.enqueueMany([{ type: 'noop', queue: 'unread' }, { type: 'noop', queue: 'unread', delayMs: 3600000 }]);
      const fields = [];
      for (const r of results) fields.push((await client.status(r.id)).fields);
      assert.deepEqual(fields.map((f) => f.state), ['pending', 'scheduled']);
      assert.equal(fields[0].enqueued_at_ms, fields[1].enqueued_at_ms); // one clock reading per call
      const envelope = (await queueEnvelopes(redis, keys, 'unread')).find((e) => e.id === results[0].id);
      assert.equal(String(envelope.enqueuedAtMs), fields[0].enqueued_at_ms);
    });

    await t.test('a delayed task waits until due', async () => {
      const enqueued = Date.now();
      const res = await client.enqueue('noop', '{}', { delayMs: 4000 });
      assert.equal(res.scheduled, true);
      assert.equal(await state(res.id), 'scheduled');
      await sleep(800);
      assert.equal(await state(res.id), 'scheduled');
      await succeeded(res.id);
      assert.ok(Date.now() - enqueued >= 4000);
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
      // Held for uniqueForS once the task is in (the cluster schema claims it for 30 s before the add).
      const ttl = await redis.ttl(keys.unique(key));
      assert.ok(ttl > 30 && ttl <= 3600, `key TTL ${ttl}`);
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

    await t.test('a partly refused bulk names the tasks that are in', async () => {
      // A pipeline is not a transaction: the adds Redis takes stay when it refuses another. The error must say which
      // are in, or a retry of the whole batch enqueues those twice.
      const broken = `broken-${process.hrtime.bigint()}`;
      // Redis refuses the XADD (WRONGTYPE): a real refused add.
      for (const s of keys.queueShards(broken)) await redis.set(s, 'not a stream');
      try {
        const err = await client.enqueueMany([
          { type: 'noop', queue: 'unread' },
          { type: 'noop', queue: broken },
          { type: 'noop', queue: 'unread', delayMs: 3600000 },
        ]).then(() => null, (e) => e);
        assert.ok(err instanceof EnqueueManyError, String(err));
        assert.match(err.message, /^1 of 3 tasks not enqueued: WRONGTYPE/);
        assert.match(err.cause.message, /WRONGTYPE/);
        const [first, missing, later] = err.results;
        assert.equal(missing, null);
        assert.deepEqual(err.enqueued, [first, later]);
        assert.deepEqual([first.scheduled, later.scheduled], [false, true]);
        assert.notEqual(await entryOf('unread', first.id), null); // they really are in
        const scheduled = [...new Set(keys.queueShards('unread').map((s) => keys.scheduledOf(s)))];
        let found = false;
        for (const z of scheduled) found ||= (await redis.zrangeBuffer(z, 0, -1)).some((m) => m.includes(later.id));
        assert.ok(found, 'the delayed task is in the scheduled set');
      } finally {
        await redis.del(...keys.queueShards(broken));
      }
    });

    await t.test('a payload that cannot be encoded sends nothing and holds no unique key', async () => {
      const before = (await queueEnvelopes(redis, keys, 'unread')).length;
      const uniqueKey = `node-bigint-${process.hrtime.bigint()}`;
      await assert.rejects(client.enqueue('noop', { n: 1n }, { queue: 'unread' }), TypeError);
      // The cluster schema's claim comes before the add: it must not be taken for a task that cannot be built.
      await assert.rejects(client.enqueue('noop', { n: 1n }, { queue: 'unread', uniqueKey }), TypeError);
      assert.equal(await redis.exists(keys.unique(uniqueKey)), 0);
      assert.equal((await queueEnvelopes(redis, keys, 'unread')).length, before);
    });

    await t.test('uniqueForS is at most 30 days', async () => {
      // Past what SET ... EX takes (1e16) the script's last step would fail after the add; the task API's bound.
      const before = (await queueEnvelopes(redis, keys, 'unread')).length;
      const uniqueKey = `node-long-${process.hrtime.bigint()}`;
      for (const uniqueForS of [1e16, 30 * 86400 + 1]) {
        const options = { queue: 'unread', uniqueKey, uniqueForS };
        await assert.rejects(client.enqueue('noop', {}, options), /uniqueForS must be/);
      }
      assert.equal((await queueEnvelopes(redis, keys, 'unread')).length, before);
      assert.equal(await redis.exists(keys.unique(uniqueKey)), 0);
      const res = await client.enqueue('noop', {}, { queue: 'unread', uniqueKey, uniqueForS: 30 * 86400 });
      assert.equal(res.duplicate, false);
      const ttl = await redis.ttl(keys.unique(uniqueKey));
      assert.ok(ttl > 30 * 86400 - 10 && ttl <= 30 * 86400, `key TTL ${ttl}`);
    });

    await t.test('ids and unique keys are what the task API takes', async () => {
      // Visible ASCII, 1 to 200 (ids without '/': GET/DELETE /v1/tasks/{id}); an id ending in ":generation" would
      // make its record the key a worker keeps for another task's generation.
      const before = (await queueEnvelopes(redis, keys, 'unread')).length;
      const victim = 'a'.repeat(20);
      for (const id of [`${victim}:generation`, 'has space', 'a/b', 'x'.repeat(201), 'caf\u00e9', 'tab\t', 42]) {
        await assert.rejects(client.enqueue('noop', {}, { queue: 'unread', id }), /task id/, String(id));
        await assert.rejects(client.enqueueMany([{ type: 'noop', queue: 'unread', id }]), /task id/, String(id));
        assert.equal(await redis.exists(keys.status(String(id))), 0);
      }
      for (const uniqueKey of ['has space', 'x'.repeat(201), 'na\u00efve', 7]) {
        await assert.rejects(client.enqueue('noop', {}, { queue: 'unread', uniqueKey }), /uniqueKey/);
        assert.equal(await redis.exists(keys.unique(String(uniqueKey))), 0);
      }
      assert.equal((await queueEnvelopes(redis, keys, 'unread')).length, before);
      // The edges the task API takes are taken here too.
      const stamp = process.hrtime.bigint();
      for (const id of [`node-${stamp}-`.padEnd(200, 'x'), `node:${stamp}~!$%&'()*+,;=?@[]`]) {
        assert.equal((await client.enqueue('noop', {}, { queue: 'unread', id, uniqueKey: id })).id, id);
        assert.equal(await state(id), 'pending');
      }
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

    await t.test('a cancelled task never runs', async () => {
      await client.pause('low');
      let doomed;
      let other;
      try {
        // A slot already blocked in XREADGROUP on "low" re-reads the paused set after its BLOCK (500 ms): after this
        // no worker reads "low", so both tasks wait unread in its stream.
        await sleep(700);
        doomed = await client.enqueue('noop', '{}', { queue: 'low' });
        other = await client.enqueue('noop', '{}', { queue: 'low' });
        const before = Date.now();
        assert.deepEqual(await client.cancel(doomed.id), { outcome: 'cancelled', state: 'pending' });
        const after = Date.now();
        const s = await client.status(doomed.id);
        assert.equal(s.state, 'cancelled');
        assert.ok(before <= s.cancelledAtMs && s.cancelledAtMs <= after);
        assert.deepEqual([s.fields.type, s.fields.queue], ['noop', 'low']); // HSET keeps the earlier fields
        // Marked in every shard of the queue (the task's shard is not recorded), scored by the cancel time.
        assert.deepEqual(await markers('low', doomed.id), Array(keys.shards).fill(String(s.cancelledAtMs)));
        // A second cancel changes nothing.
        assert.deepEqual(await client.cancel(doomed.id), { outcome: 'already_cancelled', state: 'cancelled' });
        assert.deepEqual((await client.status(doomed.id)).fields, s.fields);
      } finally {
        await client.resume('low');
      }
      await succeeded(other.id);
      await skipped('low', doomed.id);
    });

    await t.test('a delayed task cancelled before it is due never runs', async () => {
      const doomed = await client.enqueue('noop', '{}', { delayMs: 1000 });
      const other = await client.enqueue('noop', '{}', { delayMs: 1000 });
      assert.deepEqual(await client.cancel(doomed.id), { outcome: 'cancelled', state: 'scheduled' });
      assert.equal(await state(doomed.id), 'cancelled');
      await succeeded(other.id);
      // It still comes due and moves to its stream; the worker that reads it there skips it.
      await skipped('default', doomed.id);
    });

    await t.test('cancelling a finished task is too late and changes nothing', async () => {
      const ok = await client.enqueue('noop');
      const dead = await client.enqueue('no.such.type');
      await succeeded(ok.id);
      await waitFor('the unknown type to be dead', async () => (await state(dead.id)) === 'dead');
      for (const [id, st] of [[ok.id, 'succeeded'], [dead.id, 'dead']]) {
        const before = await client.status(id);
        await redis.expire(keys.status(id), 1000); // a cancel that wrote anything would reset the TTL
        assert.deepEqual(await client.cancel(id), { outcome: 'too_late', state: st });
        assert.deepEqual((await client.status(id)).fields, before.fields);
        assert.ok((await redis.ttl(keys.status(id))) <= 1000);
        assert.deepEqual(await markers('default', id), noMarkers);
      }
    });

    await t.test('cancelling an unknown task is not found', async () => {
      assert.deepEqual(await client.cancel('no-such-task'), { outcome: 'not_found', state: '' });
      assert.equal(await client.status('no-such-task'), null); // nothing created
      assert.deepEqual(await markers('default', 'no-such-task'), noMarkers);
      await assert.rejects(client.cancel(''));
    });

    await t.test('which states can be cancelled', async () => {
      // Records written by hand (no stream entry) for the states a producer cannot bring about on demand.
      const expected = {
        pending: 'cancelled', scheduled: 'cancelled', retry_scheduled: 'cancelled', running: 'too_late',
        succeeded: 'too_late', dead: 'too_late', cancelled: 'already_cancelled',
      };
      for (const [st, outcome] of Object.entries(expected)) {
        const id = `node-state-${st}-${process.hrtime.bigint()}`;
        await redis.hset(keys.status(id), { state: st, queue: 'unread' });
        try {
          assert.deepEqual(await client.cancel(id), { outcome, state: st });
          assert.equal(await state(id), outcome === 'too_late' ? st : 'cancelled', st);
          const marked = await markers('unread', id);
          if (outcome === 'cancelled') assert.ok(marked.every((m) => m !== null), st);
          else assert.deepEqual(marked, noMarkers, st);
        } finally {
          await redis.del(keys.status(id));
          for (const s of keys.queueShards('unread')) await redis.zrem(keys.cancelledOf(s), id);
        }
      }
    });

    await t.test('cancel writes its clock and TTL and drops month-old markers', async () => {
      const now = Date.now();
      const fixed = new TaskClient(redis, { keys, statusTtlS: 600, clock: () => now });
      const res = await fixed.enqueue('noop', '{}', { queue: 'unread' });
      const [stale, edge] = [`node-stale-${now}`, `node-edge-${now}`];
      const shards = keys.queueShards('unread');
      for (const s of shards) {
        await redis.zadd(keys.cancelledOf(s), now - CANCEL_MARKER_TTL_MS - 1, stale, now - CANCEL_MARKER_TTL_MS, edge);
      }
      try {
        assert.deepEqual(await fixed.cancel(res.id), { outcome: 'cancelled', state: 'pending' });
        const s = await fixed.status(res.id);
        assert.deepEqual([s.state, s.cancelledAtMs, s.enqueuedAtMs], ['cancelled', now, now]);
        const ttl = await redis.ttl(keys.status(res.id));
        assert.ok(ttl > 590 && ttl <= 600, String(ttl));
        assert.deepEqual(await markers('unread', res.id), Array(shards.length).fill(String(now)));
        for (const sh of shards) {
          assert.equal(await redis.zscore(keys.cancelledOf(sh), stale), null); // older than 30 days: dropped
          assert.notEqual(await redis.zscore(keys.cancelledOf(sh), edge), null); // exactly 30 days: kept
        }
      } finally {
        for (const sh of shards) await redis.zrem(keys.cancelledOf(sh), stale, edge, res.id);
      }
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

test('statusTtlS 0: no record, so nothing to cancel and no marker written', async (t) => {
  const redis = new Redis({ port });
  t.after(() => redis.quit());
  const client = new TaskClient(redis, { keys: new TaskKeys({ prefix: 'streamfleet' }), statusTtlS: 0 });
  const before = await redis.xlen('streamfleet:queue:unread');
  const res = await client.enqueue('noop', { status: 'off' }, { queue: 'unread' });
  assert.equal(await client.status(res.id), null);
  assert.equal(await redis.xlen('streamfleet:queue:unread'), before + 1);
  assert.deepEqual(await client.cancel(res.id), { outcome: 'not_found', state: '' });
  assert.equal(await redis.zscore(client.keys.cancelled(), res.id), null);
  assert.equal(await client.status(res.id), null);
});

test('a failed add releases the unique key it took, so a retry enqueues instead of answering duplicate', async (t) => {
  const redis = new Redis({ port });
  t.after(() => redis.quit());
  for (const keys of [new TaskKeys({ prefix: 'streamfleet' }), new TaskKeys({ prefix: 'sfc', cluster: true, shards: 4 })]) {
    const client = new TaskClient(redis, { keys });
    const uniqueKey = `release-${keys.cluster ? 'c' : 's'}-${Date.now()}`;
    // A string where the queue's stream should be: Redis refuses the XADD (WRONGTYPE), a real failed add.
    const stream = keys.queue('unread', keys.shardFor(uniqueKey));
    await redis.set(stream, 'not a stream');
    const failedId = 'e'.repeat(20);
    await assert.rejects(client.enqueue('noop', {}, { queue: 'unread', uniqueKey, id: failedId }), /WRONGTYPE/);
    assert.equal(await redis.exists(keys.unique(uniqueKey)), 0);
    // One script on the standard schema: nothing of the task is written (cluster: the status went first).
    if (!keys.cluster) assert.equal(await redis.exists(keys.status(failedId)), 0);
    await redis.del(stream);
    const retry = await client.enqueue('noop', {}, { queue: 'unread', uniqueKey });
    assert.equal(retry.duplicate, false);
    assert.equal(await redis.get(keys.unique(uniqueKey)), retry.id);
    assert.equal((await queueEnvelopes(redis, keys, 'unread')).filter((e) => e.id === retry.id).length, 1);
  }
});

test('a unique task is one script, also on a server that does not have it yet', async (t) => {
  const redis = new Redis({ port });
  t.after(() => redis.quit());
  const keys = new TaskKeys({ prefix: 'streamfleet' });
  const client = new TaskClient(redis, { keys, statusTtlS: 600 });
  // A fresh or flushed server answers EVALSHA with NOSCRIPT: the client sends the script's text instead.
  await redis.script('FLUSH');
  const uniqueKey = `noscript-${Date.now()}`;
  const first = await client.enqueue('noop', { n: 1 }, { queue: 'unread', uniqueKey, delayMs: 60000 });
  assert.equal(first.scheduled, true);
  assert.deepEqual(await redis.script('EXISTS', ENQUEUE_SCRIPT_SHA1), [1]);
  assert.equal(await redis.get(keys.unique(uniqueKey)), first.id);
  assert.equal(await redis.hget(keys.status(first.id), 'state'), 'scheduled');
  const ttl = await redis.ttl(keys.status(first.id));
  assert.ok(ttl > 0 && ttl <= 600, `status TTL ${ttl}`);
  const members = (await redis.zrangeBuffer(keys.scheduled(), 0, -1)).filter((m) => m.includes(first.id));
  assert.equal(members.length, 1);
  assert.equal(members[0].subarray(0, 7).toString(), 'unread|');
  const envelope = decodeEnvelope(members[0].subarray(7));
  assert.deepEqual([envelope.id, envelope.uniqueKey], [first.id, uniqueKey]);
  // The duplicate, through EVALSHA now, writes nothing and names the holder.
  const again = await client.enqueue('noop', { n: 2 }, { queue: 'unread', uniqueKey, id: 'f'.repeat(20) });
  assert.deepEqual([again.duplicate, again.id], [true, first.id]);
  assert.equal(await redis.exists(keys.status('f'.repeat(20))), 0);
  assert.equal((await redis.zrangeBuffer(keys.scheduled(), 0, -1)).filter((m) => m.includes(uniqueKey)).length, 1);
});

test('unknown options, a runAt in seconds and a run more than a year ahead are refused before anything is sent', async () => {
  // Its configuration may be read (the constructor's keyPrefix check); nothing may be sent.
  const noRedis = new Proxy({}, {
    get: (_, name) => { if (name === 'options') return undefined; throw new Error(`redis.${String(name)} used`); },
  });
  const client = new TaskClient(noRedis);
  // The task API's and Python's spellings: silently dropped, the task would run now, or twice.
  await assert.rejects(client.enqueue('noop', {}, { delay: 30 }), /unknown enqueue option "delay"/);
  await assert.rejects(client.enqueue('noop', {}, { unique_key: 'k' }), /unknown enqueue option "unique_key"/);
  await assert.rejects(client.enqueue('noop', {}, { uniqueFor: 600 }), /unknown enqueue option "uniqueFor"/);
  for (const uniqueForS of [0, -5, 1.5, '600']) {
    await assert.rejects(client.enqueue('noop', {}, { uniqueKey: 'k', uniqueForS }), /uniqueForS must be a positive/);
  }
  await assert.rejects(client.enqueueMany([{ type: 'noop', run_at: 5 }]), /unknown task field "run_at"/);
  await assert.rejects(client.enqueue('noop', {}, { runAt: Math.floor(Date.now() / 1000) + 60 }), /seconds\?/);
  await assert.rejects(client.enqueue('noop', {}, { runAt: Date.now() + 400 * 86400000 }), /more than a year/);
  await assert.rejects(client.enqueue('noop', {}, { delayMs: 400 * 86400000 }), /from 0 to a year/);
});

test('a queue given as undefined is the default queue, as when left out', async (t) => {
  const redis = new Redis({ port });
  t.after(() => redis.quit());
  const keys = new TaskKeys({ prefix: 'undefq' }); // a prefix no worker of this file reads
  const client = new TaskClient(redis, { keys });
  const cfg = {}; // an app's settings without a queue
  const res = await client.enqueue('noop', '{}', { queue: cfg.queue });
  const [many] = await client.enqueueMany([{ type: 'noop', queue: cfg.queue, payload: undefined }]);
  const envelopes = await queueEnvelopes(redis, keys, 'default');
  assert.deepEqual(envelopes.map((e) => e.id).sort(), [res.id, many.id].sort());
  for (const e of envelopes) assert.equal(e.queue, 'default');
});

test('a null payload is stored as {}, as the task API and the PHP client store it', async (t) => {
  const redis = new Redis({ port });
  t.after(() => redis.quit());
  const keys = new TaskKeys({ prefix: 'streamfleet' });
  const client = new TaskClient(redis, { keys });
  const res = await client.enqueue('noop', null, { queue: 'unread' });
  const [many] = await client.enqueueMany([{ type: 'noop', payload: null, queue: 'unread' }]);
  const envelopes = await queueEnvelopes(redis, keys, 'unread');
  for (const id of [res.id, many.id]) {
    assert.equal(Buffer.from(envelopes.find((e) => e.id === id).payload).toString(), '{}');
  }
});

test('cluster keys default to the fleet\'s 4 shards: pause and cancel reach every shard', async (t) => {
  // The "sfc" workers leave TASK_QUEUE_SHARDS at its default: a client made with cluster: true alone must pause and
  // cancel on every shard their producers use, not on shard 0 only.
  const redis = new Redis({ port });
  t.after(() => redis.quit());
  const fleet = new TaskKeys({ prefix: 'sfc', cluster: true, shards: 4 });
  const client = new TaskClient(redis, { keys: { prefix: 'sfc', cluster: true } });
  assert.deepEqual(client.keys.queueShards('unread'), fleet.queueShards('unread'));
  await client.pause('unread');
  try {
    for (const s of fleet.queueShards('unread')) assert.equal(await redis.get(fleet.pausedFlagOf(s)), '1');
  } finally {
    await client.resume('unread');
  }
  for (const s of fleet.queueShards('unread')) assert.equal(await redis.exists(fleet.pausedFlagOf(s)), 0);
  const res = await new TaskClient(redis, { keys: fleet }).enqueue('noop', {}, { queue: 'unread' });
  assert.deepEqual(await client.cancel(res.id), { outcome: 'cancelled', state: 'pending' });
  for (const s of fleet.queueShards('unread')) assert.notEqual(await redis.zscore(fleet.cancelledOf(s), res.id), null);
});

test('a cluster cancel checks the record again as it writes it: what happened since the HMGET decides', async (t) => {
  // The cluster schema reads the record (HMGET), adds the markers, then writes the record: a worker can take the task
  // in between, another cancel can get there first, the record can expire. The record is written by a script that
  // checks the state again (docs/task-protocol.md, "Cancel"), as the C++ CancelSharded.
  const redis = new Redis({ port });
  t.after(() => redis.quit());
  const keys = new TaskKeys({ prefix: 'sfc', cluster: true, shards: 4 });
  // The real connection; once the cancel markers of every shard are in, race.change(id) runs, as a worker or another
  // cancel would between the markers and the record.
  const race = { change: null, marked: 0, changed: 0 };
  const conn = new Proxy(redis, {
    get(target, name) {
      if (name !== 'call') return typeof target[name] === 'function' ? target[name].bind(target) : target[name];
      return async (...args) => {
        const reply = await redis.call(...args);
        if (args[0] === 'ZADD' && String(args[1]).endsWith(':cancelled') && ++race.marked === keys.shards) {
          race.changed++;
          if (race.change) await race.change(args[3]);
        }
        return reply;
      };
    },
  });
  const client = new TaskClient(conn, { keys });
  const producer = new TaskClient(redis, { keys });
  const markers = (id) => Promise.all(keys.queueShards('unread').map((s) => redis.zscore(keys.cancelledOf(s), id)));
  await redis.script('FLUSH'); // the record script through EVAL once, then EVALSHA
  const cases = [
    ['the task succeeded', (id) => redis.hset(keys.status(id), 'state', 'succeeded', 'result', '', 'finished_at_ms', 1),
      { outcome: 'too_late', state: 'succeeded' }, 'succeeded'],
    ['another cancel got there first', (id) => redis.hset(keys.status(id), 'state', 'cancelled', 'cancelled_at_ms', 1),
      { outcome: 'already_cancelled', state: 'cancelled' }, 'cancelled'],
    ['the record expired', (id) => redis.del(keys.status(id)), { outcome: 'not_found', state: '' }, null],
  ];
  for (const [what, change, answer, stateAfter] of cases) {
    const { id } = await producer.enqueue('noop', {}, { queue: 'unread' });
    Object.assign(race, { change, marked: 0, changed: 0 });
    assert.deepEqual(await client.cancel(id), answer, what);
    assert.equal(race.changed, 1, `${what}: the change came between the markers and the record`);
    // The record script wrote nothing: the record says what the change left, no cancel time of this cancel's, and a
    // record that is gone is not made again.
    assert.equal(await redis.hget(keys.status(id), 'state'), stateAfter, what);
    assert.ok([null, '1'].includes(await redis.hget(keys.status(id), 'cancelled_at_ms')), what);
    if (answer.outcome === 'already_cancelled') {
      // The markers are the other cancel's too: kept.
      assert.ok((await markers(id)).every((m) => m !== null), what);
    } else {
      // Too late, or gone: taken back (a retry of the task would be skipped).
      assert.deepEqual(await markers(id), Array(keys.shards).fill(null), what);
    }
  }
  assert.deepEqual(await redis.script('EXISTS', CANCEL_RECORD_SCRIPT_SHA1), [1]);
  // Nothing in between: cancelled, marked in every shard.
  Object.assign(race, { change: null, marked: 0, changed: 0 });
  const { id } = await producer.enqueue('noop', {}, { queue: 'unread' });
  assert.deepEqual(await client.cancel(id), { outcome: 'cancelled', state: 'pending' });
  assert.equal(await redis.hget(keys.status(id), 'state'), 'cancelled');
  assert.ok((await markers(id)).every((m) => m !== null));
});

test('a cluster claim tries again when the holder runs out between the SET NX and the GET', async (t) => {
  // The key held at the SET NX and gone at the GET (it ran out in between): the task must be enqueued, not answered
  // "duplicate" of an id no task has.
  const redis = new Redis({ port });
  t.after(() => redis.quit());
  const keys = new TaskKeys({ prefix: 'sfc', cluster: true, shards: 4 });
  // The real connection; after a refused SET NX the key is deleted (another client's key running out), `times`
  // times, and if `retaken` taken again before each SET NX after the first refusal.
  const race = { times: 1, retaken: false, refused: 0 };
  const isClaim = (args) => args[0] === 'SET' && args.includes('NX');
  const conn = new Proxy(redis, {
    get(target, name) {
      if (name !== 'call') return typeof target[name] === 'function' ? target[name].bind(target) : target[name];
      return async (...args) => {
        if (isClaim(args) && race.retaken && race.refused > 0 && race.refused < race.times) {
          await redis.set(args[1], 'another-producer');
        }
        const reply = await redis.call(...args);
        if (isClaim(args) && reply === null && race.refused < race.times) {
          race.refused++;
          await redis.del(args[1]);
        }
        return reply;
      };
    },
  });
  const client = new TaskClient(conn, { keys });
  const uniqueKey = `runs-out-${process.hrtime.bigint()}`;
  await redis.set(keys.unique(uniqueKey), 'ghost', 'EX', 30);
  const res = await client.enqueue('noop', {}, { queue: 'unread', uniqueKey });
  assert.deepEqual([res.duplicate, race.refused], [false, 1]);
  assert.equal(await redis.get(keys.unique(uniqueKey)), res.id);
  assert.equal((await queueEnvelopes(redis, keys, 'unread')).filter((e) => e.id === res.id).length, 1);
  // A key that keeps changing hands: a bounded number of tries, then an error, nothing enqueued.
  Object.assign(race, { times: 3, retaken: true, refused: 0 });
  const churn = `churn-${process.hrtime.bigint()}`;
  await redis.set(keys.unique(churn), 'ghost', 'EX', 30);
  await assert.rejects(client.enqueue('noop', {}, { queue: 'unread', uniqueKey: churn, id: churn }), /changed hands/);
  assert.equal(race.refused, 3);
  assert.equal(await redis.exists(keys.unique(churn)), 0);
  assert.equal(await redis.exists(keys.status(churn)), 0);
});
