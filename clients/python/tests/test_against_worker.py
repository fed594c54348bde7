"""streamfleet_client against a real redis-server and real streamfleet-queue-workers.

tests/clients/python_client_test.sh starts them (one worker per key schema, tests/clients/fleet.sh) and passes
STREAMFLEET_TEST_REDIS_PORT. Tasks enqueued here must run, delayed ones wait until due, unique ones dedupe,
paused queues hold their tasks until resumed, the status record reads back what the worker wrote, and a
cancelled task is acked by the worker without running while a started or finished one cannot be cancelled.
"""
from __future__ import annotations

import json
import math
import os
import time
import unittest
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

import redis

from streamfleet_client import (CANCEL_RECORD_SCRIPT_SHA1, ENQUEUE_SCRIPT_SHA1, CancelOutcome, CancelResult,
                                EnqueueManyError, EnqueueResult, Task, TaskClient, TaskKeys, TaskStatus, crc16,
                                task_pb2)
from streamfleet_client.client import CANCEL_MARKER_TTL_MS, wall_clock_ms
from streamfleet_client.keys import new_task_id

PORT_ENV = "STREAMFLEET_TEST_REDIS_PORT"


def redis_port() -> int:
    port = os.environ.get(PORT_ENV)
    if not port:
        raise RuntimeError(f"{PORT_ENV} is not set: run tests/clients/python_client_test.sh BUILD_DIR")
    return int(port)


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class WorkerSuite:
    """The behaviour every key schema must show; subclasses say which worker (prefix, schema) to talk to."""

    keys: TaskKeys
    r: redis.Redis
    client: TaskClient
    assertEqual: Callable[..., None]
    assertTrue: Callable[..., None]
    assertIsNone: Callable[..., None]
    assertIsNotNone: Callable[..., None]
    assertRaises: Callable[..., object]
    assertIn: Callable[..., None]
    assertGreaterEqual: Callable[..., None]
    assertLessEqual: Callable[..., None]
    assertNotIn: Callable[..., None]
    subTest: Callable[..., object]

    def setUp(self) -> None:
        self.r = redis.Redis(port=redis_port())
        self.client = TaskClient(self.r, self.keys)

    def state(self, task_id: str) -> Optional[str]:
        s = self.client.status(task_id)
        return s.state if s else None

    def wait_succeeded(self, task_id: str, timeout_s: float = 10.0) -> TaskStatus:
        wait_for(f"task {task_id} to succeed", lambda: self.state(task_id) == "succeeded", timeout_s)
        status = self.client.status(task_id)
        assert status is not None
        return status

    def queue_entries(self, queue: str) -> List[bytes]:
        """The envelopes in every shard stream of `queue`."""
        out: List[bytes] = []
        for stream in self.keys.queue_shards(queue):
            out += [fields[b"e"] for _, fields in self.r.xrange(stream)]
        return out

    def entry_of(self, queue: str, task_id: str) -> Optional[Tuple[str, bytes]]:
        """(shard stream, entry id) of the task's entry in `queue`, None while it has none."""
        for stream in self.keys.queue_shards(queue):
            for entry_id, fields in self.r.xrange(stream):
                if task_pb2.TaskEnvelope.FromString(fields[b"e"]).id == task_id:
                    return stream, entry_id
        return None

    def markers(self, queue: str, task_id: str) -> List[Optional[float]]:
        """The task's cancel-marker score in the markers of every shard of `queue` (one key in standard mode)."""
        return [self.r.zscore(self.keys.cancelled_of(s), task_id) for s in self.keys.queue_shards(queue)]

    def wait_skipped(self, queue: str, task_id: str) -> None:
        """Waits until a worker has read the cancelled task and skipped it: the read script drops the marker of
        its shard and acks the entry in one step. Then the entry must be delivered and acked, and the record
        must never have moved on from "cancelled"."""
        wait_for(f"task {task_id} to reach a stream", lambda: self.entry_of(queue, task_id) is not None)
        found = self.entry_of(queue, task_id)
        assert found is not None
        stream, entry_id = found
        wait_for(f"a worker to skip task {task_id}",
                 lambda: self.r.zscore(self.keys.cancelled_of(stream), task_id) is None)
        group = next(g for g in self.r.xinfo_groups(stream) if g["name"] == b"workers")
        last = tuple(int(x) for x in group["last-delivered-id"].split(b"-"))
        self.assertGreaterEqual(last, tuple(int(x) for x in entry_id.split(b"-")))  # it was read
        self.assertEqual(self.r.xpending_range(stream, "workers", min=entry_id, max=entry_id, count=1), [])  # acked
        status = self.client.status(task_id)
        assert status is not None
        self.assertEqual(status.state, "cancelled")
        for never in ("worker", "started_at_ms", "finished_at_ms", "result"):
            self.assertNotIn(never, status.fields)

    # --- the tests ---------------------------------------------------------------------------------------

    def test_enqueued_task_runs_and_its_status_round_trips(self) -> None:
        res = self.client.enqueue("noop", {"from": "python"})
        self.assertEqual((res.duplicate, res.scheduled), (False, False))
        status = self.wait_succeeded(res.id)
        self.assertEqual(status.attempts, 1)
        self.assertEqual(status.result, "")
        # What enqueue wrote stays next to what the worker added (HSET never removes fields).
        self.assertEqual(status.fields["type"], "noop")
        self.assertEqual(status.fields["queue"], "default")
        self.assertTrue(status.fields["worker"].startswith("w-"))
        ttl = self.r.ttl(self.keys.status(res.id))
        self.assertTrue(86000 < ttl <= 86400, ttl)
        # The timestamps: the producer's at enqueue, the worker's when it started and finished (one clock here).
        assert status.enqueued_at_ms is not None and status.started_at_ms is not None
        assert status.finished_at_ms is not None
        self.assertLessEqual(status.enqueued_at_ms, status.started_at_ms)
        self.assertLessEqual(status.started_at_ms, status.finished_at_ms)
        self.assertIsNone(status.cancelled_at_ms)

    def test_status_of_a_waiting_task_and_of_an_unknown_one(self) -> None:
        before = wall_clock_ms()
        res = self.client.enqueue("noop", "{}", queue="unread")
        after = wall_clock_ms()
        status = self.client.status(res.id)
        assert status is not None
        enqueued_at = status.fields.get("enqueued_at_ms", "")
        self.assertEqual(status.fields, {"state": "pending", "type": "noop", "queue": "unread", "attempts": "0",
                                         "enqueued_at_ms": enqueued_at})
        self.assertTrue(before <= int(enqueued_at) <= after, (before, enqueued_at, after))
        found = self.entry_of("unread", res.id)
        assert found is not None
        envelope = task_pb2.TaskEnvelope.FromString(self.r.xrange(found[0], found[1], found[1])[0][1][b"e"])
        self.assertEqual(envelope.enqueued_at_ms, int(enqueued_at))  # the same clock reading as the envelope's
        self.assertEqual(status.enqueued_at_ms, int(enqueued_at))
        self.assertIsNone(status.started_at_ms)
        self.assertIsNone(self.client.status("no-such-task"))

    def test_bulk_status_records_carry_the_enqueue_time(self) -> None:
        results = self.client.enqueue_many([Task("noop", queue="unread"), Task("noop", queue="unread", delay=3600)])
        fields = []
        for r in results:
            status = self.client.status(r.id)
            assert status is not None
            fields.append(status.fields)
        self.assertEqual([f["state"] for f in fields], ["pending", "scheduled"])
        self.assertEqual(fields[0]["enqueued_at_ms"], fields[1]["enqueued_at_ms"])  # one clock reading per call
        found = self.entry_of("unread", results[0].id)
        assert found is not None
        envelope = task_pb2.TaskEnvelope.FromString(self.r.xrange(found[0], found[1], found[1])[0][1][b"e"])
        self.assertEqual(str(envelope.enqueued_at_ms), fields[0]["enqueued_at_ms"])

    def test_delayed_task_waits_until_due(self) -> None:
        enqueued = time.time()
        res = self.client.enqueue("noop", delay=1.5)
        self.assertTrue(res.scheduled)
        self.assertEqual(self.state(res.id), "scheduled")
        time.sleep(0.8)
        self.assertEqual(self.state(res.id), "scheduled")  # the worker is idle and polling, yet it waits
        self.wait_succeeded(res.id)
        self.assertGreaterEqual(time.time() - enqueued, 1.5)

    def test_run_at_a_time(self) -> None:
        run_at = datetime.now(timezone.utc) + timedelta(seconds=1)
        res = self.client.enqueue("noop", run_at=run_at)
        self.assertTrue(res.scheduled)
        self.assertEqual(self.state(res.id), "scheduled")
        self.wait_succeeded(res.id)
        self.assertGreaterEqual(datetime.now(timezone.utc), run_at)

    def test_unique_key_dedupes_to_the_first_task(self) -> None:
        key = f"py-unique-{time.time_ns()}"
        first = self.client.enqueue("noop", queue="unread", unique_key=key)
        again = self.client.enqueue("noop", queue="unread", unique_key=key)
        self.assertEqual((again.duplicate, again.id), (True, first.id))
        # Held for unique_for once the task is in (the cluster schema claims it for 30 s before the add).
        self.assertTrue(30 < self.r.ttl(self.keys.unique(key)) <= 3600)
        envelopes = [e for e in self.queue_entries("unread") if first.id.encode() in e]
        self.assertEqual(len(envelopes), 1)
        # In the cluster schema the task sits on the shard its key hashes to (the same in every language).
        stream = self.keys.queue("unread", crc16(key.encode()) % self.keys.shards)
        self.assertTrue(any(first.id.encode() in f[b"e"] for _, f in self.r.xrange(stream)))
        # And a unique task on a read queue runs once its key is taken.
        ran = self.client.enqueue("noop", unique_key=key + "-run")
        self.wait_succeeded(ran.id)
        self.assertEqual(self.client.enqueue("noop", unique_key=key + "-run").id, ran.id)

    def test_bulk_enqueue(self) -> None:
        tasks = [Task("noop", {"i": i}, queue=("critical", "default", "low")[i % 3]) for i in range(12)]
        tasks.append(Task("noop", delay=0.5))
        results = self.client.enqueue_many(tasks)
        self.assertEqual(len({r.id for r in results}), 13)
        self.assertEqual([r.scheduled for r in results], [False] * 12 + [True])
        for r in results:
            self.wait_succeeded(r.id)

    def test_bulk_refuses_unique_tasks_and_sends_nothing(self) -> None:
        before = len(self.queue_entries("unread"))
        with self.assertRaises(ValueError):
            self.client.enqueue_many([Task("noop", queue="unread"), Task("noop", queue="unread", unique_key="k")])
        self.assertEqual(len(self.queue_entries("unread")), before)

    def test_invalid_input_sends_nothing(self) -> None:
        before = len(self.queue_entries("unread"))
        with self.assertRaises(ValueError):
            self.client.enqueue("noop", queue="Unread")  # upper case is not a queue name
        with self.assertRaises(ValueError):
            self.client.enqueue("", queue="unread")
        with self.assertRaises(ValueError):
            self.client.enqueue("noop", queue="unread", delay=1, run_at=time.time() + 1)
        for bad in (0, -5, 1.5, True):  # the key's TTL: the script would refuse it only after the add
            with self.assertRaises(ValueError):
                self.client.enqueue("noop", queue="unread", unique_key=f"bad-ttl-{bad}", unique_for=bad)
            self.assertEqual(self.r.exists(self.keys.unique(f"bad-ttl-{bad}")), 0)
        self.assertEqual(len(self.queue_entries("unread")), before)

    def test_bulk_takes_a_generator(self) -> None:
        # Checked, then sent: a generator used up by the checks would enqueue nothing and say nothing.
        results = self.client.enqueue_many(Task("noop", {"i": i}, queue="unread") for i in range(3))
        self.assertEqual(len(results), 3)
        for r in results:
            self.assertIsNotNone(self.entry_of("unread", r.id))

    def test_a_partly_refused_bulk_names_the_tasks_that_are_in(self) -> None:
        # A pipeline is not a transaction: the adds Redis takes stay when it refuses another. The error must say
        # which are in, or a retry of the whole batch enqueues those twice.
        broken = f"broken-{time.time_ns()}"
        for stream in self.keys.queue_shards(broken):
            self.r.set(stream, "not a stream")  # Redis refuses the XADD (WRONGTYPE): a real refused add
        self.addCleanup(self.r.delete, *self.keys.queue_shards(broken))
        tasks = [Task("noop", queue="unread"), Task("noop", queue=broken), Task("noop", queue="unread", delay=3600)]
        with self.assertRaises(EnqueueManyError) as caught:
            self.client.enqueue_many(tasks)
        err = caught.exception
        self.assertIsInstance(err, redis.ResponseError)  # as the bare refusal was: existing handlers still catch it
        self.assertIn("WRONGTYPE", str(err))
        first, missing, later = err.results
        self.assertIsNone(missing)
        assert first is not None and later is not None
        self.assertEqual(err.enqueued, [first, later])
        self.assertEqual((first.scheduled, later.scheduled), (False, True))
        self.assertIsNotNone(self.entry_of("unread", first.id))  # they really are in
        scheduled = {self.keys.scheduled_of(s) for s in self.keys.queue_shards("unread")}
        self.assertTrue(any(later.id.encode() in m for z in scheduled for m in self.r.zrange(z, 0, -1)))

    def test_nan_payload_is_refused_before_anything_is_sent(self) -> None:
        # NaN / Infinity are not JSON: the worker would refuse the payload and dead-letter the task.
        before = len(self.queue_entries("unread"))
        unique = f"py-nan-{time.time_ns()}"
        for payload in ({"x": math.nan}, [math.inf], {"y": -math.inf}):
            with self.assertRaises(ValueError):
                self.client.enqueue("noop", payload, queue="unread")
            with self.assertRaises(ValueError):
                self.client.enqueue("noop", payload, queue="unread", unique_key=unique)
            with self.assertRaises(ValueError):
                self.client.enqueue_many([Task("noop", {"ok": 1}, queue="unread"),
                                          Task("noop", payload, queue="unread")])
        self.assertEqual(len(self.queue_entries("unread")), before)
        self.assertEqual(self.r.exists(self.keys.unique(unique)), 0)  # the cluster schema's claim was not taken

    def test_unique_for_is_at_most_30_days(self) -> None:
        # Past what SET ... EX takes (1e16) the script's last step would fail after the add; the task API's bound.
        before = len(self.queue_entries("unread"))
        unique = f"py-long-{time.time_ns()}"
        for bad in (10 ** 16, 30 * 86400 + 1):
            with self.assertRaisesRegex(ValueError, "unique_for"):
                self.client.enqueue("noop", queue="unread", unique_key=unique, unique_for=bad)
        self.assertEqual(len(self.queue_entries("unread")), before)
        self.assertEqual(self.r.exists(self.keys.unique(unique)), 0)
        res = self.client.enqueue("noop", queue="unread", unique_key=unique, unique_for=30 * 86400)
        self.assertFalse(res.duplicate)
        self.assertTrue(30 * 86400 - 10 < self.r.ttl(self.keys.unique(unique)) <= 30 * 86400)

    def test_ids_and_unique_keys_are_what_the_task_api_takes(self) -> None:
        # Visible ASCII, 1 to 200 (ids without '/': GET/DELETE /v1/tasks/{id}); an id ending in ":generation"
        # would make its record the key a worker keeps for another task's generation.
        before = len(self.queue_entries("unread"))
        victim = new_task_id()
        for bad_id in (f"{victim}:generation", "has space", "a/b", "x" * 201, "caf\u00e9", "tab\t"):
            with self.subTest(bad_id):
                with self.assertRaisesRegex(ValueError, "task id"):
                    self.client.enqueue("noop", queue="unread", task_id=bad_id)
                with self.assertRaisesRegex(ValueError, "task id"):
                    self.client.enqueue_many([Task("noop", queue="unread", id=bad_id)])
                self.assertEqual(self.r.exists(self.keys.status(bad_id)), 0)
        for bad_key in ("has space", "x" * 201, "na\u00efve"):
            with self.subTest(bad_key):
                with self.assertRaisesRegex(ValueError, "unique_key"):
                    self.client.enqueue("noop", queue="unread", unique_key=bad_key)
                self.assertEqual(self.r.exists(self.keys.unique(bad_key)), 0)
        self.assertEqual(len(self.queue_entries("unread")), before)
        # The edges the task API takes are taken here too.
        long_id = f"py-{time.time_ns()}-".ljust(200, "x")
        odd_id = f"py:{time.time_ns()}~!$%&'()*+,;=?@[]"
        for good in (long_id, odd_id):
            self.assertEqual(self.client.enqueue("noop", queue="unread", task_id=good, unique_key=good).id, good)
            self.assertEqual(self.state(good), "pending")

    def test_the_fleets_own_generation_ids_and_keys_are_refused(self) -> None:
        # generation.run of generation n is task "generation-<n>" with unique key "generation-<n>": a caller's task
        # there would take its record, or hold its key so the generation's task is never enqueued.
        before = len(self.queue_entries("unread"))
        for reserved in ("generation-7", "generation-", "generation-x"):
            with self.subTest(reserved):
                with self.assertRaisesRegex(ValueError, "task id .*generation-"):
                    self.client.enqueue("noop", queue="unread", task_id=reserved)
                with self.assertRaisesRegex(ValueError, "task id .*generation-"):
                    self.client.enqueue_many([Task("noop", queue="unread", id=reserved)])
                with self.assertRaisesRegex(ValueError, "unique_key .*generation-"):
                    self.client.enqueue("noop", queue="unread", unique_key=reserved)
                self.assertEqual(self.r.exists(self.keys.status(reserved), self.keys.unique(reserved)), 0)
        self.assertEqual(len(self.queue_entries("unread")), before)
        # Only the prefix is the fleet's.
        mine = f"my-generation-{time.time_ns()}"
        self.assertEqual(self.client.enqueue("noop", queue="unread", task_id=mine, unique_key=mine).id, mine)

    def test_paused_queue_holds_tasks_until_resumed(self) -> None:
        self.client.pause("low")
        try:
            self.assertIn("low", self.client.paused_queues())
            # A slot already blocked in XREADGROUP on "low" re-reads the paused set after its BLOCK (500 ms).
            time.sleep(0.7)
            ids = [self.client.enqueue("noop", queue="low").id for _ in range(3)]
            time.sleep(1.0)
            self.assertEqual([self.state(i) for i in ids], ["pending"] * 3)
            other = self.client.enqueue("noop", queue="default")  # other queues keep running
            self.wait_succeeded(other.id)
        finally:
            self.client.resume("low")
        self.assertEqual(self.client.paused_queues(), [])
        for i in ids:
            self.wait_succeeded(i)

    def test_cancelled_task_never_runs(self) -> None:
        self.client.pause("low")
        try:
            # A slot already blocked in XREADGROUP on "low" re-reads the paused set after its BLOCK (500 ms):
            # after this no worker reads "low", so both tasks wait unread in its stream.
            time.sleep(0.7)
            doomed = self.client.enqueue("noop", queue="low")
            other = self.client.enqueue("noop", queue="low")
            before = wall_clock_ms()
            res = self.client.cancel(doomed.id)
            after = wall_clock_ms()
            self.assertEqual(res, CancelResult(CancelOutcome.CANCELLED, "pending"))
            self.assertTrue(res.cancelled)
            status = self.client.status(doomed.id)
            assert status is not None and status.cancelled_at_ms is not None
            self.assertEqual(status.state, "cancelled")
            self.assertTrue(before <= status.cancelled_at_ms <= after)
            self.assertEqual((status.fields["type"], status.fields["queue"]), ("noop", "low"))  # HSET keeps fields
            # Marked in every shard of the queue (the task's shard is not recorded), scored by the cancel time.
            self.assertEqual(self.markers("low", doomed.id), [float(status.cancelled_at_ms)] * self.keys.shards)
            # A second cancel changes nothing.
            self.assertEqual(self.client.cancel(doomed.id), CancelResult(CancelOutcome.ALREADY_CANCELLED, "cancelled"))
            again = self.client.status(doomed.id)
            assert again is not None
            self.assertEqual(again.fields, status.fields)
        finally:
            self.client.resume("low")
        self.wait_succeeded(other.id)
        self.wait_skipped("low", doomed.id)

    def test_delayed_task_cancelled_before_due_never_runs(self) -> None:
        doomed = self.client.enqueue("noop", delay=1.0)
        other = self.client.enqueue("noop", delay=1.0)
        self.assertEqual(self.client.cancel(doomed.id), CancelResult(CancelOutcome.CANCELLED, "scheduled"))
        self.assertEqual(self.state(doomed.id), "cancelled")
        self.wait_succeeded(other.id)
        # It still comes due and moves to its stream; the worker that reads it there skips it.
        self.wait_skipped("default", doomed.id)

    def test_cancelling_a_finished_task_is_too_late_and_changes_nothing(self) -> None:
        ok = self.client.enqueue("noop")
        dead = self.client.enqueue("no.such.type")
        self.wait_succeeded(ok.id)
        wait_for("the unknown type to be dead", lambda: self.state(dead.id) == "dead")
        for task_id, state in ((ok.id, "succeeded"), (dead.id, "dead")):
            before = self.client.status(task_id)
            assert before is not None
            self.r.expire(self.keys.status(task_id), 1000)  # a cancel that wrote anything would reset the TTL
            self.assertEqual(self.client.cancel(task_id), CancelResult(CancelOutcome.TOO_LATE, state))
            after = self.client.status(task_id)
            assert after is not None
            self.assertEqual(after.fields, before.fields)
            self.assertLessEqual(self.r.ttl(self.keys.status(task_id)), 1000)
            self.assertEqual(self.markers("default", task_id), [None] * self.keys.shards)

    def test_cancelling_an_unknown_task_is_not_found(self) -> None:
        res = self.client.cancel("no-such-task")
        self.assertEqual(res, CancelResult(CancelOutcome.NOT_FOUND, ""))
        self.assertTrue(not res.cancelled)
        self.assertIsNone(self.client.status("no-such-task"))  # nothing created
        self.assertEqual(self.markers("default", "no-such-task"), [None] * self.keys.shards)
        with self.assertRaises(ValueError):
            self.client.cancel("")

    def test_which_states_can_be_cancelled(self) -> None:
        # Records written by hand (no stream entry) for the states a producer cannot bring about on demand.
        expected = {"pending": CancelOutcome.CANCELLED, "scheduled": CancelOutcome.CANCELLED,
                    "retry_scheduled": CancelOutcome.CANCELLED, "running": CancelOutcome.TOO_LATE,
                    "succeeded": CancelOutcome.TOO_LATE, "dead": CancelOutcome.TOO_LATE,
                    "cancelled": CancelOutcome.ALREADY_CANCELLED}
        for state, outcome in expected.items():
            with self.subTest(state):
                task_id = f"py-state-{state}-{time.time_ns()}"
                self.r.hset(self.keys.status(task_id), mapping={"state": state, "queue": "unread"})
                try:
                    self.assertEqual(self.client.cancel(task_id), CancelResult(outcome, state))
                    marked = self.markers("unread", task_id)
                    self.assertEqual(self.state(task_id), state if outcome is CancelOutcome.TOO_LATE else "cancelled")
                    if outcome is CancelOutcome.CANCELLED:
                        self.assertTrue(all(m is not None for m in marked), marked)
                    else:
                        self.assertEqual(marked, [None] * self.keys.shards)
                finally:
                    self.r.delete(self.keys.status(task_id))
                    for s in self.keys.queue_shards("unread"):
                        self.r.zrem(self.keys.cancelled_of(s), task_id)

    def test_cancel_writes_its_clock_and_ttl_and_drops_month_old_markers(self) -> None:
        now = wall_clock_ms()
        client = TaskClient(self.r, self.keys, status_ttl_s=600, clock_ms=lambda: now)
        res = client.enqueue("noop", queue="unread")
        stale, edge = f"py-stale-{now}", f"py-edge-{now}"
        shards = self.keys.queue_shards("unread")
        for s in shards:
            self.r.zadd(self.keys.cancelled_of(s), {stale: now - CANCEL_MARKER_TTL_MS - 1, edge: now - CANCEL_MARKER_TTL_MS})
        try:
            self.assertEqual(client.cancel(res.id), CancelResult(CancelOutcome.CANCELLED, "pending"))
            status = client.status(res.id)
            assert status is not None
            self.assertEqual((status.state, status.cancelled_at_ms, status.enqueued_at_ms), ("cancelled", now, now))
            self.assertTrue(590 < self.r.ttl(self.keys.status(res.id)) <= 600)
            self.assertEqual(self.markers("unread", res.id), [float(now)] * len(shards))
            for s in shards:
                self.assertIsNone(self.r.zscore(self.keys.cancelled_of(s), stale))  # older than 30 days: dropped
                self.assertIsNotNone(self.r.zscore(self.keys.cancelled_of(s), edge))  # exactly 30 days: kept
        finally:
            for s in shards:
                self.r.zrem(self.keys.cancelled_of(s), stale, edge, res.id)

    def test_refused_task_is_dead_with_the_reason(self) -> None:
        # generation.compact refuses a payload without ids: a permanent error, dead-lettered at once.
        bad = self.client.enqueue("generation.compact", {})
        unknown = self.client.enqueue("no.such.type")
        wait_for("both tasks to be dead", lambda: self.state(bad.id) == "dead" and self.state(unknown.id) == "dead")
        bad_status = self.client.status(bad.id)
        unknown_status = self.client.status(unknown.id)
        assert bad_status is not None and unknown_status is not None
        self.assertTrue((bad_status.error or "").startswith("permanent error: INVALID_ARGUMENT"), bad_status.error)
        self.assertEqual(unknown_status.error, 'unknown task type "no.such.type"')
        dead_ids = []
        for dlq in {self.keys.dead_letters_of(s) for s in self.keys.queue_shards("default")}:
            for _, f in self.r.xrange(dlq):
                self.assertEqual(f[b"group"], b"workers")
                dead_ids.append(f[b"e"])
        self.assertTrue(any(bad.id.encode() in e for e in dead_ids))
        self.assertTrue(any(unknown.id.encode() in e for e in dead_ids))


class StandardSchemaTest(WorkerSuite, unittest.TestCase):
    keys = TaskKeys("streamfleet")


class ClusterSchemaTest(WorkerSuite, unittest.TestCase):
    keys = TaskKeys("sfc", cluster=True, shards=4)

    def test_tasks_spread_over_the_shards(self) -> None:
        self.client.enqueue_many([Task("noop", queue="unread") for _ in range(40)])
        used = [s for s in self.keys.queue_shards("unread") if self.r.xlen(s) > 0]
        self.assertEqual(len(used), 4)  # 40 random picks missing a shard: (3/4)^40, about 1e-5

    def test_pause_sets_every_shard_flag(self) -> None:
        self.client.pause("unread")
        self.assertEqual([self.r.get(self.keys.paused_flag_of(s)) for s in self.keys.queue_shards("unread")],
                         [b"1"] * 4)
        self.client.resume("unread")
        self.assertEqual(sum(self.r.exists(self.keys.paused_flag_of(s)) for s in self.keys.queue_shards("unread")), 0)


class ClusterCancelRaceTest(unittest.TestCase):
    """The cluster schema's cancel reads the record (HMGET), adds the markers, then writes the record: a worker
    can take the task in between, another cancel can get there first, the record can expire. The record is
    written by a script that checks the state again (docs/task-protocol.md, "Cancel"), as the C++ CancelSharded."""

    def setUp(self) -> None:
        self.r = redis.Redis(port=redis_port())
        self.addCleanup(self.r.close)
        self.keys = TaskKeys("sfc", cluster=True, shards=4)

    def test_what_happens_between_the_markers_and_the_record_decides_the_answer(self) -> None:
        r, keys = self.r, self.keys
        # What runs (on another connection) right after the pipeline that adds the cancel markers, as a worker or
        # another cancel would between the two round trips; and how often it ran.
        race: Dict[str, Any] = {"change": None, "changed": 0}

        class Meanwhile(redis.Redis):
            """A real connection whose pipelines run race["change"](task id) after adding cancel markers."""

            def pipeline(self, *args: Any, **kwargs: Any) -> Any:
                pipe = super().pipeline(*args, **kwargs)
                run = pipe.execute

                def execute(*a: Any, **kw: Any) -> Any:
                    marked = {c[0][3] for c in pipe.command_stack
                              if c[0][0] == "ZADD" and c[0][1].endswith(":cancelled")}
                    replies = run(*a, **kw)
                    for task_id in marked:
                        race["changed"] += 1
                        if race["change"] is not None:
                            race["change"](task_id)
                    return replies

                pipe.execute = execute  # type: ignore[method-assign]
                return pipe

        conn = Meanwhile(port=redis_port())
        self.addCleanup(conn.close)
        client = TaskClient(conn, keys)
        r.script_flush()  # the record script through EVAL once, then EVALSHA

        def succeeds(task_id: str) -> None:
            r.hset(keys.status(task_id), mapping={"state": "succeeded", "result": "", "finished_at_ms": "1"})

        def cancelled_by_another(task_id: str) -> None:
            r.hset(keys.status(task_id), mapping={"state": "cancelled", "cancelled_at_ms": "1"})

        def expires(task_id: str) -> None:
            r.delete(keys.status(task_id))

        cases = [(succeeds, CancelResult(CancelOutcome.TOO_LATE, "succeeded"), b"succeeded"),
                 (cancelled_by_another, CancelResult(CancelOutcome.ALREADY_CANCELLED, "cancelled"), b"cancelled"),
                 (expires, CancelResult(CancelOutcome.NOT_FOUND, ""), None)]
        for change, answer, state_after in cases:
            with self.subTest(change.__name__):
                res = TaskClient(r, keys).enqueue("noop", queue="unread")
                race.update(change=change, changed=0)
                self.assertEqual(client.cancel(res.id), answer)
                self.assertEqual(race["changed"], 1)  # the change came between the markers and the record
                # The record script wrote nothing: the record says what the change left, no cancel time of this
                # cancel's, and a record that is gone is not made again.
                self.assertEqual(r.hget(keys.status(res.id), "state"), state_after)
                self.assertIn(r.hget(keys.status(res.id), "cancelled_at_ms"), (None, b"1"))
                markers = [r.zscore(keys.cancelled_of(s), res.id) for s in keys.queue_shards("unread")]
                if change is cancelled_by_another:
                    # The markers are the other cancel's too: kept.
                    self.assertTrue(all(m is not None for m in markers), markers)
                else:
                    # Too late, or gone: taken back (a retry of the task would be skipped).
                    self.assertEqual(markers, [None] * keys.shards)
        self.assertEqual(r.script_exists(CANCEL_RECORD_SCRIPT_SHA1), [True])
        # Nothing in between: cancelled, marked in every shard.
        race.update(change=None, changed=0)
        res = TaskClient(r, keys).enqueue("noop", queue="unread")
        self.assertEqual(client.cancel(res.id), CancelResult(CancelOutcome.CANCELLED, "pending"))
        self.assertEqual(race["changed"], 1)
        self.assertEqual(r.hget(keys.status(res.id), "state"), b"cancelled")
        self.assertTrue(all(r.zscore(keys.cancelled_of(s), res.id) is not None for s in keys.queue_shards("unread")))


class DecodedRepliesTest(unittest.TestCase):
    def test_a_redis_client_with_decode_responses_works_as_one_without(self) -> None:
        # redis.Redis(decode_responses=True) answers str, not bytes: every reply the client reads (a duplicate's
        # holder, from the script and from GET; the status record; the cancel replies; the paused queues).
        r = redis.Redis(port=redis_port(), decode_responses=True)
        self.addCleanup(r.close)
        for keys in (TaskKeys("streamfleet"), TaskKeys("sfc", cluster=True, shards=4)):
            with self.subTest(cluster=keys.cluster):
                client = TaskClient(r, keys)
                unique = f"decoded-{time.time_ns()}"
                first = client.enqueue("noop", {"n": 1}, queue="unread", unique_key=unique)
                again = client.enqueue("noop", {"n": 2}, queue="unread", unique_key=unique)
                self.assertEqual((again.duplicate, again.id), (True, first.id))
                status = client.status(first.id)
                assert status is not None
                self.assertEqual((status.state, status.fields["queue"]), ("pending", "unread"))
                self.assertEqual(client.cancel(first.id), CancelResult(CancelOutcome.CANCELLED, "pending"))
                self.assertEqual(client.cancel(first.id), CancelResult(CancelOutcome.ALREADY_CANCELLED, "cancelled"))
                paused = f"decoded-{time.time_ns()}"
                client.pause(paused)
                try:
                    self.assertIn(paused, client.paused_queues())
                finally:
                    client.resume(paused)


class NoStatusRecordTest(unittest.TestCase):
    def test_status_ttl_zero_writes_no_record(self) -> None:
        # TASK_RESULT_TTL=0: the task is enqueued, no record is (on a queue no worker reads: a worker of this
        # fleet, configured with a TTL, would write "running" the moment it took the task).
        r = redis.Redis(port=redis_port())
        client = TaskClient(r, TaskKeys("streamfleet"), status_ttl_s=0)
        before = r.xlen("streamfleet:queue:unread")
        res = client.enqueue("noop", json.dumps({"status": "off"}), queue="unread")
        self.assertIsNone(client.status(res.id))
        self.assertEqual(r.xlen("streamfleet:queue:unread"), before + 1)
        # Nothing to cancel without a record: not found, and no marker is written.
        self.assertEqual(client.cancel(res.id), CancelResult(CancelOutcome.NOT_FOUND, ""))
        self.assertIsNone(r.zscore(client.keys.cancelled(), res.id))
        self.assertIsNone(client.status(res.id))


class EnqueueEdgesTest(unittest.TestCase):
    def setUp(self) -> None:
        self.r = redis.Redis(port=redis_port())
        self.addCleanup(self.r.close)

    def test_a_failed_add_releases_the_unique_key(self) -> None:
        # Without the release a retry is answered "duplicate" of a task that was never added, for unique_for.
        for keys in (TaskKeys("streamfleet"), TaskKeys("sfc", cluster=True, shards=4)):
            client = TaskClient(self.r, keys)
            unique = f"release-{'c' if keys.cluster else 's'}-{time.time_ns()}"
            stream = keys.queue("unread", keys.shard_for(unique))
            self.r.set(stream, "not a stream")  # Redis refuses the XADD: a real failed add
            failed_id = new_task_id()
            with self.assertRaises(redis.ResponseError):
                client.enqueue("noop", {}, queue="unread", unique_key=unique, task_id=failed_id)
            self.assertEqual(self.r.exists(keys.unique(unique)), 0)
            if not keys.cluster:  # one script: nothing of the task is written (cluster: the status went first)
                self.assertEqual(self.r.exists(keys.status(failed_id)), 0)
            self.r.delete(stream)
            retry = client.enqueue("noop", {}, queue="unread", unique_key=unique)
            self.assertFalse(retry.duplicate)
            self.assertEqual(self.r.get(keys.unique(unique)), retry.id.encode())

    def test_a_producer_that_dies_after_the_cluster_claim_leaves_the_key_for_seconds(self) -> None:
        # The cluster schema takes the key in a round trip before the add (another slot): interrupted between
        # the two (KeyboardInterrupt is not an Exception, so nothing is released), the key names a task that
        # was never added, but only for the 30 s claim, not for unique_for.
        keys = TaskKeys("sfc", cluster=True, shards=4)
        client = TaskClient(self.r, keys)

        def interrupted(cmds: object) -> None:
            raise KeyboardInterrupt

        client._run = interrupted  # type: ignore[method-assign]
        unique = f"claim-{time.time_ns()}"
        with self.assertRaises(KeyboardInterrupt):
            client.enqueue("noop", {}, queue="unread", unique_key=unique, unique_for=3600)
        self.assertTrue(0 < self.r.ttl(keys.unique(unique)) <= 30)

    def test_a_unique_task_is_one_script_also_on_a_server_without_it(self) -> None:
        # A fresh or flushed server answers EVALSHA with NOSCRIPT: the client sends the script's text instead.
        keys = TaskKeys("streamfleet")
        client = TaskClient(self.r, keys, status_ttl_s=600)
        self.r.script_flush()
        unique = f"noscript-{time.time_ns()}"
        first = client.enqueue("noop", {"n": 1}, queue="unread", unique_key=unique, delay=60)
        self.assertTrue(first.scheduled)
        self.assertEqual(self.r.script_exists(ENQUEUE_SCRIPT_SHA1), [True])
        self.assertEqual(self.r.get(keys.unique(unique)), first.id.encode())
        self.assertEqual(self.r.hget(keys.status(first.id), "state"), b"scheduled")
        self.assertTrue(0 < self.r.ttl(keys.status(first.id)) <= 600)
        members = [m for m in self.r.zrange(keys.scheduled(), 0, -1) if first.id.encode() in m]
        self.assertEqual(len(members), 1)
        self.assertTrue(members[0].startswith(b"unread|"))
        envelope = task_pb2.TaskEnvelope.FromString(members[0][len(b"unread|"):])
        self.assertEqual((envelope.id, envelope.unique_key), (first.id, unique))
        # The duplicate, through EVALSHA now, writes nothing and names the holder.
        again = client.enqueue("noop", {"n": 2}, queue="unread", unique_key=unique, task_id="f" * 20)
        self.assertEqual((again.duplicate, again.id), (True, first.id))
        self.assertEqual(self.r.exists(keys.status("f" * 20)), 0)
        self.assertEqual(len([m for m in self.r.zrange(keys.scheduled(), 0, -1) if unique.encode() in m]), 1)

    def test_none_payload_is_stored_as_an_empty_object(self) -> None:
        keys = TaskKeys("streamfleet")
        client = TaskClient(self.r, keys)
        one = client.enqueue("noop", None, queue="unread")
        [many] = client.enqueue_many([Task("noop", None, queue="unread")])
        payloads = {}
        for _, fields in self.r.xrange(keys.queue("unread")):
            env = task_pb2.TaskEnvelope.FromString(fields[b"e"])
            payloads[env.id] = env.payload
        self.assertEqual(payloads[one.id], b"{}")
        self.assertEqual(payloads[many.id], b"{}")

    def test_status_ttl_must_be_whole_seconds(self) -> None:
        # EXPIRE refuses "86400.0": the enqueue script drops that error (the record would never expire) and cancel
        # would raise after it had cancelled. Refused when the client is made instead.
        for bad in (86400.0, timedelta(days=1).total_seconds(), 1.5, -1, True, "600", (1 << 31) + 1):
            with self.subTest(bad=bad), self.assertRaisesRegex(ValueError, "status_ttl_s"):
                TaskClient(self.r, TaskKeys("streamfleet"), status_ttl_s=bad)  # type: ignore[arg-type]
        for good in (0, 1, 1 << 31):
            self.assertEqual(TaskClient(self.r, TaskKeys("streamfleet"), status_ttl_s=good).status_ttl_s, good)

    def test_cluster_keys_default_to_the_fleets_four_shards(self) -> None:
        # The "sfc" workers leave TASK_QUEUE_SHARDS at its default: a client made with cluster=True alone must
        # pause and cancel on every shard their producers use, not on shard 0 only.
        fleet = TaskKeys("sfc", cluster=True, shards=4)
        client = TaskClient(self.r, TaskKeys("sfc", cluster=True))
        self.assertEqual(client.keys.queue_shards("unread"), fleet.queue_shards("unread"))
        client.pause("unread")
        try:
            self.assertEqual([self.r.get(fleet.paused_flag_of(s)) for s in fleet.queue_shards("unread")], [b"1"] * 4)
        finally:
            client.resume("unread")
        self.assertEqual(sum(self.r.exists(fleet.paused_flag_of(s)) for s in fleet.queue_shards("unread")), 0)
        res = TaskClient(self.r, fleet).enqueue("noop", queue="unread")
        self.assertEqual(client.cancel(res.id), CancelResult(CancelOutcome.CANCELLED, "pending"))
        markers = [self.r.zscore(fleet.cancelled_of(s), res.id) for s in fleet.queue_shards("unread")]
        self.assertTrue(all(m is not None for m in markers), markers)

    def test_a_cluster_claim_retries_when_the_holder_runs_out_before_the_get(self) -> None:
        # The key held at the SET NX and gone at the GET (it ran out in between): the task must be enqueued, not
        # answered "duplicate" of an id no task has.
        keys = TaskKeys("sfc", cluster=True, shards=4)
        r = self.r

        class RunsOutAfterRefusedClaims(redis.Redis):
            """A real connection; after a refused SET NX the key is deleted (another client's key running out),
            `times` times, and before each SET NX but the first after that it is taken again if `retaken`."""
            times, retaken, refused = 1, False, 0

            def execute_command(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                if args[0] == "SET" and "NX" in args and self.retaken and 0 < self.refused < self.times:
                    r.set(args[1], "another-producer")
                reply = super().execute_command(*args, **kwargs)
                if args[0] == "SET" and "NX" in args and reply is None and self.refused < self.times:
                    self.refused += 1
                    r.delete(args[1])
                return reply

        conn = RunsOutAfterRefusedClaims(port=redis_port())
        self.addCleanup(conn.close)
        unique = f"runs-out-{time.time_ns()}"
        r.set(keys.unique(unique), "ghost", ex=30)
        res = TaskClient(conn, keys).enqueue("noop", queue="unread", unique_key=unique)
        self.assertEqual((res.duplicate, conn.refused), (False, 1))
        self.assertEqual(r.get(keys.unique(unique)), res.id.encode())
        stream = keys.queue("unread", keys.shard_for(unique))
        self.assertTrue(any(task_pb2.TaskEnvelope.FromString(f[b"e"]).id == res.id for _, f in r.xrange(stream)))
        # A key that keeps changing hands: a bounded number of tries, then an error, nothing enqueued.
        conn.times, conn.retaken, conn.refused = 3, True, 0
        churn = f"churn-{time.time_ns()}"
        r.set(keys.unique(churn), "ghost", ex=30)
        with self.assertRaisesRegex(redis.RedisError, "changed hands"):
            TaskClient(conn, keys).enqueue("noop", queue="unread", unique_key=churn, task_id=f"churn-{time.time_ns()}")
        self.assertEqual(conn.refused, 3)
        self.assertEqual(r.exists(keys.unique(churn)), 0)

    def test_a_run_more_than_a_year_ahead_is_refused(self) -> None:
        client = TaskClient(self.r, TaskKeys("streamfleet"))
        with self.assertRaisesRegex(ValueError, "more than a year"):
            client.enqueue("noop", {}, queue="unread", run_at=time.time() * 1000)  # milliseconds for seconds
        with self.assertRaisesRegex(ValueError, "a year"):
            client.enqueue("noop", {}, queue="unread", delay=400 * 86400)


if __name__ == "__main__":
    unittest.main()
