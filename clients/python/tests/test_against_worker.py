"""streamfleet_client against a real redis-server and real streamfleet-queue-workers.

tests/clients/python_client_test.sh starts them (one worker per key schema, tests/clients/fleet.sh) and passes
STREAMFLEET_TEST_REDIS_PORT. Tasks enqueued here must run, delayed ones wait until due, unique ones dedupe,
paused queues hold their tasks until resumed, and the status record reads back what the worker wrote.
"""
from __future__ import annotations

import json
import os
import time
import unittest
from datetime import datetime, timedelta, timezone
from typing import Callable, List, Optional

import redis

from streamfleet_client import Task, TaskClient, TaskKeys, TaskStatus, crc16

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

    def test_status_of_a_waiting_task_and_of_an_unknown_one(self) -> None:
        res = self.client.enqueue("noop", "{}", queue="unread")
        status = self.client.status(res.id)
        assert status is not None
        self.assertEqual(status.fields, {"state": "pending", "type": "noop", "queue": "unread", "attempts": "0"})
        self.assertIsNone(self.client.status("no-such-task"))

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
        self.assertEqual(self.r.ttl(self.keys.unique(key)) <= 3600, True)
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
        self.assertEqual(len(self.queue_entries("unread")), before)

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


if __name__ == "__main__":
    unittest.main()
