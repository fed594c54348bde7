"""Enqueue streamfleet tasks and follow them, talking to Redis directly (docs/task-protocol.md).

Same semantics as the C++ EnqueueTask / EnqueueTasks (components/taskqueue task_queue.cc):
- the status record `{prefix}:task:{id}` ("pending" or "scheduled") is written before the XADD / ZADD, in the
  same pipeline, so a fast worker's "succeeded" can never be overwritten by it; in cluster mode the status
  writes go in a round trip of their own first (a cluster pipeline is split per master, in no fixed order);
- status writes are best effort, the XADD / ZADD must succeed;
- a unique task (standard schema) is one call of the document's enqueue script (ENQUEUE_SCRIPT): the key
  `{prefix}:unique:{key}` checked, the add, the status record and then the key, in one step for Redis, so a
  crash or a failed add never leaves the key naming a task that was never added; in cluster mode (the key in
  another slot than the queue) the key is claimed first with SET NX EX for 30 s, held for unique_for once the
  task is in, and released when the add fails; when the key is held nothing is enqueued and the result carries
  the holder's task id;
- status_ttl_s (TASK_RESULT_TTL, default 86400) of 0 writes no status record at all.

Cancel is the C++ CancelTask (components/taskqueue task_control.cc): a task whose record says pending,
scheduled or retry_scheduled gets a cancel marker (workers ack a marked task without running it when they read
it) and the state "cancelled"; standard schema in one script (CANCEL_SCRIPT, the text of the document's),
cluster schema as HMGET, then the markers of every shard of the task's queue, then the record by
CANCEL_RECORD_SCRIPT, which checks the state again as it writes it (the markers are taken back when the task
started meanwhile).
"""
from __future__ import annotations

import enum
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from redis import exceptions as redis_exceptions

from . import task_pb2
from .keys import TaskKeys, new_task_id, valid_queue_name

# A payload is JSON by convention: bytes and str are sent as they are, anything else is JSON-encoded.
Payload = Union[None, bytes, str, Dict[str, Any], List[Any]]  # None: stored as {}
# A delay in seconds or as a timedelta; a run time as an aware datetime or unix seconds.
Delay = Union[float, int, timedelta]
RunAt = Union[datetime, float, int]

DEFAULT_STATUS_TTL_S = 86400  # TASK_RESULT_TTL's default
DEFAULT_UNIQUE_FOR_S = 3600   # EnqueueOptions::unique_ttl_s
MAX_STATUS_TTL_S = 1 << 31    # from_env's bound for TASK_RESULT_TTL
MAX_UNIQUE_FOR_S = 30 * 24 * 3600  # the task API's bound (kMaxUniqueForS in ingest/task_api.cc)
MAX_TOKEN_LEN = 200           # task ids and unique keys: the task API's ValidToken bound
# Task ids and unique keys the fleet keeps for itself: generation.run of generation n is task "generation-<n>"
# with unique key "generation-<n>" (components/chunks generation_start.cc). A caller's task there would take
# that id's record, or hold the key so the generation's own task is never enqueued.
RESERVED_PREFIX = "generation-"
UNIQUE_CLAIM_TTL_S = 30       # cluster schema: a unique key's first TTL, before the task is in (kUniqueClaimTtlS)
UNIQUE_CLAIM_TRIES = 3        # cluster schema: SET NX attempts when the key runs out between a refused SET NX and GET
CANCEL_MARKER_TTL_MS = 30 * 24 * 3600 * 1000  # kCancelMarkerTtlMs: a cancel drops markers older than this

# docs/task-protocol.md, "Cancel": KEYS[1] the status record, KEYS[2] the cancel markers; ARGV id, now ms,
# TASK_RESULT_TTL, now - 30 days. {0} no record, {1, previous state} cancelled, {2, state} nothing changed.
# tests/test_keys_and_config.py checks that this is the document's text, character for character.
CANCEL_SCRIPT = """\
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0} end
if state ~= 'pending' and state ~= 'scheduled' and state ~= 'retry_scheduled' then return {2, state} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'cancelled_at_ms', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, state}
"""

# docs/task-protocol.md, "Enqueue": a unique task on the standard schema in one step (the C++
# GuardedEnqueueScript; its 'p' mode is the workers' periodic mark). KEYS[1] the unique key, KEYS[2] the status
# record (left out when status records are off); ARGV 'u', id, unique_for, 'x' (XADD) or 'z' (ZADD), the add's
# key, its member, its score, TASK_RESULT_TTL, the status record's field/value pairs. Reply {1, id} added,
# {0, holder's id} held. tests/test_keys_and_config.py checks that this is the document's text.
ENQUEUE_SCRIPT = """\
local ttl = tonumber(ARGV[3])
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
"""
ENQUEUE_SCRIPT_SHA1 = hashlib.sha1(ENQUEUE_SCRIPT.encode()).hexdigest()

# docs/task-protocol.md, "Cancel", cluster schema: the record alone, "cancelled" only if it still says the task
# waits (the C++ CancelRecordScript, which workers also run). KEYS[1] the status record; ARGV now ms,
# TASK_RESULT_TTL. {0} no record, {1, previous state} cancelled, {2, state} nothing changed. Sent by SHA-1, so
# the text is the C++ one byte for byte: its leading newline included (tests/test_keys_and_config.py compares it
# with the document's third ```lua block, and tests/clients/protocol_doc_test.py the block with the C++ text).
CANCEL_RECORD_SCRIPT = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0} end
if state ~= 'pending' and state ~= 'scheduled' and state ~= 'retry_scheduled' then return {2, state} end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'cancelled_at_ms', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, state}
"""
CANCEL_RECORD_SCRIPT_SHA1 = hashlib.sha1(CANCEL_RECORD_SCRIPT.encode()).hexdigest()

# The states a cancel can still stop: the task has not started.
CANCELLABLE_STATES = ("pending", "scheduled", "retry_scheduled")

Command = Tuple[Any, ...]


@dataclass(frozen=True)
class _TaskWrites:
    """What enqueueing one task writes: sent as commands (_commands) or as the enqueue script's arguments
    (_enqueue_unique), from one plan so the two cannot drift apart."""
    result: "EnqueueResult"
    scheduled: bool
    key: str                      # the stream (XADD) or the scheduled set (ZADD)
    entry: bytes                  # the envelope, or for ZADD "<queue>|<envelope>"
    run_at_ms: int                # the ZADD score
    status_key: Optional[str]     # None: no status record (status_ttl_s 0)
    status_fields: Tuple[str, ...]
    status_ttl_s: int


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class EnqueueResult:
    id: str
    duplicate: bool = False  # the unique key was held: nothing enqueued, `id` is the holder's
    scheduled: bool = False  # waiting in the scheduled set until its run time


class EnqueueManyError(redis_exceptions.ResponseError):
    """enqueue_many: Redis refused the add (XADD / ZADD) of some tasks after the others were written (a pipeline
    is not a transaction, so nothing is undone). `results` has one entry per task, in the order given: its
    EnqueueResult when it is enqueued, None when Redis refused it. The first refusal is the message's end and
    __cause__. A ResponseError, as the refusal alone was before, so existing handlers still catch it."""

    def __init__(self, results: List[Optional[EnqueueResult]], first: Exception) -> None:
        missing = sum(r is None for r in results)
        super().__init__(f"{missing} of {len(results)} tasks not enqueued: {first}")
        self.results = results

    @property
    def enqueued(self) -> List[EnqueueResult]:
        """The tasks that are in: enqueue_many them again and they run twice."""
        return [r for r in self.results if r is not None]


@dataclass
class Task:
    """One task for enqueue_many (and what enqueue builds from its arguments)."""
    type: str
    payload: Payload = "{}"
    queue: str = "default"
    delay: Optional[Delay] = None
    run_at: Optional[RunAt] = None
    unique_key: str = ""
    unique_for: int = DEFAULT_UNIQUE_FOR_S
    id: str = ""


@dataclass(frozen=True)
class TaskStatus:
    """The status record: `state` is pending, scheduled, running, succeeded, retry_scheduled, dead or cancelled.

    The `*_at_ms` accessors are unix milliseconds (enqueued_at_ms by the producer's clock, the others by the
    worker's or the canceller's), None while the record has no such field (not reached yet, or written by an
    older producer or worker)."""
    state: str
    fields: Dict[str, str] = field(default_factory=dict)  # every field of the hash, state included

    def _ms(self, name: str) -> Optional[int]:
        value = self.fields.get(name)
        return int(value) if value else None

    @property
    def enqueued_at_ms(self) -> Optional[int]:
        return self._ms("enqueued_at_ms")

    @property
    def started_at_ms(self) -> Optional[int]:
        """When the latest attempt started ("running")."""
        return self._ms("started_at_ms")

    @property
    def finished_at_ms(self) -> Optional[int]:
        """When it succeeded or went dead."""
        return self._ms("finished_at_ms")

    @property
    def cancelled_at_ms(self) -> Optional[int]:
        return self._ms("cancelled_at_ms")

    @property
    def attempts(self) -> int:
        return int(self.fields.get("attempts", "0"))

    @property
    def result(self) -> Optional[str]:
        return self.fields.get("result")

    @property
    def error(self) -> Optional[str]:
        return self.fields.get("error")


class CancelOutcome(str, enum.Enum):
    CANCELLED = "cancelled"                  # it was waiting: it is marked and will not run
    ALREADY_CANCELLED = "already_cancelled"  # nothing changed
    NOT_FOUND = "not_found"                  # no record (unknown id, expired, or TASK_RESULT_TTL=0)
    TOO_LATE = "too_late"                    # running or finished (`state` says which): nothing changed


@dataclass(frozen=True)
class CancelResult:
    outcome: CancelOutcome
    state: str = ""  # the record's state before the call ("" when not found)

    @property
    def cancelled(self) -> bool:
        """True when this call cancelled the task."""
        return self.outcome is CancelOutcome.CANCELLED


def _cancel_result(state: str) -> CancelResult:
    if state == "cancelled":
        return CancelResult(CancelOutcome.ALREADY_CANCELLED, state)
    if state in CANCELLABLE_STATES:
        return CancelResult(CancelOutcome.CANCELLED, state)
    return CancelResult(CancelOutcome.TOO_LATE, state)


def _text(value: Any) -> str:
    """A reply as str: bytes from a redis client made with decode_responses=False, str already with True."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _payload_bytes(payload: Payload) -> bytes:
    if payload is None:
        # As the task API and the PHP client store an absent payload (docs/push-handlers.md: "{}").
        return b"{}"
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    # allow_nan=False: NaN and Infinity would be sent as bare NaN / Infinity, which is not JSON: the worker refuses
    # the payload and dead-letters the task. A ValueError here is raised before anything is sent.
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


MAX_DELAY_MS = 366 * 24 * 3600 * 1000  # the task API's bound: a later run is almost surely a unit error


def _run_at_ms(task: Task, now_ms: int) -> int:
    """0 = now, as in the envelope."""
    if task.delay is not None and task.run_at is not None:
        raise ValueError("give delay or run_at, not both")
    if task.delay is not None:
        seconds = task.delay.total_seconds() if isinstance(task.delay, timedelta) else float(task.delay)
        if seconds < 0 or seconds * 1000 > MAX_DELAY_MS:
            raise ValueError("delay must be from 0 to a year")
        return now_ms + round(seconds * 1000)
    if task.run_at is not None:
        if isinstance(task.run_at, datetime):
            if task.run_at.tzinfo is None:
                raise ValueError("run_at must be timezone-aware")
            at = round(task.run_at.timestamp() * 1000)
        else:
            at = round(float(task.run_at) * 1000)
        if at - now_ms > MAX_DELAY_MS:
            # Unix milliseconds given for seconds land thousands of years ahead: refused, as by the task API.
            raise ValueError("run_at is more than a year ahead (run_at is unix seconds)")
        return at
    return 0


# KEYS[1] a unique key, ARGV[1] the id that took it: deletes the key only while it still names that task
# (docs/task-protocol.md, "Enqueue", step 4; the C++ ReleaseUniqueKeyScript).
RELEASE_UNIQUE_SCRIPT = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _whole(value: Any, low: int, high: int) -> bool:
    """An int (not a bool) from low to high: Redis' EX and EXPIRE take whole seconds only, and refuse "86400.0"
    inside the scripts, after the task is in."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _valid_token(value: Any) -> bool:
    """1 to 200 visible ASCII characters: what the task API takes for ids and unique keys (ValidToken in
    ingest/task_api.cc), so a task enqueued here can be read and cancelled through it too."""
    return isinstance(value, str) and 0 < len(value) <= MAX_TOKEN_LEN and all("!" <= c <= "~" for c in value)


def _check(task: Task) -> None:
    if not valid_queue_name(task.queue):
        raise ValueError(f'invalid queue name "{task.queue}"')
    if not task.type:
        raise ValueError("empty task type")
    # An id is a part of key names ({prefix}:task:{id}) and of the task API's path (/v1/tasks/{id}): no '/', and
    # not ending in ":generation", or its record would be the key {prefix}:task:{other id}:generation that
    # workers keep for task {other id} (docs/task-protocol.md, "Keys").
    if task.id and (not _valid_token(task.id) or "/" in task.id or task.id.endswith(":generation")):
        raise ValueError(f"task id {task.id!r}: 1 to 200 visible ASCII characters without '/', not ending in "
                         "':generation'")
    if task.unique_key and not _valid_token(task.unique_key):
        raise ValueError(f"unique_key {task.unique_key!r}: 1 to 200 visible ASCII characters")
    for what, value in (("task id", task.id), ("unique_key", task.unique_key)):
        if value and value.startswith(RESERVED_PREFIX):
            raise ValueError(f"{what} {value!r}: ids and unique keys starting with {RESERVED_PREFIX!r} are the "
                             "fleet's own (its generation.run tasks)")
    if task.unique_key and not _whole(task.unique_for, 1, MAX_UNIQUE_FOR_S):
        # Above 30 days (the task API's bound) a huge value makes the script's final SET ... EX fail after the add.
        raise ValueError(f"unique_for must be a whole number of seconds from 1 to {MAX_UNIQUE_FOR_S} (30 days), "
                         f"got {task.unique_for!r}")


class TaskClient:
    """A producer of one fleet: its stream prefix, key schema and status TTL.

    `redis` is a redis.Redis (or redis.cluster.RedisCluster), with decode_responses False (the default) or True:
    replies are read as bytes or str alike. Not thread-safe beyond what the redis client is; one per thread is
    cheap.
    """

    def __init__(self, redis: Any, keys: Optional[TaskKeys] = None, status_ttl_s: int = DEFAULT_STATUS_TTL_S,
                 clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        if not _whole(status_ttl_s, 0, MAX_STATUS_TTL_S):
            # Refused here, not by Redis: the enqueue script drops EXPIRE's error (the record would never expire)
            # and cancel would raise after it had cancelled. int(td.total_seconds()) for a timedelta.
            raise ValueError(f"status_ttl_s must be an int from 0 to {MAX_STATUS_TTL_S} (seconds), "
                             f"got {status_ttl_s!r}")
        self.redis = redis
        self.keys = keys or TaskKeys()
        self.status_ttl_s = status_ttl_s
        self._clock_ms = clock_ms

    @classmethod
    def from_env(cls, environ: Optional[Dict[str, str]] = None) -> "TaskClient":
        """The fleet's own variables (docs/CONFIGURATION.md), with its defaults; see config.py."""
        from .config import client_from_env
        return client_from_env(cls, environ)

    # --- enqueue ---------------------------------------------------------------------------------------

    def enqueue(self, type: str, payload: Payload = "{}", *, queue: str = "default", delay: Optional[Delay] = None,
                run_at: Optional[RunAt] = None, unique_key: str = "", unique_for: int = DEFAULT_UNIQUE_FOR_S,
                task_id: str = "") -> EnqueueResult:
        """Enqueues one task: now, after `delay`, or at `run_at`; a unique one only if its key is free."""
        task = Task(type, payload, queue, delay, run_at, unique_key, unique_for, task_id)
        _check(task)
        now = self._clock_ms()
        run_at_ms = _run_at_ms(task, now)
        task_id = task.id or new_task_id()
        if task.unique_key and not self.keys.cluster:
            return self._enqueue_unique(task, task_id, run_at_ms, now)
        # Cluster schema: the key is claimed for UNIQUE_CLAIM_TTL_S and held for unique_for once the task is in,
        # so a caller that dies in between leaves a key naming nothing for seconds, not for unique_for.
        claim_s = min(UNIQUE_CLAIM_TTL_S, task.unique_for)
        # Planned before the claim: a payload that cannot be encoded must not leave the key held for nothing.
        writes = self._plan(task, task_id, run_at_ms, now)
        if task.unique_key:
            key = self.keys.unique(task.unique_key)
            for _ in range(UNIQUE_CLAIM_TRIES):
                if self.redis.execute_command("SET", key, task_id, "NX", "EX", claim_s) is not None:
                    break
                holder = self.redis.execute_command("GET", key)
                if holder is not None:
                    return EnqueueResult(_text(holder), duplicate=True)
                # The holder's key ran out (or was released) between the SET NX and the GET: claim it again rather
                # than answer "duplicate" naming a task that was never enqueued.
            else:
                raise redis_exceptions.RedisError(f"unique key {task.unique_key!r} changed hands {UNIQUE_CLAIM_TRIES} "
                                                  "times while being claimed: nothing enqueued, try again")
        try:
            failed = self._run(self._commands(writes))
            if failed:
                raise next(iter(failed.values()))
        except Exception:
            # The key names a task that was not added: release it (if still ours), or a retry would be answered
            # "duplicate" of nothing until the claim runs out. Best effort: Redis may be gone altogether.
            if task.unique_key:
                try:
                    self.redis.execute_command("EVAL", RELEASE_UNIQUE_SCRIPT, 1, self.keys.unique(task.unique_key),
                                               task_id)
                except Exception:  # noqa: BLE001 - the add's error is the one to raise
                    pass
            raise
        if task.unique_key and task.unique_for > claim_s:
            try:  # best effort: the task is in; XX does not make a claim that ran out meanwhile again
                self.redis.execute_command("SET", self.keys.unique(task.unique_key), task_id, "XX", "EX",
                                           task.unique_for)
            except Exception:  # noqa: BLE001 - a failure only shortens the dedupe to the claim
                pass
        return writes.result

    def _enqueue_unique(self, task: Task, task_id: str, run_at_ms: int, now_ms: int) -> EnqueueResult:
        """The standard schema's unique enqueue: ENQUEUE_SCRIPT with the task's writes as its arguments
        (docs/task-protocol.md; EVALSHA, and EVAL when the server does not have the script yet)."""
        w = self._plan(task, task_id, run_at_ms, now_ms)
        keys: List[Any] = [self.keys.unique(task.unique_key)]
        args: List[Any] = ["u", task_id, str(task.unique_for)]
        if w.scheduled:
            args += ["z", w.key, w.entry, str(w.run_at_ms)]
        else:
            args += ["x", w.key, w.entry, ""]
        if w.status_key is not None:
            keys.append(w.status_key)
            args.append(str(w.status_ttl_s))
            args += list(w.status_fields)
        else:
            args.append("0")
        try:
            reply = self.redis.execute_command("EVALSHA", ENQUEUE_SCRIPT_SHA1, len(keys), *keys, *args)
        except redis_exceptions.NoScriptError:
            reply = self.redis.execute_command("EVAL", ENQUEUE_SCRIPT, len(keys), *keys, *args)
        if int(reply[0]) == 0:
            return EnqueueResult(_text(reply[1]), duplicate=True)
        return w.result

    def enqueue_many(self, tasks: Iterable[Task]) -> List[EnqueueResult]:
        """Many tasks in one round trip (BullMQ's addBulk). Unique tasks are refused, as by the C++
        EnqueueTasks (each needs its own answer, held or not, first): use enqueue for them. Every task is checked
        before anything is sent. Not all or nothing: when Redis refuses some adds the others are in, and
        EnqueueManyError says which (its `results`); when Redis cannot be reached (a connection error) any of
        them may be in."""
        tasks = list(tasks)  # checked, then sent: a generator would be used up by the checks and nothing sent
        now = self._clock_ms()
        for task in tasks:
            _check(task)
            if task.unique_key:
                raise ValueError("enqueue_many does not take unique tasks (use enqueue)")
        plans = [self._plan(task, task.id or new_task_id(), _run_at_ms(task, now), now) for task in tasks]
        cmds: List[Command] = []
        adds: List[int] = []  # each task's add: the last of its commands (_commands)
        for writes in plans:
            cmds += self._commands(writes)
            adds.append(len(cmds) - 1)
        failed = self._run(cmds) if cmds else {}
        if failed:
            first = failed[min(failed)]
            if not all(isinstance(e, redis_exceptions.ResponseError) for e in failed.values()):
                raise first  # not a refusal (a connection lost mid-way): whether that add is in is unknown
            results = [None if add in failed else w.result for add, w in zip(adds, plans)]
            raise EnqueueManyError(results, first) from first
        return [w.result for w in plans]

    def _plan(self, task: Task, task_id: str, run_at_ms: int, now_ms: int) -> _TaskWrites:
        envelope = task_pb2.TaskEnvelope(id=task_id, type=task.type, payload=_payload_bytes(task.payload), attempt=0,
                                         enqueued_at_ms=now_ms, run_at_ms=run_at_ms, unique_key=task.unique_key,
                                         queue=task.queue)
        raw = envelope.SerializeToString()
        scheduled = run_at_ms > now_ms
        stream = self.keys.queue(task.queue, self.keys.shard_for(task.unique_key))
        status_key: Optional[str] = None
        fields: Tuple[str, ...] = ()
        if self.status_ttl_s > 0:
            status_key = self.keys.status(task_id)
            fields = ("state", "scheduled" if scheduled else "pending", "type", task.type, "queue", task.queue,
                      "attempts", "0", "enqueued_at_ms", str(now_ms))
            if scheduled:
                fields += ("run_at_ms", str(run_at_ms))
        return _TaskWrites(result=EnqueueResult(task_id, scheduled=scheduled), scheduled=scheduled,
                           key=self.keys.scheduled_of(stream) if scheduled else stream,
                           entry=task.queue.encode() + b"|" + raw if scheduled else raw, run_at_ms=run_at_ms,
                           status_key=status_key, status_fields=fields, status_ttl_s=self.status_ttl_s)

    @staticmethod
    def _commands(w: _TaskWrites) -> List[Command]:
        """The plan as commands, in the order _run sends them: the status record first, then the add."""
        cmds: List[Command] = []
        if w.status_key is not None:
            cmds.append(("HSET", w.status_key) + w.status_fields)
            cmds.append(("EXPIRE", w.status_key, str(w.status_ttl_s)))
        if w.scheduled:
            cmds.append(("ZADD", w.key, str(w.run_at_ms), w.entry))
        else:
            cmds.append(("XADD", w.key, "*", "e", w.entry))
        return cmds

    def _run(self, cmds: List[Command]) -> Dict[int, Exception]:
        """Sends the commands in order; the status writes are best effort, the adds must succeed. Returns the
        adds that failed (the error of each, by its index in `cmds`; empty when all are in), so enqueue_many can
        say which tasks are in; raises when the round trip itself fails."""
        def is_status(cmd: Command) -> bool:
            return cmd[0] in ("HSET", "EXPIRE")

        everything = list(range(len(cmds)))
        batches = [everything]
        if self.keys.cluster:
            batches = [[i for i in everything if is_status(cmds[i])], [i for i in everything if not is_status(cmds[i])]]
        failed: Dict[int, Exception] = {}
        for batch in batches:
            if not batch:
                continue
            pipe = self.redis.pipeline(transaction=False)
            for i in batch:
                pipe.execute_command(*cmds[i])
            replies = pipe.execute(raise_on_error=False)
            for i, reply in zip(batch, replies):
                if isinstance(reply, Exception) and not is_status(cmds[i]):
                    failed[i] = reply
        return failed

    # --- follow ----------------------------------------------------------------------------------------

    def status(self, task_id: str) -> Optional[TaskStatus]:
        """The task's status record; None when there is none (unknown id, expired, or TASK_RESULT_TTL=0)."""
        raw = self.redis.execute_command("HGETALL", self.keys.status(task_id))
        if isinstance(raw, dict):  # a RedisCluster answers HGETALL with a dict
            pairs = list(raw.items())
        else:
            pairs = list(zip(raw[0::2], raw[1::2]))
        fields = {_text(k): _text(v) for k, v in pairs}
        if not fields:
            return None
        return TaskStatus(fields.get("state", ""), fields)

    # --- cancel ----------------------------------------------------------------------------------------

    def cancel(self, task_id: str) -> CancelResult:
        """Cancels the task if it has not started (its record says pending, scheduled or retry_scheduled): a
        worker that reads it acks it without running it. A task a worker had read ahead before the cancel still
        runs (its record then moves on from "cancelled"). Needs status records: with status_ttl_s 0 every id
        is NOT_FOUND and nothing is sent. ValueError for an empty id; redis-py's exceptions when Redis fails."""
        if not task_id:
            raise ValueError("empty task id")
        if self.status_ttl_s <= 0:
            return CancelResult(CancelOutcome.NOT_FOUND)
        now = self._clock_ms()
        if self.keys.cluster:
            return self._cancel_sharded(task_id, now)
        reply = self.redis.execute_command("EVAL", CANCEL_SCRIPT, 2, self.keys.status(task_id), self.keys.cancelled(),
                                           task_id, str(now), str(self.status_ttl_s),
                                           str(now - CANCEL_MARKER_TTL_MS))
        if not isinstance(reply, list) or not reply:
            raise RuntimeError(f"cancel script: unexpected reply {reply!r}")
        if int(reply[0]) == 0:
            return CancelResult(CancelOutcome.NOT_FOUND)
        return _cancel_result(_text(reply[1]) if len(reply) > 1 else "")

    def _cancel_sharded(self, task_id: str, now: int) -> CancelResult:
        # The record and the shards live on different masters: no script spans them. The markers first (a
        # worker reading the task from then on skips it), then the record, as the C++ CancelSharded
        # (task_control.cc) does it.
        key = self.keys.status(task_id)
        state_raw, queue_raw = self.redis.execute_command("HMGET", key, "state", "queue")
        if state_raw is None:
            return CancelResult(CancelOutcome.NOT_FOUND)
        state = _text(state_raw)
        if state not in CANCELLABLE_STATES:
            return _cancel_result(state)
        queue = _text(queue_raw) if queue_raw is not None else ""
        if not valid_queue_name(queue):
            raise RuntimeError(f"task {task_id} has a record without a valid queue")
        shards = self.keys.queue_shards(queue)
        pipe = self.redis.pipeline(transaction=False)
        for stream in shards:
            markers = self.keys.cancelled_of(stream)
            pipe.execute_command("ZREMRANGEBYSCORE", markers, "-inf", f"({now - CANCEL_MARKER_TTL_MS}")
            pipe.execute_command("ZADD", markers, str(now), task_id)
        pipe.execute()
        # The record by a script that checks its state as it writes it: read above, then written, a task that
        # started in between would end up "cancelled" while it ran or after it succeeded. An error here leaves
        # the markers: the caller retries, and a retry meets them.
        args = (1, key, str(now), str(self.status_ttl_s))
        try:
            reply = self.redis.execute_command("EVALSHA", CANCEL_RECORD_SCRIPT_SHA1, *args)
        except redis_exceptions.NoScriptError:
            reply = self.redis.execute_command("EVAL", CANCEL_RECORD_SCRIPT, *args)
        if not isinstance(reply, list) or not reply:
            raise RuntimeError(f"cancel record script: unexpected reply {reply!r}")
        if int(reply[0]) == 1:
            return CancelResult(CancelOutcome.CANCELLED, state)
        now_state = _text(reply[1]) if len(reply) > 1 else ""
        # Another cancel got there first (a double click, a client's retry): the markers are its too, so they
        # stay. Otherwise the task started or the record is gone: taken back, or a retry of the task would be
        # skipped. Best effort: a marker left behind is dropped by a later cancel's trim.
        if now_state != "cancelled":
            try:
                pipe = self.redis.pipeline(transaction=False)
                for stream in shards:
                    pipe.execute_command("ZREM", self.keys.cancelled_of(stream), task_id)
                pipe.execute()
            except redis_exceptions.RedisError:
                pass
        if int(reply[0]) == 0:
            return CancelResult(CancelOutcome.NOT_FOUND)
        return _cancel_result(now_state)

    # --- pause / resume --------------------------------------------------------------------------------

    def pause(self, queue: str) -> None:
        """Workers stop taking tasks from `queue` (they wait in its stream) until resume."""
        self._set_paused(queue, True)

    def resume(self, queue: str) -> None:
        self._set_paused(queue, False)

    def paused_queues(self) -> List[str]:
        return sorted(_text(m) for m in self.redis.smembers(self.keys.paused()))

    def _set_paused(self, queue: str, paused: bool) -> None:
        # As SetQueuePaused (components/operations fleet_admin.cc): in cluster mode the shard flags, which the
        # workers read, first; then the set operators list.
        if not valid_queue_name(queue):
            raise ValueError(f'invalid queue name "{queue}"')
        if self.keys.cluster:
            pipe = self.redis.pipeline(transaction=False)
            for stream in self.keys.queue_shards(queue):
                if paused:
                    pipe.execute_command("SET", self.keys.paused_flag_of(stream), "1")
                else:
                    pipe.execute_command("DEL", self.keys.paused_flag_of(stream))
            pipe.execute()
        self.redis.execute_command("SADD" if paused else "SREM", self.keys.paused(), queue)
