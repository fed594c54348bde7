'use strict';
// TaskClient.fromEnv: the fleet's own environment variables and defaults (docs/CONFIGURATION.md), so a Node
// producer configured like the fleet's processes writes the keys they read.
const { TaskKeys } = require('./keys');

function bool(env, name) {
  const v = env[name] ?? '';
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new Error(`${name}=${v}: expected true or false`);
}

function int(env, name, def, low, high) {
  const v = env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < low || n > high) throw new Error(`${name}=${v}: expected ${low}..${high}`);
  return n;
}

// STREAMFLEET_STREAM_PREFIX, STREAMFLEET_KEY_SCHEMA (cluster by default with REDIS_CLUSTER=true) and
// TASK_QUEUE_SHARDS (4 by default with the cluster schema, else 1), as components/base config.cc reads them.
function keysFromEnv(env) {
  const prefix = env.STREAMFLEET_STREAM_PREFIX || 'streamfleet';
  const redisCluster = bool(env, 'REDIS_CLUSTER');
  const schema = env.STREAMFLEET_KEY_SCHEMA || (redisCluster ? 'cluster' : 'standard');
  if (schema !== 'standard' && schema !== 'cluster') throw new Error(`STREAMFLEET_KEY_SCHEMA=${schema}: expected standard or cluster`);
  if (redisCluster && schema === 'standard') throw new Error('STREAMFLEET_KEY_SCHEMA=standard with REDIS_CLUSTER=true');
  const cluster = schema === 'cluster';
  const shards = int(env, 'TASK_QUEUE_SHARDS', cluster ? 4 : 1, 1, 1024);
  if (!cluster && shards !== 1) throw new Error('TASK_QUEUE_SHARDS must be 1 unless STREAMFLEET_KEY_SCHEMA=cluster');
  return new TaskKeys({ prefix, cluster, shards });
}

// REDIS_URL (with REDIS_CLUSTER=true a seed list) or REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB.
function redisFromEnv(env) {
  const Redis = require('ioredis');
  let options;
  if (env.REDIS_URL) {
    const u = new URL(env.REDIS_URL.split(',')[0]); // the first seed: a cluster client discovers the rest
    options = {
      host: u.hostname || '127.0.0.1', port: Number(u.port || 6379),
      username: u.username ? decodeURIComponent(u.username) : undefined,
      password: u.password ? decodeURIComponent(u.password) : undefined,
      db: Number(u.pathname.replace('/', '') || 0),
    };
  } else {
    options = {
      host: env.REDIS_HOST || '127.0.0.1', port: Number(env.REDIS_PORT || 6379),
      username: env.REDIS_USERNAME || undefined, password: env.REDIS_PASSWORD || undefined,
      db: Number(env.REDIS_DB || 0),
    };
  }
  if (bool(env, 'REDIS_CLUSTER')) {
    return new Redis.Cluster([{ host: options.host, port: options.port }],
      { redisOptions: { username: options.username, password: options.password } });
  }
  return new Redis(options);
}

function clientFromEnv(TaskClient, env) {
  const statusTtlS = int(env, 'TASK_RESULT_TTL', 86400, 0, 2 ** 31);
  return new TaskClient(redisFromEnv(env), { keys: keysFromEnv(env), statusTtlS });
}

module.exports = { clientFromEnv, keysFromEnv, redisFromEnv };
