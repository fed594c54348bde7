'use strict';
// Key names, the shard function, configuration, the envelope schema and the scripts' text: no servers.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const protobuf = require('protobufjs');
const fs = require('node:fs');
const crypto = require('node:crypto');
const Redis = require('ioredis');
const {
  CANCEL_RECORD_SCRIPT, CANCEL_RECORD_SCRIPT_SHA1, CANCEL_SCRIPT, ENQUEUE_SCRIPT, ENQUEUE_SCRIPT_SHA1, TaskClient,
  TaskKeys, crc16, keysFromEnv, redisFromEnv, validQueueName,
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

test('an empty STREAMFLEET_STREAM_PREFIX is refused, as by the fleet and the Python client', () => {
  // Set but empty is a mistake (a templated value that came out empty): the default would write keys the workers
  // of a fleet with another prefix never read.
  assert.throws(() => keysFromEnv({ STREAMFLEET_STREAM_PREFIX: '' }), /STREAMFLEET_STREAM_PREFIX is empty/);
  assert.throws(() => TaskClient.fromEnv({ STREAMFLEET_STREAM_PREFIX: '' }), /STREAMFLEET_STREAM_PREFIX is empty/);
  assert.equal(keysFromEnv({ STREAMFLEET_STREAM_PREFIX: undefined }).prefix, 'streamfleet'); // unset: the default
});

test('the fleet\'s own generation ids and unique keys are refused before anything is sent', async () => {
  // generation.run of generation n is task "generation-<n>" with unique key "generation-<n>": a caller's task there
  // would take its record, or hold its key so the generation's own task is never enqueued.
  const noRedis = new Proxy({}, {
    get: (_, name) => { if (name === 'options') return undefined; throw new Error(`redis.${String(name)} used`); },
  });
  const client = new TaskClient(noRedis);
  for (const reserved of ['generation-7', 'generation-', 'generation-x']) {
    await assert.rejects(client.enqueue('noop', {}, { id: reserved }), /task id .*generation-.*the fleet's own/);
    await assert.rejects(client.enqueueMany([{ type: 'noop', id: reserved }]), /task id .*generation-/);
    await assert.rejects(client.enqueue('noop', {}, { uniqueKey: reserved }), /uniqueKey .*generation-.*fleet's own/);
  }
});

test('lib/task_envelope.json is proto/streamfleet/v1/task.proto', () => {
  const proto = path.join(__dirname, '..', '..', '..', 'proto', 'streamfleet', 'v1', 'task.proto');
  const fresh = protobuf.loadSync(proto).toJSON();
  assert.deepEqual(require('../lib/task_envelope.json'), JSON.parse(JSON.stringify(fresh)),
    'stale: regenerate lib/task_envelope.json (README.md, "The envelope schema")');
});

test('the enqueue and cancel scripts are the document\'s', () => {
  // docs/task-protocol.md has three ```lua blocks: "Enqueue"'s (a unique task, standard schema), "Cancel"'s and the
  // cluster schema's cancel record script, which is sent by SHA-1 as the C++ text: that starts with a newline
  // (tests/clients/protocol_doc_test.py).
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'task-protocol.md'), 'utf8');
  const blocks = [...doc.matchAll(/^```lua\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  assert.equal(blocks.length, 3);
  assert.equal(ENQUEUE_SCRIPT, blocks[0]);
  assert.equal(ENQUEUE_SCRIPT_SHA1, crypto.createHash('sha1').update(blocks[0]).digest('hex'));
  assert.equal(CANCEL_SCRIPT, blocks[1]);
  assert.equal(CANCEL_RECORD_SCRIPT, `\n${blocks[2]}`);
  assert.equal(CANCEL_RECORD_SCRIPT_SHA1, crypto.createHash('sha1').update(`\n${blocks[2]}`).digest('hex'));
});

test('an ioredis keyPrefix is refused: it would send the tasks where no worker reads', () => {
  // ioredis prefixes a command's keys, not the key names in its arguments (the enqueue script's stream and
  // scheduled set): the status record and the unique key would be "app:streamfleet:...", the task elsewhere.
  const clients = [
    new Redis({ lazyConnect: true, keyPrefix: 'app:' }),
    new Redis.Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true, keyPrefix: 'app:' }),
    new Redis.Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true, redisOptions: { keyPrefix: 'app:' } }),
  ];
  for (const redis of clients) {
    assert.throws(() => new TaskClient(redis), /keyPrefix "app:".*keys: \{ prefix \}/);
    redis.disconnect();
  }
  const plain = new Redis({ lazyConnect: true });
  assert.equal(new TaskClient(plain, { keys: { prefix: 'app' } }).keys.prefix, 'app');
  plain.disconnect();
});

test('a REDIS_URL that does not parse is named without its password', () => {
  // Node's ERR_INVALID_URL carries the whole URL in err.input: nothing of the password may reach the error, its
  // properties or a cause (logs print them).
  const cases = [['redis://:abc#def@h', 'redis://***@h'], ['rediss://u:abc/def@h:6380/0', 'rediss://***@h:6380/0']];
  for (const [url, shown] of cases) {
    let err = null;
    try {
      redisFromEnv({ REDIS_URL: url }).disconnect();
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof Error, url);
    assert.ok(err.message.includes(shown), err.message);
    assert.equal(err.cause, undefined);
    const everything = JSON.stringify({ message: err.message, props: Object.fromEntries(Object.entries(err)) });
    for (const secret of ['abc', 'def']) assert.ok(!everything.includes(secret), `${secret} in ${everything}`);
  }
});

test('cancel without status records sends nothing', async () => {
  // Its configuration may be read (the constructor's keyPrefix check); nothing may be sent.
  const noRedis = new Proxy({}, {
    get: (_, name) => { if (name === 'options') return undefined; throw new Error(`redis.${String(name)} used`); },
  });
  assert.deepEqual(await new TaskClient(noRedis, { statusTtlS: 0 }).cancel('abc'), { outcome: 'not_found', state: '' });
  await assert.rejects(new TaskClient(noRedis).cancel(''), /empty task id/);
});
