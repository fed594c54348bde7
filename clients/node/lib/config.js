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
  // Set but empty is an error, as for the fleet's processes and the Python client: falling back to the default
  // would write keys the workers of a fleet with another prefix never read.
  const prefix = env.STREAMFLEET_STREAM_PREFIX ?? 'streamfleet';
  if (prefix === '') {
    throw new Error('STREAMFLEET_STREAM_PREFIX is empty: give a prefix, or leave it unset for "streamfleet"');
  }
  const redisCluster = bool(env, 'REDIS_CLUSTER');
  const schema = env.STREAMFLEET_KEY_SCHEMA || (redisCluster ? 'cluster' : 'standard');
  if (schema !== 'standard' && schema !== 'cluster') throw new Error(`STREAMFLEET_KEY_SCHEMA=${schema}: expected standard or cluster`);
  if (redisCluster && schema === 'standard') throw new Error('STREAMFLEET_KEY_SCHEMA=standard with REDIS_CLUSTER=true');
  const cluster = schema === 'cluster';
  const shards = int(env, 'TASK_QUEUE_SHARDS', cluster ? 4 : 1, 1, 1024);
  if (!cluster && shards !== 1) throw new Error('TASK_QUEUE_SHARDS must be 1 unless STREAMFLEET_KEY_SCHEMA=cluster');
  return new TaskKeys({ prefix, cluster, shards });
}

// REDIS_TLS (or a rediss:// REDIS_URL), REDIS_TLS_CA/CERT/KEY, REDIS_TLS_SERVER_NAME and REDIS_TLS_INSECURE as
// the fleet's processes read them, as the `tls` options ioredis hands to Node's tls.connect (undefined: no TLS).
// Without REDIS_TLS_CA, Node's own trust store applies.
function tlsFromEnv(env, urlSaysTls) {
  const ca = env.REDIS_TLS_CA || '';
  const cert = env.REDIS_TLS_CERT || '';
  const key = env.REDIS_TLS_KEY || '';
  if (!urlSaysTls && !bool(env, 'REDIS_TLS')) {
    if (ca || cert || key) throw new Error('REDIS_TLS_CA / REDIS_TLS_CERT / REDIS_TLS_KEY are set: set REDIS_TLS=true (or a rediss:// REDIS_URL)');
    return undefined;
  }
  if (Boolean(cert) !== Boolean(key)) throw new Error('REDIS_TLS_CERT and REDIS_TLS_KEY are set together');
  const fs = require('node:fs');
  const tls = {};
  // Read at every (re)connect, as the fleet's processes do, so a rotated certificate (a Kubernetes Secret
  // updated in place) needs no restart: ioredis copies these options (Object.assign calls the getters) for
  // each connection it opens.
  const fromFile = (option, path) => Object.defineProperty(tls, option, {
    enumerable: true, get: () => fs.readFileSync(path),
  });
  if (ca) fromFile('ca', ca);
  if (cert) {
    fromFile('cert', cert);
    fromFile('key', key);
  }
  // Sent as SNI and verified in the certificate instead of the host connected to.
  if (env.REDIS_TLS_SERVER_NAME) tls.servername = env.REDIS_TLS_SERVER_NAME;
  if (bool(env, 'REDIS_TLS_INSECURE')) tls.rejectUnauthorized = false;
  return tls;
}

// REDIS_SENTINELS ("host:port,host:port") as ioredis' sentinels, or [] without it.
function sentinelsFromEnv(env) {
  return (env.REDIS_SENTINELS || '').split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const colon = s.lastIndexOf(':');
    const port = Number(s.slice(colon + 1));
    if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`REDIS_SENTINELS: ${s} is not host:port`);
    }
    return { host: s.slice(0, colon), port };
  });
}

// The URL for an error message: whatever stands between the scheme and the last '@' (a user and password, however
// malformed) replaced.
function redactedUrl(url) {
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const sep = url.indexOf('://');
  return `${sep >= 0 && sep < at ? url.slice(0, sep + 3) : ''}***@${url.slice(at + 1)}`;
}

// REDIS_URL (with REDIS_CLUSTER=true a seed list) or REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD,
// REDIS_DB; TLS (tlsFromEnv) and Redis Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_MASTER,
// REDIS_SENTINEL_USERNAME/PASSWORD: the master is asked of the sentinels, and a failover followed, by ioredis).
function redisFromEnv(env) {
  const Redis = require('ioredis');
  let options;
  let urlSaysTls = false;
  if (env.REDIS_URL) {
    let u;
    try {
      u = new URL(env.REDIS_URL.split(',')[0]); // the first seed: a cluster client discovers the rest
    } catch {
      // Node's ERR_INVALID_URL carries the whole URL in err.input, password included (one with '#', '/' or '?'
      // in it, not percent-encoded, is what fails to parse): a new error, without the original as its cause.
      throw new Error(`REDIS_URL ${redactedUrl(env.REDIS_URL)} is not redis(s)://[[user]:password@]host[:port][/db] ` +
        "(percent-encode '#', '/', '?' and '@' in a password)");
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`REDIS_URL: ${u.protocol} is not redis: or rediss:`);
    urlSaysTls = u.protocol === 'rediss:';
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
  const tls = tlsFromEnv(env, urlSaysTls);
  const sentinels = sentinelsFromEnv(env);
  const cluster = bool(env, 'REDIS_CLUSTER');
  if (sentinels.length > 0) {
    if (!env.REDIS_SENTINEL_MASTER) throw new Error('REDIS_SENTINEL_MASTER: the master name the sentinels monitor');
    if (cluster) throw new Error('REDIS_SENTINELS is unset with REDIS_CLUSTER=true');
    const { host, port, ...auth } = options; // the sentinels say where the master is
    return new Redis({
      ...auth, sentinels, name: env.REDIS_SENTINEL_MASTER,
      sentinelUsername: env.REDIS_SENTINEL_USERNAME || undefined,
      sentinelPassword: env.REDIS_SENTINEL_PASSWORD || undefined,
      // As the fleet does: TLS to the sentinels too, and to the master they name.
      ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
    });
  }
  if (cluster) {
    return new Redis.Cluster([{ host: options.host, port: options.port }],
      { redisOptions: { username: options.username, password: options.password, tls } });
  }
  return new Redis({ ...options, tls });
}

function clientFromEnv(TaskClient, env) {
  const statusTtlS = int(env, 'TASK_RESULT_TTL', 86400, 0, 2 ** 31);
  // Before the connection: ioredis connects as it is made, and a refused variable after that would leave it open.
  const keys = keysFromEnv(env);
  return new TaskClient(redisFromEnv(env), { keys, statusTtlS });
}

module.exports = { clientFromEnv, keysFromEnv, redisFromEnv };
