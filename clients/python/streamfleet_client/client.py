"""Enqueue streamfleet tasks and follow them, talking to Redis directly (docs/task-protocol.md).

Same semantics as the C++ EnqueueTask / EnqueueTasks (components/taskqueue task_queue.cc):
- the status record `{prefix}:task:{id}` ("pending" or "scheduled") is written before the XADD / ZADD, in the
  same pipeline, so a fast worker's "succeeded" can never be overwritten by it; in cluster mode the status
  writes go in a round trip of their own first (a cluster pipeline is split per master, in no fixed order);
- status writes are best effort, the XADD / ZADD must succeed;
- a unique task first takes `{prefix}:unique:{key}` with SET NX EX; when the key is held nothing is enqueued
  and the result carries the holder's task id;
- status_ttl_s (TASK_RESULT_TTL, default 86400) of 0 writes no status record at all.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import task_pb2
from .keys import TaskKeys, new_task_id, valid_queue_name

# A payload is JSON by convention: bytes and str are sent as they are, anything else is JSON-encoded.
Payload = Union[bytes, str, Dict[str, Any], List[Any]]
# A delay in seconds or as a timedelta; a run time as an aware datetime or unix seconds.
Delay = Union[float, int, timedelta]
RunAt = Union[datetime, float, int]

DEFAULT_STATUS_TTL_S = 86400  # TASK_RESULT_TTL's default
DEFAULT_UNIQUE_FOR_S = 3600   # EnqueueOptions::unique_ttl_s

Command = Tuple[Any, ...]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class EnqueueResult:
    id: str
    duplicate: bool = False  # the unique key was held: nothing enqueued, `id` is the holder's
    scheduled: bool = False  # waiting in the scheduled set until its run time


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
    """The status record: `state` is pending, scheduled, running, succeeded, retry_scheduled or dead."""
    state: str
    fields: Dict[str, str] = field(default_factory=dict)  # every field of the hash, state included

    @property
    def attempts(self) -> int:
        return int(self.fields.get("attempts", "0"))

    @property
    def result(self) -> Optional[str]:
        return self.fields.get("result")

    @property
    def error(self) -> Optional[str]:
        return self.fields.get("error")


def _payload_bytes(payload: Payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def _run_at_ms(task: Task, now_ms: int) -> int:
    """0 = now, as in the envelope."""
    if task.delay is not None and task.run_at is not None:
        raise ValueError("give delay or run_at, not both")
    if task.delay is not None:
        seconds = task.delay.total_seconds() if isinstance(task.delay, timedelta) else float(task.delay)
        if seconds < 0:
            raise ValueError("negative delay")
        return now_ms + round(seconds * 1000)
    if task.run_at is not None:
        if isinstance(task.run_at, datetime):
            if task.run_at.tzinfo is None:
                raise ValueError("run_at must be timezone-aware")
            return round(task.run_at.timestamp() * 1000)
        return round(float(task.run_at) * 1000)
    return 0


def _check(task: Task) -> None:
    if not valid_queue_name(task.queue):
        raise ValueError(f'invalid queue name "{task.queue}"')
    if not task.type:
        raise ValueError("empty task type")


class TaskClient:
    """A producer of one fleet: its stream prefix, key schema and status TTL.

    `redis` is a redis.Redis (or redis.cluster.RedisCluster) made with the default decode_responses=False:
    envelopes are bytes. Not thread-safe beyond what the redis client is; one per thread is cheap.
    """

    def __init__(self, redis: Any, keys: Optional[TaskKeys] = None, status_ttl_s: int = DEFAULT_STATUS_TTL_S,
                 clock_ms: Callable[[], int] = wall_clock_ms) -> None:
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
        if task.unique_key:
            taken = self.redis.execute_command("SET", self.keys.unique(task.unique_key), task_id, "NX", "EX",
                                               task.unique_for)
            if taken is None:
                holder = self.redis.execute_command("GET", self.keys.unique(task.unique_key))
                return EnqueueResult(holder.decode() if holder is not None else task_id, duplicate=True)
        cmds: List[Command] = []
        result = self._append_enqueue(task, task_id, run_at_ms, now, cmds)
        self._run(cmds)
        return result

    def enqueue_many(self, tasks: Sequence[Task]) -> List[EnqueueResult]:
        """Many tasks in one round trip (BullMQ's addBulk). Unique tasks are refused, as by the C++
        EnqueueTasks (each needs its own SET NX answer first): use enqueue for them. Every task is checked
        before anything is sent."""
        now = self._clock_ms()
        cmds: List[Command] = []
        results: List[EnqueueResult] = []
        for task in tasks:
            _check(task)
            if task.unique_key:
                raise ValueError("enqueue_many does not take unique tasks (use enqueue)")
        for task in tasks:
            results.append(self._append_enqueue(task, task.id or new_task_id(), _run_at_ms(task, now), now, cmds))
        if cmds:
            self._run(cmds)
        return results

    def _append_enqueue(self, task: Task, task_id: str, run_at_ms: int, now_ms: int,
                        cmds: List[Command]) -> EnqueueResult:
        envelope = task_pb2.TaskEnvelope(id=task_id, type=task.type, payload=_payload_bytes(task.payload), attempt=0,
                                         enqueued_at_ms=now_ms, run_at_ms=run_at_ms, unique_key=task.unique_key,
                                         queue=task.queue)
        raw = envelope.SerializeToString()
        scheduled = run_at_ms > now_ms
        stream = self.keys.queue(task.queue, self.keys.shard_for(task.unique_key))
        if self.status_ttl_s > 0:
            key = self.keys.status(task_id)
            cmds.append(("HSET", key, "state", "scheduled" if scheduled else "pending", "type", task.type,
                         "queue", task.queue, "attempts", "0"))
            cmds.append(("EXPIRE", key, str(self.status_ttl_s)))
        if scheduled:
            cmds.append(("ZADD", self.keys.scheduled_of(stream), str(run_at_ms), task.queue.encode() + b"|" + raw))
        else:
            cmds.append(("XADD", stream, "*", "e", raw))
        return EnqueueResult(task_id, scheduled=scheduled)

    def _run(self, cmds: List[Command]) -> None:
        """Sends the commands in order; the status writes are best effort, the adds must succeed."""
        def is_status(cmd: Command) -> bool:
            return cmd[0] in ("HSET", "EXPIRE")

        batches = [cmds]
        if self.keys.cluster:
            batches = [[c for c in cmds if is_status(c)], [c for c in cmds if not is_status(c)]]
        for batch in batches:
            if not batch:
                continue
            pipe = self.redis.pipeline(transaction=False)
            for cmd in batch:
                pipe.execute_command(*cmd)
            replies = pipe.execute(raise_on_error=False)
            for cmd, reply in zip(batch, replies):
                if isinstance(reply, Exception) and not is_status(cmd):
                    raise reply

    # --- follow ----------------------------------------------------------------------------------------

    def status(self, task_id: str) -> Optional[TaskStatus]:
        """The task's status record; None when there is none (unknown id, expired, or TASK_RESULT_TTL=0)."""
        raw = self.redis.execute_command("HGETALL", self.keys.status(task_id))
        if isinstance(raw, dict):  # a RedisCluster answers HGETALL with a dict
            pairs = list(raw.items())
        else:
            pairs = list(zip(raw[0::2], raw[1::2]))
        fields = {k.decode(): v.decode(errors="replace") for k, v in pairs}
        if not fields:
            return None
        return TaskStatus(fields.get("state", ""), fields)

    # --- pause / resume --------------------------------------------------------------------------------

    def pause(self, queue: str) -> None:
        """Workers stop taking tasks from `queue` (they wait in its stream) until resume."""
        self._set_paused(queue, True)

    def resume(self, queue: str) -> None:
        self._set_paused(queue, False)

    def paused_queues(self) -> List[str]:
        return sorted(m.decode() for m in self.redis.smembers(self.keys.paused()))

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
