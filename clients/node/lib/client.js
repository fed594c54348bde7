'use strict';
// Enqueue streamfleet tasks and follow them, talking to Redis directly (docs/task-protocol.md). Same semantics
// as the C++ EnqueueTask / EnqueueTasks (components/taskqueue task_queue.cc):
// - the status record {prefix}:task:{id} ("pending" / "scheduled") is written before the XADD / ZADD, in the same
//   pipeline, so a fast worker's "succeeded" is never overwritten by it; with the cluster key schema the status
//   writes go first in a round trip of their own (a cluster splits a pipeline per master, in no fixed order);
// - status writes are best effort, the XADD / ZADD must succeed;
// - a unique task first takes {prefix}:unique:{key} with SET NX EX; when it is held nothing is enqueued and the
//   result carries the holder's id;
// - statusTtlS (TASK_RESULT_TTL, default 86400) of 0 writes no status record at all.
const { TaskKeys, newTaskId, validQueueName } = require('./keys');
const { encodeEnvelope } = require('./envelope');

const DEFAULT_STATUS_TTL_S = 86400; // TASK_RESULT_TTL's default
const DEFAULT_UNIQUE_FOR_S = 3600;  // EnqueueOptions::unique_ttl_s

function payloadBytes(payload) {
  if (payload === undefined) return Buffer.from('{}');
  if (Buffer.isBuffer(payload)) return payload;
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  return Buffer.from(JSON.stringify(payload), 'utf8'); // JSON by convention: objects are encoded
}

// 0 = now, as in the envelope.
function runAtMs(task, nowMs) {
  if (task.delayMs !== undefined && task.runAt !== undefined) throw new Error('give delayMs or runAt, not both');
  if (task.delayMs !== undefined) {
    if (!(task.delayMs >= 0)) throw new Error('delayMs must be a number >= 0');
    return nowMs + Math.round(task.delayMs);
  }
  if (task.runAt !== undefined) {
    const ms = task.runAt instanceof Date ? task.runAt.getTime() : Number(task.runAt);
    if (!Number.isFinite(ms)) throw new Error('runAt must be a Date or unix milliseconds');
    return Math.round(ms);
  }
  return 0;
}

function check(task) {
  if (!validQueueName(task.queue)) throw new Error(`invalid queue name "${task.queue}"`);
  if (!task.type) throw new Error('empty task type');
}

const isStatusWrite = (cmd) => cmd[0] === 'HSET' || cmd[0] === 'EXPIRE';

class TaskClient {
  // redis: an ioredis Redis (or Cluster). options: { keys: TaskKeys | {prefix, cluster, shards}, statusTtlS, clock }.
  constructor(redis, options = {}) {
    this.redis = redis;
    this.keys = options.keys instanceof TaskKeys ? options.keys : new TaskKeys(options.keys || {});
    this.statusTtlS = options.statusTtlS ?? DEFAULT_STATUS_TTL_S;
    this.clock = options.clock || Date.now;
  }

  // The fleet's own environment variables with its defaults (lib/config.js).
  static fromEnv(env = process.env) {
    return require('./config').clientFromEnv(TaskClient, env);
  }

  // Enqueues one task: now, after delayMs, or at runAt; a unique one only if its key is free.
  async enqueue(type, payload = '{}', options = {}) {
    const task = { queue: 'default', uniqueForS: DEFAULT_UNIQUE_FOR_S, ...options, type, payload };
    check(task);
    const now = this.clock();
    const runAt = runAtMs(task, now);
    const id = task.id || newTaskId();
    if (task.uniqueKey) {
      const key = this.keys.unique(task.uniqueKey);
      const taken = await this.redis.call('SET', key, id, 'NX', 'EX', String(task.uniqueForS));
      if (taken === null) {
        const holder = await this.redis.call('GET', key);
        return { id: holder ?? id, duplicate: true, scheduled: false };
      }
    }
    const cmds = [];
    const result = this.#appendEnqueue(task, id, runAt, now, cmds);
    await this.#run(cmds);
    return result;
  }

  // Many tasks in one round trip (BullMQ's addBulk). Unique tasks are refused, as by the C++ EnqueueTasks (each
  // needs its own SET NX answer first): use enqueue for them. Every task is checked before anything is sent.
  async enqueueMany(tasks) {
    const now = this.clock();
    const full = tasks.map((t) => ({ queue: 'default', payload: '{}', ...t }));
    for (const t of full) {
      check(t);
      if (t.uniqueKey) throw new Error('enqueueMany does not take unique tasks (use enqueue)');
    }
    const runAts = full.map((t) => runAtMs(t, now));
    const cmds = [];
    const results = full.map((t, i) => this.#appendEnqueue(t, t.id || newTaskId(), runAts[i], now, cmds));
    if (cmds.length > 0) await this.#run(cmds);
    return results;
  }

  #appendEnqueue(task, id, runAt, now, cmds) {
    const raw = encodeEnvelope({
      id, type: task.type, payload: payloadBytes(task.payload), attempt: 0, enqueuedAtMs: now, runAtMs: runAt,
      uniqueKey: task.uniqueKey || '', queue: task.queue,
    });
    const scheduled = runAt > now;
    const stream = this.keys.queue(task.queue, this.keys.shardFor(task.uniqueKey || ''));
    if (this.statusTtlS > 0) {
      const key = this.keys.status(id);
      cmds.push(['HSET', key, 'state', scheduled ? 'scheduled' : 'pending', 'type', task.type, 'queue', task.queue,
        'attempts', '0']);
      cmds.push(['EXPIRE', key, String(this.statusTtlS)]);
    }
    if (scheduled) {
      cmds.push(['ZADD', this.keys.scheduledOf(stream), String(runAt),
        Buffer.concat([Buffer.from(`${task.queue}|`, 'utf8'), raw])]);
    } else {
      cmds.push(['XADD', stream, '*', 'e', raw]);
    }
    return { id, duplicate: false, scheduled };
  }

  // Sends the commands in order; the status writes are best effort, the adds must succeed.
  async #run(cmds) {
    if (this.keys.cluster) {
      // Each command on its own (an ioredis Cluster pipeline must stay in one slot); they still go out together.
      const settle = (batch) => Promise.allSettled(batch.map((c) => this.redis.call(...c)));
      await settle(cmds.filter(isStatusWrite));
      const adds = await settle(cmds.filter((c) => !isStatusWrite(c)));
      const failed = adds.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      return;
    }
    const pipeline = this.redis.pipeline();
    for (const c of cmds) pipeline.call(...c);
    const replies = await pipeline.exec();
    replies.forEach(([err], i) => {
      if (err && !isStatusWrite(cmds[i])) throw err;
    });
  }

  // The task's status record, or null (unknown id, expired, or TASK_RESULT_TTL=0). state is pending, scheduled,
  // running, succeeded, retry_scheduled or dead; fields holds every field of the hash.
  async status(id) {
    const fields = await this.redis.hgetall(this.keys.status(id));
    if (!fields || Object.keys(fields).length === 0) return null;
    return {
      state: fields.state,
      attempts: Number(fields.attempts || 0),
      result: fields.result ?? null,
      error: fields.error ?? null,
      fields,
    };
  }

  // Workers stop taking tasks from `queue` (they wait in its stream) until resume.
  async pause(queue) { return this.#setPaused(queue, true); }
  async resume(queue) { return this.#setPaused(queue, false); }

  async pausedQueues() {
    return (await this.redis.smembers(this.keys.paused())).sort();
  }

  async #setPaused(queue, paused) {
    // As SetQueuePaused (components/operations fleet_admin.cc): with the cluster schema the shard flags, which the
    // workers read, first; then the set operators list.
    if (!validQueueName(queue)) throw new Error(`invalid queue name "${queue}"`);
    if (this.keys.cluster) {
      await Promise.all(this.keys.queueShards(queue).map((s) =>
        paused ? this.redis.call('SET', this.keys.pausedFlagOf(s), '1') : this.redis.call('DEL', this.keys.pausedFlagOf(s))));
    }
    await this.redis.call(paused ? 'SADD' : 'SREM', this.keys.paused(), queue);
  }
}

module.exports = { DEFAULT_STATUS_TTL_S, DEFAULT_UNIQUE_FOR_S, TaskClient };
