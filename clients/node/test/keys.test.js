'use strict';
// Key names, the shard function, configuration, the envelope schema and the scripts' text: no servers.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const protobuf = require('protobufjs');
const fs = require('node:fs');
const crypto = require('node:crypto');
const {
  CANCEL_SCRIPT, ENQUEUE_SCRIPT, ENQUEUE_SCRIPT_SHA1, TaskClient, TaskKeys, crc16, keysFromEnv, validQueueName,
} = require('..');

test('crc16 is the cluster checksum', () => {
  assert.equal(crc16('123456789'), 0x31c3);
  assert.equal(crc16('foo') % 16384, 12182); // CLUSTER KEYSLOT foo
});

test('standard and cluster key names', () => {
  const s = new TaskKeys({ prefix: 'streamfleet', shards: 4 });
  assert.equal(s.shards, 1);
  assert.equal(s.queue('default', 3), 'streamfleet:queue:default');
  assert.equal(s.scheduledOf(s.queue('low')), 'streamfleet:scheduled');
  assert.equal(s.deadLettersOf(s.queue('low')), 'streamfleet:dlq:tasks');
  assert.equal(s.status('abc'), 'streamfleet:task:abc');
  assert.equal(s.unique('report-7'), 'streamfleet:unique:report-7');
  assert.equal(s.cancelled(), 'streamfleet:cancelled');
  assert.equal(s.cancelledOf(s.queue('low')), 'streamfleet:cancelled');
  const c = new TaskKeys({ prefix: 'streamfleet', cluster: true, shards: 4 });
  const stream = c.queue('default', c.shardFor('report-7'));
  assert.equal(stream, '{streamfleet:queue:default:1}'); // docs/task-protocol.md's example
  assert.equal(c.scheduledOf(stream), '{streamfleet:queue:default:1}:scheduled');
  assert.equal(c.pausedFlagOf(stream), '{streamfleet:queue:default:1}:paused');
  assert.equal(c.cancelledOf(stream), '{streamfleet:queue:default:1}:cancelled');
  const picks = new Set(Array.from({ length: 200 }, () => c.shardFor('')));
  assert.deepEqual([...picks].sort(), [0, 1, 2, 3]);
});

test('the cluster schema defaults to the fleet\'s 4 shards', () => {
  // TASK_QUEUE_SHARDS is 4 by default with the cluster schema (components/base config.cc).
  assert.equal(new TaskKeys({ prefix: 'sf', cluster: true }).shards, 4);
  assert.equal(new TaskKeys({ prefix: 'sf', cluster: true, shards: 2 }).shards, 2);
  assert.equal(new TaskKeys({ prefix: 'sf' }).shards, 1);
  assert.equal(new TaskClient(null, { keys: { cluster: true } }).keys.shards, 4);
});

test('statusTtlS must be whole seconds', () => {
  // EXPIRE refuses "1.5": the enqueue script drops that error (the record would never expire) and cancel would
  // reject after it had cancelled. Refused when the client is made instead.
  for (const statusTtlS of [1.5, 86400.5, -1, '600', true, NaN, 2 ** 31 + 1]) {
    assert.throws(() => new TaskClient(null, { statusTtlS }), /statusTtlS must be/, String(statusTtlS));
  }
  for (const statusTtlS of [0, 1, 86400, 2 ** 31]) {
    assert.equal(new TaskClient(null, { statusTtlS }).statusTtlS, statusTtlS);
  }
});

test('queue names', () => {
  for (const good of ['default', 'a', 'x'.repeat(64), 'q_1.b-2']) assert.ok(validQueueName(good), good);
  for (const bad of ['', 'x'.repeat(65), 'Default', 'a:b', 'a b', '{a}']) assert.ok(!validQueueName(bad), bad);
});

test('configuration follows the fleet', () => {
  let k = keysFromEnv({});
  assert.deepEqual([k.prefix, k.cluster, k.shards], ['streamfleet', false, 1]);
  k = keysFromEnv({ STREAMFLEET_KEY_SCHEMA: 'cluster', STREAMFLEET_STREAM_PREFIX: 'sf' });
  assert.deepEqual([k.prefix, k.cluster, k.shards], ['sf', true, 4]);
  k = keysFromEnv({ REDIS_CLUSTER: 'true', TASK_QUEUE_SHARDS: '8' });
  assert.deepEqual([k.cluster, k.shards], [true, 8]);
  for (const env of [{ TASK_QUEUE_SHARDS: '2' }, { REDIS_CLUSTER: 'true', STREAMFLEET_KEY_SCHEMA: 'standard' },
    { STREAMFLEET_KEY_SCHEMA: 'sharded' }, { REDIS_CLUSTER: 'maybe' }]) {
    assert.throws(() => keysFromEnv(env), undefined, JSON.stringify(env));
  }
});

test('lib/task_envelope.json is proto/streamfleet/v1/task.proto', () => {
  const proto = path.join(__dirname, '..', '..', '..', 'proto', 'streamfleet', 'v1', 'task.proto');
  const fresh = protobuf.loadSync(proto).toJSON();
  assert.deepEqual(require('../lib/task_envelope.json'), JSON.parse(JSON.stringify(fresh)),
    'stale: regenerate lib/task_envelope.json (README.md, "The envelope schema")');
});

test('the enqueue and cancel scripts are the document\'s', () => {
  // docs/task-protocol.md has two ```lua blocks: "Enqueue"'s (a unique task, standard schema) and "Cancel"'s.
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'task-protocol.md'), 'utf8');
  const blocks = [...doc.matchAll(/^```lua\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  assert.equal(blocks.length, 2);
  assert.equal(ENQUEUE_SCRIPT, blocks[0]);
  assert.equal(ENQUEUE_SCRIPT_SHA1, crypto.createHash('sha1').update(blocks[0]).digest('hex'));
  assert.equal(CANCEL_SCRIPT, blocks[1]);
});

test('cancel without status records sends nothing', async () => {
  const noRedis = new Proxy({}, { get: (_, name) => { throw new Error(`redis.${String(name)} used`); } });
  assert.deepEqual(await new TaskClient(noRedis, { statusTtlS: 0 }).cancel('abc'), { outcome: 'not_found', state: '' });
  await assert.rejects(new TaskClient(noRedis).cancel(''), /empty task id/);
});
