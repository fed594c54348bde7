// Types of streamfleet-client (plain JavaScript; these declarations are written by hand next to it).
import type { Cluster, Redis } from 'ioredis';
import type { Type } from 'protobufjs';

export const CONSUMER_GROUP: 'workers';
export const DEFAULT_STATUS_TTL_S: 86400;
export const DEFAULT_UNIQUE_FOR_S: 3600;
/** A cancel drops cancel markers older than this (30 days). */
export const CANCEL_MARKER_TTL_MS: 2592000000;
/** The standard schema's cancel script, the text of docs/task-protocol.md's ("Cancel"). */
export const CANCEL_SCRIPT: string;
/** The cluster schema's cancel record script (docs/task-protocol.md, "Cancel"), byte for byte the C++ one. */
export const CANCEL_RECORD_SCRIPT: string;
/** The SHA-1 of CANCEL_RECORD_SCRIPT, for EVALSHA. */
export const CANCEL_RECORD_SCRIPT_SHA1: string;
/** A unique task's enqueue on the standard schema, the text of docs/task-protocol.md's ("Enqueue"). */
export const ENQUEUE_SCRIPT: string;
/** The SHA-1 of ENQUEUE_SCRIPT, for EVALSHA. */
export const ENQUEUE_SCRIPT_SHA1: string;

/** JSON by convention: Buffers and strings are sent as they are, anything else is JSON-encoded. */
export type Payload = Buffer | string | Record<string, unknown> | unknown[] | null; // null: stored as {}

export interface TaskKeysOptions {
  /** STREAMFLEET_STREAM_PREFIX, default "streamfleet". */
  prefix?: string;
  /** The cluster key schema (hash-tagged queue shards); default false. */
  cluster?: boolean;
  /** Stream shards per queue with the cluster schema: default 4, the fleet's (TASK_QUEUE_SHARDS); 1 otherwise. */
  shards?: number;
}

export class TaskKeys {
  constructor(options?: TaskKeysOptions);
  readonly prefix: string;
  readonly cluster: boolean;
  readonly shards: number;
  queue(name: string, shard?: number): string;
  queueShards(name: string): string[];
  shardFor(uniqueKey: string): number;
  scheduledOf(stream: string): string;
  deadLettersOf(stream: string): string;
  pausedFlagOf(stream: string): string;
  /** The cancel markers the workers check when they read from `stream` (cancelled() with the standard schema). */
  cancelledOf(stream: string): string;
  scheduled(): string;
  deadLetters(): string;
  paused(): string;
  cancelled(): string;
  status(id: string): string;
  unique(key: string): string;
}

export interface EnqueueOptions {
  /** Default "default"; [a-z0-9_.-]{1,64}. */
  queue?: string;
  /** Run this many milliseconds from now (excludes runAt). */
  delayMs?: number;
  /** Run at this time (a Date or unix milliseconds; excludes delayMs). */
  runAt?: Date | number;
  /** A second enqueue with this key within uniqueForS enqueues nothing and returns the first task's id.
   * 1 to 200 visible ASCII characters (as the task API takes), not starting with 'generation-' (the fleet's own). */
  uniqueKey?: string;
  /** Whole seconds from 1 to 2592000 (30 days, the task API's bound); default 3600. */
  uniqueForS?: number;
  /** Default: 20 random hex digits. 1 to 200 visible ASCII characters without '/', not ending in ':generation'
   * (the task API's ids, so it can be read and cancelled through GET/DELETE /v1/tasks/{id}), not starting with
   * 'generation-' (the fleet's own). An id does not deduplicate: a second enqueue with it is a second task (use
   * uniqueKey for that). */
  id?: string;
}

export interface Task extends Omit<EnqueueOptions, 'uniqueKey' | 'uniqueForS'> {
  type: string;
  payload?: Payload;
}

export interface EnqueueResult {
  id: string;
  /** The unique key was held: nothing was enqueued and `id` is the holder's. */
  duplicate: boolean;
  /** Waiting in the scheduled set until its run time. */
  scheduled: boolean;
}

/** enqueueMany: Redis refused the add of some tasks after the others were written (nothing is undone). */
export class EnqueueManyError extends Error {
  /** One per task, in the order given: its result when it is enqueued, null when Redis refused it. */
  readonly results: (EnqueueResult | null)[];
  /** The tasks that are in (enqueueMany them again and they run twice). */
  readonly enqueued: EnqueueResult[];
  /** The first refusal (an ioredis ReplyError). */
  readonly cause: Error;
}

export type TaskState = 'pending' | 'scheduled' | 'running' | 'succeeded' | 'retry_scheduled' | 'dead' | 'cancelled';

export interface TaskStatus {
  state: TaskState;
  attempts: number;
  result: string | null;
  error: string | null;
  /** Unix ms at enqueue, by the producer's clock (null in a record an older producer wrote). */
  enqueuedAtMs: number | null;
  /** Unix ms when the latest attempt started ("running"), by the worker's clock. */
  startedAtMs: number | null;
  /** Unix ms when it succeeded or went dead, by the worker's clock. */
  finishedAtMs: number | null;
  /** Unix ms when it was cancelled, by the canceller's clock. */
  cancelledAtMs: number | null;
  /** Every field of the status hash (docs/task-protocol.md), as strings. */
  fields: Record<string, string>;
}

/**
 * cancelled: it was waiting (pending, scheduled or retry_scheduled) and will not run; already_cancelled and
 * too_late (running, succeeded or dead): nothing changed; not_found: no status record (unknown id, expired, or
 * TASK_RESULT_TTL=0).
 */
export type CancelOutcome = 'cancelled' | 'already_cancelled' | 'not_found' | 'too_late';

export interface CancelResult {
  outcome: CancelOutcome;
  /** The record's state before the call ('' when not found). */
  state: TaskState | '';
}

export interface TaskClientOptions {
  keys?: TaskKeys | TaskKeysOptions;
  /** TASK_RESULT_TTL: whole seconds (0 to 2^31) the status record lives; 0 writes none. Default 86400. */
  statusTtlS?: number;
  /** Unix milliseconds now; default Date.now. */
  clock?: () => number;
}

export class TaskClient {
  /** Throws when redis has an ioredis keyPrefix (it is not applied to the key names in a command's arguments). */
  constructor(redis: Redis | Cluster, options?: TaskClientOptions);
  /** From REDIS_URL / REDIS_HOST..., REDIS_TLS*, REDIS_SENTINEL*, REDIS_CLUSTER, STREAMFLEET_STREAM_PREFIX,
   * STREAMFLEET_KEY_SCHEMA, TASK_QUEUE_SHARDS and TASK_RESULT_TTL, with the fleet's defaults (redisFromEnv). */
  static fromEnv(env?: Record<string, string | undefined>): TaskClient;
  readonly redis: Redis | Cluster;
  readonly keys: TaskKeys;
  readonly statusTtlS: number;
  enqueue(type: string, payload?: Payload, options?: EnqueueOptions): Promise<EnqueueResult>;
  /** One round trip; unique tasks are refused (use enqueue). Not all or nothing: rejects with an EnqueueManyError
   * naming the tasks that are in when Redis refuses some adds; after any other error any of them may be in. */
  enqueueMany(tasks: Task[]): Promise<EnqueueResult[]>;
  status(id: string): Promise<TaskStatus | null>;
  /** Cancels the task if it has not started: a worker that reads it acks it without running it. Rejects for an
   * empty id. */
  cancel(id: string): Promise<CancelResult>;
  pause(queue: string): Promise<void>;
  resume(queue: string): Promise<void>;
  pausedQueues(): Promise<string[]>;
}

export function crc16(data: string | Buffer): number;
export function validQueueName(name: string): boolean;
export function keysFromEnv(env: Record<string, string | undefined>): TaskKeys;
/** The ioredis client TaskClient.fromEnv uses: REDIS_URL (redis:// or rediss://) or REDIS_HOST/PORT/USERNAME/
 * PASSWORD/DB; REDIS_TLS and REDIS_TLS_CA/CERT/KEY/SERVER_NAME/INSECURE; REDIS_SENTINELS with
 * REDIS_SENTINEL_MASTER (and REDIS_SENTINEL_USERNAME/PASSWORD); REDIS_CLUSTER. */
export function redisFromEnv(env: Record<string, string | undefined>): Redis | Cluster;
export const TaskEnvelope: Type;
export function decodeEnvelope(bytes: Uint8Array): {
  id: string; type: string; payload: Uint8Array; attempt: number; enqueuedAtMs: number; runAtMs: number;
  uniqueKey: string; traceId: string; queue: string; errors: string[]; version: number;
};

// Signed live-stream links for browsers (docs/live.md, "Signed links"; lib/live.js).

/** A positive integer id of at most 18 digits: a safe integer, a BigInt, or its decimal digits ("42"). */
export type StreamId = number | bigint | string;

/** 600: a link is good for ten minutes unless told otherwise. */
export const DEFAULT_LINK_TTL_S: 600;

export interface StreamLinkOptions {
  /** Seconds the link stays good, a positive integer; default 600. */
  ttlS?: number;
  /** Put before the path: '' (default) for a link relative to the page's origin, or 'https://ingest.example.com'
   * (a trailing '/' is dropped), optionally with a path prefix that a proxy strips before ingest. */
  baseUrl?: string;
  /** A Date or unix seconds (not milliseconds) to count from; default now. */
  now?: Date | number;
}

/** `/v1/orgs/{org}/generations/{gen}/stream`; throws a TypeError unless both are positive integers. */
export function generationStreamPath(org: StreamId, gen: StreamId): string;
/** `/v1/orgs/{org}/events`; throws a TypeError unless org is a positive integer. */
export function eventsPath(org: StreamId): string;
/** Lowercase hex HMAC-SHA256(token, "GET\n" + path + "\n" + exp): the `sig` of a link to `path` until `exp`. */
export function streamLinkSignature(token: string, path: string, exp: number): string;
/**
 * `${baseUrl}${path}?exp=...&sig=...`: a link to one live stream that a browser may open (EventSource) without a
 * token, until now + ttlS. `token` is the organization's INGEST_TOKENS token; it signs the link and never leaves
 * the backend. `path` is `/v1/orgs/{org}/generations/{gen}/stream` or `/v1/orgs/{org}/events`, without a query;
 * the page may append its own parameters (`&from_seq=N`, `&after=0`). Throws a TypeError for invalid arguments.
 */
export function signedStreamLink(token: string, path: string, options?: StreamLinkOptions): string;
/** signedStreamLink for generation `gen`'s stream of organization `org`. */
export function signedGenerationStreamLink(
  token: string, org: StreamId, gen: StreamId, options?: StreamLinkOptions): string;
/** signedStreamLink for organization `org`'s events stream. */
export function signedEventsLink(token: string, org: StreamId, options?: StreamLinkOptions): string;
