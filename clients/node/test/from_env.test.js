'use strict';
// TaskClient.fromEnv with the fleet's TLS and Sentinel variables, against real servers that
// tests/clients/node_client_test.sh starts (tests/clients/fleet.sh, start_tls_and_sentinel): a redis-server with a
// TLS port only that requires client certificates, and a sentinel monitoring the plain one as "mymaster".
const test = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { TaskClient, redisFromEnv } = require('..');

const port = Number(process.env.STREAMFLEET_TEST_REDIS_PORT);
const tlsPort = Number(process.env.STREAMFLEET_TEST_TLS_PORT);
const certs = process.env.STREAMFLEET_TEST_TLS_CERTS;
const sentinelPort = Number(process.env.STREAMFLEET_TEST_SENTINEL_PORT);
if (!port || !tlsPort || !certs || !sentinelPort) {
  throw new Error('STREAMFLEET_TEST_{REDIS,TLS,SENTINEL}_PORT / _TLS_CERTS are not set: run tests/clients/node_client_test.sh BUILD_DIR');
}
const tlsEnv = {
  REDIS_URL: `rediss://127.0.0.1:${tlsPort}`, REDIS_TLS_CA: `${certs}/ca.crt`,
  REDIS_TLS_CERT: `${certs}/client.crt`, REDIS_TLS_KEY: `${certs}/client.key`,
};

// The first connection error of a client that must not get through, then the client closed.
async function refusal(env) {
  const redis = redisFromEnv(env);
  try {
    return await new Promise((resolve, reject) => {
      redis.once('error', resolve);
      redis.once('ready', () => reject(new Error('connected')));
    });
  } finally {
    redis.disconnect();
  }
}

test('a rediss:// URL and the REDIS_TLS_* files reach a TLS-only Redis that asks for a client certificate', async () => {
  const client = TaskClient.fromEnv(tlsEnv);
  try {
    const { id } = await client.enqueue('noop', { over: 'tls' }, { queue: 'unread' });
    const status = await client.status(id);
    assert.equal(status.state, 'pending');
    assert.equal(await client.redis.exists(client.keys.status(id)), 1);
  } finally {
    client.redis.disconnect();
  }
  // REDIS_TLS=true with REDIS_HOST/REDIS_PORT says the same.
  const byHost = TaskClient.fromEnv({ ...tlsEnv, REDIS_URL: '', REDIS_TLS: 'true', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(tlsPort) });
  try {
    assert.equal(await byHost.redis.ping(), 'PONG');
  } finally {
    byHost.redis.disconnect();
  }
});

test('TLS is verified: an unknown CA, a wrong server name and a missing client certificate are refused', async () => {
  const unknownCa = await refusal({ ...tlsEnv, REDIS_TLS_CA: `${certs}/other-ca.crt` });
  assert.match(unknownCa.message, /certificate|self.signed/i);
  const wrongName = await refusal({ ...tlsEnv, REDIS_TLS_SERVER_NAME: 'redis.example.com' });
  assert.match(wrongName.message, /altnames|does not match|Hostname/i);
  // The same server reached at an address its certificate does not name.
  const wrongAddress = await refusal({ ...tlsEnv, REDIS_URL: `rediss://127.0.0.2:${tlsPort}` });
  assert.match(wrongAddress.message, /127\.0\.0\.2|altnames|does not match/i);
  const noClientCert = await refusal({ ...tlsEnv, REDIS_TLS_CERT: '', REDIS_TLS_KEY: '' });
  assert.ok(noClientCert instanceof Error);
  assert.throws(() => redisFromEnv({ REDIS_PORT: String(port), REDIS_TLS_CA: `${certs}/ca.crt` }), /REDIS_TLS=true/);
  assert.throws(() => redisFromEnv({ REDIS_PORT: String(port), REDIS_TLS_KEY: `${certs}/client.key` }), /REDIS_TLS=true/);
  assert.throws(() => redisFromEnv({ ...tlsEnv, REDIS_TLS_KEY: '' }), /together/);
});

test('a reconnect reads rotated certificate files', async () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sf-node-rotate-'));
  // As the kubelet does: written beside, renamed over.
  const put = (from, to) => {
    fs.copyFileSync(path.join(certs, from), path.join(dir, `${to}.new`));
    fs.renameSync(path.join(dir, `${to}.new`), path.join(dir, to));
  };
  put('other-ca.crt', 'ca.crt');
  const redis = redisFromEnv({ ...tlsEnv, REDIS_TLS_CA: path.join(dir, 'ca.crt') });
  try {
    await new Promise((resolve) => redis.once('error', resolve)); // the first CA does not trust the server
    put('ca.crt', 'ca.crt');
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reconnect with the rotated CA within 10 s')), 10000);
      redis.once('ready', () => { clearTimeout(timer); resolve(); });
    });
    assert.equal(await redis.ping(), 'PONG');
  } finally {
    redis.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('behind Redis Sentinel the master the sentinels name gets the task', async () => {
  const client = TaskClient.fromEnv({ REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`, REDIS_SENTINEL_MASTER: 'mymaster' });
  const direct = new Redis({ port });
  try {
    const { id } = await client.enqueue('noop', { via: 'sentinel' }, { queue: 'unread' });
    assert.equal(await direct.exists(client.keys.status(id)), 1, 'the task is on the master the sentinel names');
  } finally {
    client.redis.disconnect();
    direct.disconnect();
  }
  assert.throws(() => redisFromEnv({ REDIS_SENTINELS: `127.0.0.1:${sentinelPort}` }), /REDIS_SENTINEL_MASTER/);
  assert.throws(() => redisFromEnv({ REDIS_SENTINELS: 'nowhere', REDIS_SENTINEL_MASTER: 'm' }), /host:port/);
});
