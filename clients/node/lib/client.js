'use strict';
// Enqueue streamfleet tasks and follow them, talking to Redis directly (docs/task-protocol.md). Same semantics
// as the C++ EnqueueTask / EnqueueTasks (components/taskqueue task_queue.cc):
// - the status record {prefix}:task:{id} ("pending" / "scheduled") is written before the XADD / ZADD, in the same
//   pipeline, so a fast worker's "succeeded" is never overwritten by it; with the cluster key schema the status
//   writes go first in a round trip of their own (a cluster splits a pipeline per master, in no fixed order);
// - status writes are best effort, the XADD / ZADD must succeed;
// - a unique task (standard schema) is one call of the document's enqueue script (ENQUEUE_SCRIPT): the key
//   {prefix}:unique:{key} checked, the add, the status record and then the key, in one step for Redis, so a crash
//   or a failed add never leaves the key naming a task that was never added; with the cluster key schema (the key
//   in another slot than the queue) the key is claimed first with SET NX EX for 30 s, held for uniqueForS once the
//   task is in, and released when the add fails; when it is held nothing is enqueued and the result carries the
//   holder's id;
// - statusTtlS (TASK_RESULT_TTL, default 86400) of 0 writes no status record at all.
// Cancel is the C++ CancelTask (components/taskqueue task_control.cc): a task whose record says pending, scheduled or
// retry_scheduled gets a cancel marker (workers ack a marked task without running it when they read it) and the
// state "cancelled"; standard schema in one script (CANCEL_SCRIPT, the text of the document's), cluster schema as
// HMGET, then the markers of every shard of the task's queue, then the record by CANCEL_RECORD_SCRIPT, which checks
// the state again as it writes it (the markers are taken back when the task started meanwhile).
const crypto = require('crypto');
const { ReplyError } = require('ioredis');
const { TaskKeys, newTaskId, validQueueName } = require('./keys');
const { encodeEnvelope } = require('./envelope');

const DEFAULT_STATUS_TTL_S = 86400; // TASK_RESULT_TTL's default
const DEFAULT_UNIQUE_FOR_S = 3600;  // EnqueueOptions::unique_ttl_s
const UNIQUE_CLAIM_TTL_S = 30;      // cluster schema: a unique key's first TTL, before the task is in (kUniqueClaimTtlS)
const UNIQUE_CLAIM_TRIES = 3;       // cluster schema: SET NX tries when the key runs out between a refused SET NX and GET
const MAX_STATUS_TTL_S = 2 ** 31;   // fromEnv's bound for TASK_RESULT_TTL
const MAX_UNIQUE_FOR_S = 30 * 24 * 3600; // the task API's bound (kMaxUniqueForS in ingest/task_api.cc)
const MAX_TOKEN_LEN = 200;          // task ids and unique keys: the task API's ValidToken bound
// Task ids and unique keys the fleet keeps for itself: generation.run of generation n is task "generation-<n>" with
// unique key "generation-<n>" (components/chunks generation_start.cc). A caller's task there would take that id's
// record, or hold the key so the generation's own task is never enqueued.
const RESERVED_PREFIX = 'generation-';
const CANCEL_MARKER_TTL_MS = 30 * 24 * 3600 * 1000; // kCancelMarkerTtlMs: a cancel drops markers older than this

// docs/task-protocol.md, "Cancel": KEYS[1] the status record, KEYS[2] the cancel markers; ARGV id, now ms,
// TASK_RESULT_TTL, now - 30 days. {0} no record, {1, previous state} cancelled, {2, state} nothing changed.
// test/keys.test.js checks that this is the document's text, character for character.
const CANCEL_SCRIPT = `local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0} end
if state ~= 'pending' and state ~= 'scheduled' and state ~= 'retry_scheduled' then return {2, state} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'cancelled_at_ms', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, state}
`;

// docs/task-protocol.md, "Enqueue": a unique task on the standard schema in one step (the C++
// GuardedEnqueueScript; its 'p' mode is the workers' periodic mark). KEYS[1] the unique key, KEYS[2] the status
// record (left out when status records are off); ARGV 'u', id, uniqueForS, 'x' (XADD) or 'z' (ZADD), the add's
// key, its member, its score, TASK_RESULT_TTL, the status record's field/value pairs. Reply [1, id] added,
// [0, holder's id] held. test/keys.test.js checks that this is the document's text, character for character.
const ENQUEUE_SCRIPT = `local ttl = tonumber(ARGV[3])
if not ttl or ttl < 1 or ttl ~= math.floor(ttl) then return redis.error_reply('ERR invalid guard TTL') end
local guard
if ARGV[1] == 'u' then
  local holder = redis.call('GET', KEYS[1])
  if holder then return {0, holder} end
  guard = ARGV[2]
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local period = math.floor(now / tonumber(ARGV[2]))
  local last = tonumber(redis.call('GET', KEYS[1]) or '')
  if last and last >= period then return {0, ''} end
  guard = string.format('%d', period)
end
if ARGV[4] ~= '' then
  local added
  if ARGV[4] == 'x' then
    added = redis.pcall('XADD', ARGV[5], '*', 'e', ARGV[6])
  else
    added = redis.pcall('ZADD', ARGV[5], ARGV[7], ARGV[6])
  end
  if type(added) == 'table' and added.err then return added end
  if KEYS[2] then
    -- Best effort, as in a pipelined enqueue: the task is in.
    redis.pcall('HSET', KEYS[2], unpack(ARGV, 9))
    redis.pcall('EXPIRE', KEYS[2], ARGV[8])
  end
end
redis.call('SET', KEYS[1], guard, ARGV[1] == 'u' and 'EX' or 'PX', ARGV[3])
return {1, guard}
`;
const ENQUEUE_SCRIPT_SHA1 = crypto.createHash('sha1').update(ENQUEUE_SCRIPT).digest('hex');

// docs/task-protocol.md, "Cancel", cluster schema: the record alone, "cancelled" only if it still says the task waits
// (the C++ CancelRecordScript, which workers also run). KEYS[1] the status record; ARGV now ms, TASK_RESULT_TTL.
// [0] no record, [1, previous state] cancelled, [2, state] nothing changed. Sent by SHA-1, so the text is the C++ one
// byte for byte, its leading newline included (test/keys.test.js compares it with the document's third ```lua
// block, tests/clients/protocol_doc_test.py the block with the C++ text).
const CANCEL_RECORD_SCRIPT = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0} end
if state ~= 'pending' and state ~= 'scheduled' and state ~= 'retry_scheduled' then return {2, state} end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'cancelled_at_ms', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, state}
`;
const CANCEL_RECORD_SCRIPT_SHA1 = crypto.createHash('sha1').update(CANCEL_RECORD_SCRIPT).digest('hex');

// The states a cancel can still stop: the task has not started.
const CANCELLABLE_STATES = ['pending', 'scheduled', 'retry_scheduled'];

function cancelResult(state) {
  if (state === 'cancelled') return { outcome: 'already_cancelled', state };
  if (CANCELLABLE_STATES.includes(state)) return { outcome: 'cancelled', state };
  return { outcome: 'too_late', state };
}

const NOT_FOUND = Object.freeze({ outcome: 'not_found', state: '' });

// KEYS[1] a unique key, ARGV[1] the id that took it: deletes the key only while it still names that task
// (docs/task-protocol.md, "Enqueue", step 4; the C++ ReleaseUniqueKeyScript).
const RELEASE_UNIQUE_SCRIPT = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

const MAX_DELAY_MS = 366 * 24 * 3600 * 1000; // the task API's bound: a later run is almost surely a unit error
// Before 2001-09-09 in unix ms: a runAt this small was given in seconds (the task API's and Python's unit).
const MIN_RUN_AT_MS = 1e12;
const ENQUEUE_OPTIONS = ['queue', 'delayMs', 'runAt', 'uniqueKey', 'uniqueForS', 'id'];
const TASK_FIELDS = ['type', 'payload', ...ENQUEUE_OPTIONS];

// An option this client does not know is refused, as the task API refuses an unknown field: `delay` or
// `unique_key` (the API's and Python's spellings) would otherwise be dropped and the task run now, or twice.
function checkNames(object, allowed, what) {
  for (const name of Object.keys(object)) {
    if (!allowed.includes(name)) throw new Error(`unknown ${what} "${name}" (known: ${allowed.join(', ')})`);
  }
}

// A timestamp field of the status record as a number, null when absent.
function ms(value) {
  return value === undefined || value === '' ? null : Number(value);
}

function payloadBytes(payload) {
  // null too: the task API, PHP and the push handlers' documentation give an absent payload as {}.
  if (payload === undefined || payload === null) return Buffer.from('{}');
  if (Buffer.isBuffer(payload)) return payload;
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  return Buffer.from(JSON.stringify(payload), 'utf8'); // JSON by convention: objects are encoded
}

// 0 = now, as in the envelope.
function runAtMs(task, nowMs) {
  if (task.delayMs !== undefined && task.runAt !== undefined) throw new Error('give delayMs or runAt, not both');
  if (task.delayMs !== undefined) {
    if (!(task.delayMs >= 0 && task.delayMs <= MAX_DELAY_MS)) throw new Error('delayMs must be a number from 0 to a year');
    return nowMs + Math.round(task.delayMs);
  }
  if (task.runAt !== undefined) {
    const ms = task.runAt instanceof Date ? task.runAt.getTime() : Number(task.runAt);
    if (!Number.isFinite(ms)) throw new Error('runAt must be a Date or unix milliseconds');
    if (!(task.runAt instanceof Date) && ms < MIN_RUN_AT_MS) {
      throw new Error(`runAt ${task.runAt} is before 2001 in unix milliseconds: seconds? (give a Date or ms)`);
    }
    if (ms - nowMs > MAX_DELAY_MS) throw new Error('runAt is more than a year ahead');
    return Math.round(ms);
  }
  return 0;
}

// 1 to 200 visible ASCII characters: what the task API takes for ids and unique keys (ValidToken in
// ingest/task_api.cc), so a task enqueued here can be read and cancelled through it too.
function validToken(value) {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_TOKEN_LEN && /^[\x21-\x7e]+$/.test(value);
}

function check(task) {
  if (!validQueueName(task.queue)) throw new Error(`invalid queue name "${task.queue}"`);
  if (!task.type) throw new Error('empty task type');
  // An id is a part of key names ({prefix}:task:{id}) and of the task API's path (/v1/tasks/{id}): no '/', and not
  // ending in ":generation", or its record would be the key {prefix}:task:{other id}:generation that workers keep
  // for task {other id} (docs/task-protocol.md, "Keys").
  if ((task.id ?? '') !== '' &&
      (!validToken(task.id) || task.id.includes('/') || task.id.endsWith(':generation'))) {
    throw new Error(`task id ${JSON.stringify(task.id)}: 1 to 200 visible ASCII characters without '/', ` +
      "not ending in ':generation'");
  }
  if ((task.uniqueKey ?? '') !== '' && !validToken(task.uniqueKey)) {
    throw new Error(`uniqueKey ${JSON.stringify(task.uniqueKey)}: 1 to 200 visible ASCII characters`);
  }
  for (const [what, value] of [['task id', task.id], ['uniqueKey', task.uniqueKey]]) {
    if (typeof value === 'string' && value.startsWith(RESERVED_PREFIX)) {
      throw new Error(`${what} ${JSON.stringify(value)}: ids and unique keys starting with "${RESERVED_PREFIX}" are ` +
        "the fleet's own (its generation.run tasks)");
    }
  }
  // Whole seconds (Redis' SET ... EX refuses "1.5"), at most 30 days (the task API's bound): past what EX takes, the
  // script's final SET would fail after the add.
  const f = task.uniqueForS;
  if (task.uniqueKey && !(Number.isInteger(f) && f > 0 && f <= MAX_UNIQUE_FOR_S)) {
    throw new Error(`uniqueForS must be a positive whole number of seconds, at most ${MAX_UNIQUE_FOR_S} (30 days)`);
  }
}

// enqueueMany: Redis refused the add (XADD / ZADD) of some tasks after the others were written (a pipeline is not
// a transaction, so nothing is undone). results has one entry per task, in the order given: its result when it is
// enqueued, null when Redis refused it; cause is the first refusal.
class EnqueueManyError extends Error {
  constructor(results, cause) {
    const missing = results.filter((r) => r === null).length;
    super(`${missing} of ${results.length} tasks not enqueued: ${cause.message}`, { cause });
    this.name = 'EnqueueManyError';
    this.results = results;
  }

  // The tasks that are in: enqueueMany them again and they run twice.
  get enqueued() { return this.results.filter((r) => r !== null); }
}

const isStatusWrite = (cmd) => cmd[0] === 'HSET' || cmd[0] === 'EXPIRE';
// An error Redis answered (the command was refused, so not executed), as opposed to a lost connection.
const isReplyError = (err) => err instanceof ReplyError;

// A task's writes (TaskClient's #plan) as commands, in the order #run sends them: the status record, then the add.
function commandsOf(w) {
  const cmds = [];
  if (w.statusKey !== null) {
    cmds.push(['HSET', w.statusKey, ...w.statusFields]);
    cmds.push(['EXPIRE', w.statusKey, String(w.statusTtlS)]);
  }
  if (w.scheduled) cmds.push(['ZADD', w.key, String(w.runAt), w.entry]);
  else cmds.push(['XADD', w.key, '*', 'e', w.entry]);
  return cmds;
}

class TaskClient {
  // redis: an ioredis Redis (or Cluster). options: { keys: TaskKeys | {prefix, cluster, shards}, statusTtlS, clock }.
  constructor(redis, options = {}) {
    // ioredis' keyPrefix goes in front of a command's keys (an EVAL's KEYS too) but not of key names passed as
    // arguments (the enqueue script's stream and scheduled set): tasks would go to keys no worker reads, silently.
    // The fleet's prefix is keys.prefix (STREAMFLEET_STREAM_PREFIX).
    const keyPrefix = redis?.options?.keyPrefix || redis?.options?.redisOptions?.keyPrefix;
    if (keyPrefix) {
      throw new Error(`the ioredis client has keyPrefix "${keyPrefix}", which this client cannot use (ioredis ` +
        'prefixes a command\'s keys but not the key names in its arguments, so tasks would go where no worker ' +
        'reads): give it a Redis without keyPrefix, and the fleet\'s prefix as { keys: { prefix } }');
    }
    this.redis = redis;
    this.keys = options.keys instanceof TaskKeys ? options.keys : new TaskKeys(options.keys || {});
    this.statusTtlS = options.statusTtlS ?? DEFAULT_STATUS_TTL_S;
    if (!(Number.isInteger(this.statusTtlS) && this.statusTtlS >= 0 && this.statusTtlS <= MAX_STATUS_TTL_S)) {
      // Refused here, not by Redis: the enqueue script drops EXPIRE's error for "1.5" (the record would never
      // expire) and cancel would reject after it had cancelled.
      throw new Error(`statusTtlS must be a whole number of seconds from 0 to ${MAX_STATUS_TTL_S}, ` +
        `got ${this.statusTtlS}`);
    }
    this.clock = options.clock || Date.now;
  }

  // The fleet's own environment variables with its defaults (lib/config.js).
  static fromEnv(env = process.env) {
    return require('./config').clientFromEnv(TaskClient, env);
  }

  // Enqueues one task: now, after delayMs, or at runAt; a unique one only if its key is free.
  async enqueue(type, payload = '{}', options = {}) {
    checkNames(options, ENQUEUE_OPTIONS, 'enqueue option');
    const task = { ...options, type, payload };
    task.queue ??= 'default'; // also when given as undefined ({ queue: cfg.queue } with cfg.queue unset)
    task.uniqueForS ??= DEFAULT_UNIQUE_FOR_S; // likewise
    check(task);
    const now = this.clock();
    const runAt = runAtMs(task, now);
    const id = task.id || newTaskId();
    if (task.uniqueKey && !this.keys.cluster) return this.#enqueueUnique(task, id, runAt, now);
    // Cluster schema: the key is claimed for UNIQUE_CLAIM_TTL_S and held for uniqueForS once the task is in, so a
    // caller that dies in between leaves a key naming nothing for seconds, not for uniqueForS.
    const claimS = Math.min(UNIQUE_CLAIM_TTL_S, task.uniqueForS);
    // Planned before the claim: a payload that cannot be encoded must not leave the key held for nothing.
    const writes = this.#plan(task, id, runAt, now);
    if (task.uniqueKey) {
      const key = this.keys.unique(task.uniqueKey);
      let claimed = false;
      for (let i = 0; i < UNIQUE_CLAIM_TRIES; i++) {
        claimed = (await this.redis.call('SET', key, id, 'NX', 'EX', String(claimS))) !== null;
        if (claimed) break;
        const holder = await this.redis.call('GET', key);
        if (holder !== null) return { id: holder, duplicate: true, scheduled: false };
        // The holder's key ran out (or was released) between the SET NX and the GET: claim it again rather than
        // answer "duplicate" naming a task that was never enqueued.
      }
      if (!claimed) {
        throw new Error(`unique key "${task.uniqueKey}" changed hands ${UNIQUE_CLAIM_TRIES} times while being ` +
          'claimed: nothing enqueued, try again');
      }
    }
    try {
      const failed = await this.#run(commandsOf(writes));
      if (failed.size > 0) throw failed.values().next().value;
    } catch (err) {
      // The key names a task that was not added: release it (if still ours), or a retry would be answered
      // "duplicate" of nothing until the claim runs out. Best effort: Redis may be gone altogether.
      if (task.uniqueKey) {
        await this.redis.call('EVAL', RELEASE_UNIQUE_SCRIPT, '1', this.keys.unique(task.uniqueKey), id).catch(() => {});
      }
      throw err;
    }
    if (task.uniqueKey && task.uniqueForS > claimS) {
      // Best effort: the task is in (a failure only shortens the dedupe to the claim); XX does not make a claim
      // that ran out meanwhile again.
      await this.redis.call('SET', this.keys.unique(task.uniqueKey), id, 'XX', 'EX', String(task.uniqueForS))
        .catch(() => {});
    }
    return writes.result;
  }

  // The standard schema's unique enqueue: ENQUEUE_SCRIPT with the task's writes as its arguments
  // (docs/task-protocol.md; EVALSHA, and EVAL when the server does not have the script yet).
  async #enqueueUnique(task, id, runAt, now) {
    const w = this.#plan(task, id, runAt, now);
    const keys = [this.keys.unique(task.uniqueKey)];
    const args = ['u', id, String(task.uniqueForS)];
    if (w.scheduled) args.push('z', w.key, w.entry, String(w.runAt));
    else args.push('x', w.key, w.entry, '');
    if (w.statusKey !== null) {
      keys.push(w.statusKey);
      args.push(String(w.statusTtlS), ...w.statusFields);
    } else {
      args.push('0');
    }
    let reply;
    try {
      reply = await this.redis.call('EVALSHA', ENQUEUE_SCRIPT_SHA1, String(keys.length), ...keys, ...args);
    } catch (err) {
      if (!String(err.message).startsWith('NOSCRIPT')) throw err;
      reply = await this.redis.call('EVAL', ENQUEUE_SCRIPT, String(keys.length), ...keys, ...args);
    }
    if (Number(reply[0]) === 0) return { id: String(reply[1]), duplicate: true, scheduled: false };
    return w.result;
  }

  // Many tasks in one round trip (BullMQ's addBulk). Unique tasks are refused, as by the C++ EnqueueTasks (each
  // needs its own answer, held or not, first): use enqueue for them. Every task is checked before anything is sent.
  // Not all or nothing: when Redis refuses some adds the others are in, and the EnqueueManyError says which (its
  // results); when Redis cannot be reached (a connection error) any of them may be in.
  async enqueueMany(tasks) {
    const now = this.clock();
    for (const t of tasks) checkNames(t, TASK_FIELDS, 'task field');
    const full = tasks.map((t) => ({ ...t, queue: t.queue ?? 'default', payload: t.payload ?? '{}' }));
    for (const t of full) {
      check(t);
      if (t.uniqueKey) throw new Error('enqueueMany does not take unique tasks (use enqueue)');
    }
    const runAts = full.map((t) => runAtMs(t, now));
    const writes = full.map((t, i) => this.#plan(t, t.id || newTaskId(), runAts[i], now));
    const cmds = [];
    const adds = []; // each task's add: the last of its commands (commandsOf)
    for (const w of writes) {
      cmds.push(...commandsOf(w));
      adds.push(cmds.length - 1);
    }
    const failed = cmds.length > 0 ? await this.#run(cmds) : new Map();
    if (failed.size > 0) {
      const first = failed.get(Math.min(...failed.keys()));
      // Not a refusal (the connection lost mid-way): whether that add is in is unknown.
      if (![...failed.values()].every(isReplyError)) throw first;
      throw new EnqueueManyError(writes.map((w, i) => (failed.has(adds[i]) ? null : w.result)), first);
    }
    return writes.map((w) => w.result);
  }

  // What enqueueing one task writes, sent as commands (commandsOf) or as the enqueue script's arguments
  // (#enqueueUnique), from one plan so the two cannot drift apart.
  #plan(task, id, runAt, now) {
    const raw = encodeEnvelope({
      id, type: task.type, payload: payloadBytes(task.payload), attempt: 0, enqueuedAtMs: now, runAtMs: runAt,
      uniqueKey: task.uniqueKey || '', queue: task.queue,
    });
    const scheduled = runAt > now;
    const stream = this.keys.queue(task.queue, this.keys.shardFor(task.uniqueKey || ''));
    let statusKey = null;
    const statusFields = [];
    if (this.statusTtlS > 0) {
      statusKey = this.keys.status(id);
      statusFields.push('state', scheduled ? 'scheduled' : 'pending', 'type', task.type, 'queue', task.queue,
        'attempts', '0', 'enqueued_at_ms', String(now));
      if (scheduled) statusFields.push('run_at_ms', String(runAt));
    }
    return {
      result: { id, duplicate: false, scheduled },
      scheduled,
      key: scheduled ? this.keys.scheduledOf(stream) : stream, // the ZADD's set or the XADD's stream
      entry: scheduled ? Buffer.concat([Buffer.from(`${task.queue}|`, 'utf8'), raw]) : raw,
      runAt,
      statusKey, // null: no status record (TASK_RESULT_TTL 0)
      statusFields,
      statusTtlS: this.statusTtlS,
    };
  }

  // Sends the commands in order; the status writes are best effort, the adds must succeed. Resolves to the adds
  // that failed (index in cmds -> error; empty when all are in), so enqueueMany can say which tasks are in.
  async #run(cmds) {
    const failed = new Map();
    if (this.keys.cluster) {
      // Each command on its own (an ioredis Cluster pipeline must stay in one slot); they still go out together.
      const settle = (indexes) => Promise.allSettled(indexes.map((i) => this.redis.call(...cmds[i])));
      const indexes = cmds.map((_, i) => i);
      await settle(indexes.filter((i) => isStatusWrite(cmds[i])));
      const adds = indexes.filter((i) => !isStatusWrite(cmds[i]));
      (await settle(adds)).forEach((r, j) => {
        if (r.status === 'rejected') failed.set(adds[j], r.reason);
      });
      return failed;
    }
    const pipeline = this.redis.pipeline();
    for (const c of cmds) pipeline.call(...c);
    const replies = await pipeline.exec();
    replies.forEach(([err], i) => {
      if (err && !isStatusWrite(cmds[i])) failed.set(i, err);
    });
    return failed;
  }

  // The task's status record, or null (unknown id, expired, or TASK_RESULT_TTL=0). state is pending, scheduled,
  // running, succeeded, retry_scheduled, dead or cancelled; fields holds every field of the hash. The *AtMs
  // timestamps are unix ms (enqueuedAtMs by the producer's clock, the others by the worker's or the canceller's),
  // null while the record has no such field.
  async status(id) {
    const fields = await this.redis.hgetall(this.keys.status(id));
    if (!fields || Object.keys(fields).length === 0) return null;
    return {
      state: fields.state,
      attempts: Number(fields.attempts || 0),
      result: fields.result ?? null,
      error: fields.error ?? null,
      enqueuedAtMs: ms(fields.enqueued_at_ms),
      startedAtMs: ms(fields.started_at_ms),
      finishedAtMs: ms(fields.finished_at_ms),
      cancelledAtMs: ms(fields.cancelled_at_ms),
      fields,
    };
  }

  // Cancels the task if it has not started (its record says pending, scheduled or retry_scheduled): a worker that
  // reads it acks it without running it. A task a worker had read ahead before the cancel still runs (its record
  // then moves on from "cancelled"). Needs status records: with statusTtlS 0 every id is not_found and nothing is
  // sent. Resolves to { outcome: 'cancelled' | 'already_cancelled' | 'not_found' | 'too_late', state } (state: the
  // record's state before the call, '' when not found); rejects for an empty id or when Redis fails.
  async cancel(id) {
    if (typeof id !== 'string' || id === '') throw new Error('empty task id');
    if (!(this.statusTtlS > 0)) return { ...NOT_FOUND };
    const now = this.clock();
    if (this.keys.cluster) return this.#cancelSharded(id, now);
    const reply = await this.redis.call('EVAL', CANCEL_SCRIPT, '2', this.keys.status(id), this.keys.cancelled(), id,
      String(now), String(this.statusTtlS), String(now - CANCEL_MARKER_TTL_MS));
    if (!Array.isArray(reply) || reply.length === 0) throw new Error('cancel script: unexpected reply');
    if (Number(reply[0]) === 0) return { ...NOT_FOUND };
    return cancelResult(reply.length > 1 ? String(reply[1]) : '');
  }

  // The record and the shards live on different masters: no script spans them. The markers first (a worker reading
  // the task from then on skips it), then the record, as the C++ CancelSharded (task_control.cc) does it.
  async #cancelSharded(id, now) {
    const key = this.keys.status(id);
    const [state, queue] = await this.redis.call('HMGET', key, 'state', 'queue');
    if (state === null || state === undefined) return { ...NOT_FOUND };
    if (!CANCELLABLE_STATES.includes(state)) return cancelResult(state);
    if (!validQueueName(queue)) throw new Error(`task ${id} has a record without a valid queue`);
    const shards = this.keys.queueShards(queue);
    await Promise.all(shards.map(async (stream) => {
      const markers = this.keys.cancelledOf(stream);
      await this.redis.call('ZREMRANGEBYSCORE', markers, '-inf', `(${now - CANCEL_MARKER_TTL_MS}`);
      await this.redis.call('ZADD', markers, String(now), id);
    }));
    // The record by a script that checks its state as it writes it: read above, then written, a task that started in
    // between would end up "cancelled" while it ran or after it succeeded. A rejection here leaves the markers: the
    // caller retries, and a retry meets them.
    const args = ['1', key, String(now), String(this.statusTtlS)];
    let reply;
    try {
      reply = await this.redis.call('EVALSHA', CANCEL_RECORD_SCRIPT_SHA1, ...args);
    } catch (err) {
      if (!String(err.message).startsWith('NOSCRIPT')) throw err;
      reply = await this.redis.call('EVAL', CANCEL_RECORD_SCRIPT, ...args);
    }
    if (!Array.isArray(reply) || reply.length === 0) throw new Error('cancel record script: unexpected reply');
    if (Number(reply[0]) === 1) return { outcome: 'cancelled', state };
    const nowState = reply.length > 1 ? String(reply[1]) : '';
    // Another cancel got there first (a double click, a client's retry): the markers are its too, so they stay.
    // Otherwise the task started or the record is gone: taken back, or a retry of the task would be skipped. Best
    // effort: a marker left behind is dropped by a later cancel's trim.
    if (nowState !== 'cancelled') {
      await Promise.allSettled(shards.map((stream) => this.redis.call('ZREM', this.keys.cancelledOf(stream), id)));
    }
    if (Number(reply[0]) === 0) return { ...NOT_FOUND };
    return cancelResult(nowState);
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

module.exports = {
  CANCEL_MARKER_TTL_MS, CANCEL_RECORD_SCRIPT, CANCEL_RECORD_SCRIPT_SHA1, CANCEL_SCRIPT, DEFAULT_STATUS_TTL_S,
  DEFAULT_UNIQUE_FOR_S, ENQUEUE_SCRIPT, ENQUEUE_SCRIPT_SHA1, EnqueueManyError, TaskClient,
};
