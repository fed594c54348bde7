'use strict';
// Key names of the task queue: the Node twin of components/taskqueue task_keys.h (docs/task-protocol.md).
const crypto = require('node:crypto');

// Queue names become key names: [a-z0-9_.-]{1,64} (ValidQueueName in components/base task_specs.cc).
const QUEUE_NAME = /^[a-z0-9_.-]{1,64}$/;
const CONSUMER_GROUP = 'workers';
// TASK_QUEUE_SHARDS' default with the cluster schema (components/base config.cc LoadConsumers).
const DEFAULT_CLUSTER_SHARDS = 4;

function validQueueName(name) {
  return typeof name === 'string' && QUEUE_NAME.test(name);
}

// CRC16-CCITT (XMODEM: poly 0x1021, init 0), the checksum Redis Cluster hashes keys with. A unique task's shard
// is crc16(uniqueKey) % shards in every language, so a duplicate lands where the first one did.
function crc16(data) {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(String(data), 'utf8');
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

class TaskKeys {
  constructor({ prefix = 'streamfleet', cluster = false, shards = DEFAULT_CLUSTER_SHARDS } = {}) {
    if (!prefix) throw new Error('empty key prefix');
    this.prefix = prefix;
    this.cluster = Boolean(cluster);
    // Standard mode has exactly one stream per queue, whatever `shards` says (as the C++ TaskKeys). The cluster
    // schema without `shards` has the fleet's default, as the workers without TASK_QUEUE_SHARDS: 1 here would make
    // pause() and cancel() touch shard 0 only while tasks sit on all 4.
    this.shards = this.cluster ? Math.max(1, shards | 0) : 1;
  }

  queue(name, shard = 0) {
    return this.cluster ? `{${this.prefix}:queue:${name}:${shard}}` : `${this.prefix}:queue:${name}`;
  }

  queueShards(name) {
    return Array.from({ length: this.shards }, (_, i) => this.queue(name, i));
  }

  // By the unique key when there is one, else at random.
  shardFor(uniqueKey) {
    if (this.shards === 1) return 0;
    if (uniqueKey) return crc16(uniqueKey) % this.shards;
    return crypto.randomInt(this.shards);
  }

  scheduledOf(stream) { return this.cluster ? `${stream}:scheduled` : this.scheduled(); }
  deadLettersOf(stream) { return this.cluster ? `${stream}:dlq` : this.deadLetters(); }
  pausedFlagOf(stream) { return `${stream}:paused`; } // cluster schema only: what the workers read
  // The cancel markers the workers check when they read from `stream` (cancelled() with the standard schema).
  cancelledOf(stream) { return this.cluster ? `${stream}:cancelled` : this.cancelled(); }
  scheduled() { return `${this.prefix}:scheduled`; }
  deadLetters() { return `${this.prefix}:dlq:tasks`; }
  paused() { return `${this.prefix}:paused`; }
  cancelled() { return `${this.prefix}:cancelled`; } // standard schema: ids of cancelled tasks not yet skipped
  status(id) { return `${this.prefix}:task:${id}`; }
  unique(key) { return `${this.prefix}:unique:${key}`; }
}

// 20 lowercase hex digits, the shape of the ids the C++ producers generate.
function newTaskId() {
  return crypto.randomBytes(10).toString('hex');
}

module.exports = { CONSUMER_GROUP, TaskKeys, crc16, newTaskId, validQueueName };
