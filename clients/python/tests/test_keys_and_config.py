"""Key names, the shard function, configuration from the environment, the generated module and the cancel
script's text: no servers."""
from __future__ import annotations

import filecmp
import hashlib
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from streamfleet_client import (CANCEL_RECORD_SCRIPT, CANCEL_RECORD_SCRIPT_SHA1, CANCEL_SCRIPT, ENQUEUE_SCRIPT,
                                ENQUEUE_SCRIPT_SHA1, CancelOutcome, CancelResult, TaskClient, TaskKeys, TaskStatus,
                                crc16, valid_queue_name)
from streamfleet_client.config import keys_from_env, redis_from_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


class KeysTest(unittest.TestCase):
    def test_crc16_is_the_cluster_checksum(self) -> None:
        # CRC-16/XMODEM's check value, and the values Redis Cluster documents for its key slots.
        self.assertEqual(crc16(b"123456789"), 0x31C3)
        self.assertEqual(crc16(b"foo") % 16384, 12182)  # CLUSTER KEYSLOT foo

    def test_standard_names(self) -> None:
        k = TaskKeys("streamfleet", cluster=False, shards=4)  # shards are ignored without the cluster schema
        self.assertEqual(k.shards, 1)
        self.assertEqual(k.queue("default", 3), "streamfleet:queue:default")
        self.assertEqual(k.scheduled_of(k.queue("low")), "streamfleet:scheduled")
        self.assertEqual(k.dead_letters_of(k.queue("low")), "streamfleet:dlq:tasks")
        self.assertEqual(k.status("abc"), "streamfleet:task:abc")
        self.assertEqual(k.unique("report-7"), "streamfleet:unique:report-7")
        self.assertEqual(k.paused(), "streamfleet:paused")
        self.assertEqual(k.cancelled(), "streamfleet:cancelled")
        self.assertEqual(k.cancelled_of(k.queue("low")), "streamfleet:cancelled")
        self.assertEqual(k.shard_for("report-7"), 0)

    def test_cluster_names_share_the_shard_hash_tag(self) -> None:
        k = TaskKeys("streamfleet", cluster=True, shards=4)
        stream = k.queue("default", k.shard_for("report-7"))
        self.assertEqual(stream, "{streamfleet:queue:default:1}")
        self.assertEqual(k.scheduled_of(stream), "{streamfleet:queue:default:1}:scheduled")
        self.assertEqual(k.dead_letters_of(stream), "{streamfleet:queue:default:1}:dlq")
        self.assertEqual(k.paused_flag_of(stream), "{streamfleet:queue:default:1}:paused")
        self.assertEqual(k.cancelled_of(stream), "{streamfleet:queue:default:1}:cancelled")
        self.assertEqual({k.shard_for("") for _ in range(200)}, {0, 1, 2, 3})

    def test_cluster_shards_default_to_the_fleets(self) -> None:
        # TASK_QUEUE_SHARDS is 4 by default with the cluster schema (components/base config.cc).
        self.assertEqual(TaskKeys("sf", cluster=True).shards, 4)
        self.assertEqual(TaskKeys("sf", cluster=True, shards=2).shards, 2)
        self.assertEqual(TaskKeys("sf").shards, 1)

    def test_queue_names(self) -> None:
        for good in ("default", "a", "x" * 64, "q_1.b-2"):
            self.assertTrue(valid_queue_name(good), good)
        for bad in ("", "x" * 65, "Default", "a:b", "a b", "{a}"):
            self.assertFalse(valid_queue_name(bad), bad)


class ConfigTest(unittest.TestCase):
    def test_defaults_follow_the_fleet(self) -> None:
        k = keys_from_env({})
        self.assertEqual((k.prefix, k.cluster, k.shards), ("streamfleet", False, 1))
        k = keys_from_env({"STREAMFLEET_KEY_SCHEMA": "cluster", "STREAMFLEET_STREAM_PREFIX": "sf"})
        self.assertEqual((k.prefix, k.cluster, k.shards), ("sf", True, 4))
        k = keys_from_env({"REDIS_CLUSTER": "true", "TASK_QUEUE_SHARDS": "8"})
        self.assertEqual((k.cluster, k.shards), (True, 8))

    def test_contradictions_are_errors(self) -> None:
        for env in ({"TASK_QUEUE_SHARDS": "2"}, {"REDIS_CLUSTER": "true", "STREAMFLEET_KEY_SCHEMA": "standard"},
                    {"STREAMFLEET_KEY_SCHEMA": "sharded"}, {"REDIS_CLUSTER": "maybe"}):
            with self.assertRaises(ValueError, msg=str(env)):
                keys_from_env(env)

    def test_a_redis_url_that_does_not_parse_is_named_without_its_password(self) -> None:
        # urllib quotes what it could not read: for a password with '#' or '/' in it, a piece of the password
        # ("Port could not be cast to integer value as 'abc'"). Nothing of it may reach the error, its arguments,
        # its attributes or the exception it was raised from (logs print the chain).
        for url, shown in (("redis://:abc#def@h", "redis://***@h"),
                           ("redis://u:abc/def@h:6380/0", "redis://***@h:6380/0"),
                           ("rediss://:abc?def@h", "rediss://***@h")):
            with self.subTest(url), self.assertRaises(ValueError) as caught:
                redis_from_env({"REDIS_URL": url})
            e = caught.exception
            self.assertIn(shown, str(e))
            for where in (str(e), repr(e.args), repr(vars(e))):
                self.assertNotIn("abc", where)
                self.assertNotIn("def", where)
            self.assertIsNone(e.__cause__)
            self.assertIsNone(e.__context__)


class CancelTest(unittest.TestCase):
    def test_the_script_is_the_documents(self) -> None:
        # docs/task-protocol.md has three ```lua blocks: "Enqueue"'s (a unique task, standard schema), "Cancel"'s
        # (the standard schema's cancel script) and the cluster schema's cancel record script, which is sent by
        # SHA-1 as the C++ text: that starts with a newline (tests/clients/protocol_doc_test.py).
        doc = (ROOT / "docs" / "task-protocol.md").read_text()
        blocks = re.findall(r"^```lua\n(.*?)^```", doc, re.S | re.M)
        self.assertEqual(len(blocks), 3)
        self.assertEqual(ENQUEUE_SCRIPT, blocks[0])
        self.assertEqual(ENQUEUE_SCRIPT_SHA1, hashlib.sha1(blocks[0].encode()).hexdigest())
        self.assertEqual(CANCEL_SCRIPT, blocks[1])
        self.assertEqual(CANCEL_RECORD_SCRIPT, "\n" + blocks[2])
        self.assertEqual(CANCEL_RECORD_SCRIPT_SHA1, hashlib.sha1(("\n" + blocks[2]).encode()).hexdigest())

    def test_no_record_means_nothing_is_sent(self) -> None:
        class NoRedis:
            def __getattr__(self, name: str) -> object:
                raise AssertionError(f"redis.{name} called")

        client = TaskClient(NoRedis(), status_ttl_s=0)
        self.assertEqual(client.cancel("abc"), CancelResult(CancelOutcome.NOT_FOUND, ""))
        with self.assertRaises(ValueError):
            TaskClient(NoRedis()).cancel("")

    def test_status_timestamps(self) -> None:
        s = TaskStatus("succeeded", {"state": "succeeded", "enqueued_at_ms": "1000", "started_at_ms": "1005",
                                     "finished_at_ms": "1010"})
        self.assertEqual((s.enqueued_at_ms, s.started_at_ms, s.finished_at_ms, s.cancelled_at_ms),
                         (1000, 1005, 1010, None))
        self.assertIsNone(TaskStatus("pending", {"state": "pending"}).enqueued_at_ms)  # an older producer's record


class GeneratedCodeTest(unittest.TestCase):
    def test_task_pb2_is_what_protoc_makes_from_the_proto(self) -> None:
        protoc = shutil.which("protoc")
        if protoc is None:
            self.fail("protoc not found (Debian package protobuf-compiler)")
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([protoc, "-I", str(ROOT / "proto"), f"--python_out={out}", "streamfleet/v1/task.proto"],
                           check=True)
            fresh = Path(out) / "streamfleet" / "v1" / "task_pb2.py"
            checked_in = HERE.parent / "streamfleet_client" / "task_pb2.py"
            self.assertTrue(filecmp.cmp(fresh, checked_in, shallow=False),
                            "clients/python/streamfleet_client/task_pb2.py is stale: run clients/python/regenerate_proto.sh")


if __name__ == "__main__":
    unittest.main()
