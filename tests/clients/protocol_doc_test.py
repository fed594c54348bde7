"""docs/task-protocol.md's worked examples are what the code writes.

For every ```redis example block: run its `# $` commands with the C++ `streamfleetctl` against a real
redis-server, record what the server received (MONITOR), and match it against the block; then do the same
through the Python client (streamfleet_client) with the same arguments. A changed key name, field, TTL,
command order or envelope field in the C++ code, the client or the document fails here.

Run by tests/clients/protocol_doc_test.sh, which starts the redis-server and passes
STREAMFLEET_TEST_REDIS_PORT, STREAMFLEETCTL and STREAMFLEET_ROOT.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import os
import re
import subprocess
import sys
import unittest
from pathlib import Path
from typing import Dict, List

ROOT = Path(os.environ.get("STREAMFLEET_ROOT", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(ROOT / "clients" / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis  # noqa: E402

from doc_examples import Bindings, Example, match_commands, match_envelopes, parse_examples  # noqa: E402
from redis_monitor import RedisMonitor  # noqa: E402
from streamfleet_client import TaskClient, task_pb2  # noqa: E402
from streamfleet_client.config import client_from_env  # noqa: E402

PORT = int(os.environ["STREAMFLEET_TEST_REDIS_PORT"])
CTL = os.environ["STREAMFLEETCTL"]
DOC = ROOT / "docs" / "task-protocol.md"


def lua_blocks() -> List[str]:
    """The document's ```lua blocks: "Enqueue"'s script (a unique task, standard schema), then "Cancel"'s two
    (the standard schema's cancel script, the cluster schema's record script)."""
    return re.findall(r"^```lua\n(.*?)^```", DOC.read_text(), re.S | re.M)


def cpp_script(file: str, name: str) -> str:
    """The text the C++ LuaScript `name` in components/taskqueue/src/`file` sends, byte for byte."""
    source = (ROOT / "components" / "taskqueue" / "src" / file).read_text()
    m = re.search(name + r"\(\) \{\n(?:  //[^\n]*\n)*  static const LuaScript s\(R\"\((.*?)\)\"\);", source, re.S)
    if m is None:
        raise AssertionError(f"{name} not found in {file}")
    return m.group(1)


def duration_seconds(text: str) -> float:
    """The --delay values the examples use (30s, 5m, 1h, 500ms)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    if m is None:
        raise ValueError(f"unsupported duration {text!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def run_with_python_client(argv: List[str], env: Dict[str, str]) -> None:
    """The Python client doing what `streamfleetctl <argv>` does."""
    client: TaskClient = client_from_env(TaskClient, env)
    if argv[0] == "enqueue":
        p = argparse.ArgumentParser()
        p.add_argument("type")
        p.add_argument("--payload", default="{}")
        p.add_argument("--queue", default="default")
        p.add_argument("--delay")
        p.add_argument("--unique-key", default="")
        a = p.parse_args(argv[1:])
        client.enqueue(a.type, a.payload, queue=a.queue, unique_key=a.unique_key,
                       delay=duration_seconds(a.delay) if a.delay else None)
    elif argv[0] == "queues":
        (client.pause if argv[1] == "pause" else client.resume)(argv[2])
    else:
        raise ValueError(f"no Python equivalent for {argv!r}")


class ProtocolDocTest(unittest.TestCase):
    examples: List[Example]

    @classmethod
    def setUpClass(cls) -> None:
        cls.examples = parse_examples(DOC.read_text())
        cls.redis = redis.Redis(port=PORT)

    def environment(self, example: Example) -> Dict[str, str]:
        # Only what the example sets: none of the caller's fleet configuration leaks in.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(PORT),
               "LOG_LEVEL": "warn"}
        env.update(example.env)
        return env

    def check(self, example: Example, producer: str) -> None:
        self.redis.flushall()  # unique keys of the previous example must not be held
        # The examples show the enqueue script's EVALSHA as it goes once the server has the script (after a
        # producer's first EVAL); <enqueue_script_sha1> must be the SHA-1 of the document's own text.
        enqueue_script = lua_blocks()[0]
        self.redis.script_load(enqueue_script)
        env = self.environment(example)
        bindings = Bindings()
        bindings.values["enqueue_script_sha1"] = hashlib.sha1(enqueue_script.encode()).hexdigest().encode()
        monitor = RedisMonitor(PORT)
        try:
            for n, step in enumerate(example.steps, start=1):
                what = f"{example.title()} [{producer}, step {n}]"
                if step.argv[0] != "streamfleetctl":
                    self.fail(f"{what}: examples run streamfleetctl, not {step.argv[0]}")
                if producer == "streamfleetctl":
                    def action() -> None:
                        subprocess.run([CTL] + step.argv[1:], env=env, check=True, capture_output=True, timeout=30)
                else:
                    def action() -> None:
                        run_with_python_client(step.argv[1:], env)
                match_commands(step.commands, monitor.record(action), bindings, what)
            match_envelopes(example, bindings, task_pb2.TaskEnvelope, f"{example.title()} [{producer}]")
        finally:
            monitor.close()

    def test_document_has_the_examples(self) -> None:
        # A parser that silently found nothing would make every other test pass.
        self.assertGreaterEqual(len(self.examples), 9)
        self.assertTrue(all(e.steps and all(s.commands for s in e.steps) for e in self.examples))
        self.assertTrue(any(e.envelopes for e in self.examples))

    def test_streamfleetctl_sends_what_the_document_says(self) -> None:
        for example in self.examples:
            with self.subTest(example.title()):
                self.check(example, "streamfleetctl")

    def test_python_client_sends_what_the_document_says(self) -> None:
        for example in self.examples:
            with self.subTest(example.title()):
                self.check(example, "python")

    def test_the_scripts_are_the_ones_the_cpp_code_runs(self) -> None:
        # "Enqueue"'s ```lua block is GuardedEnqueueScript (task_queue.cc), "Cancel"'s are CancelScript and
        # CancelRecordScript (task_control.cc): the C++ code must run the document's text (the clients' own tests
        # compare theirs with the document too).
        blocks = lua_blocks()
        self.assertEqual(len(blocks), 3)
        # The enqueue script's EVALSHA names it by SHA-1: the C++ text must be the document's byte for byte (the
        # cancel script's may start with a newline; producers send their own copy of it with EVAL).
        self.assertEqual(cpp_script("task_queue.cc", "GuardedEnqueueScript"), blocks[0])
        self.assertEqual(cpp_script("task_control.cc", "CancelScript").removeprefix("\n"), blocks[1])
        # The record script goes by SHA-1 too (the clients' EVALSHA, the workers' own for a task they skip): the
        # C++ text is the block after one newline, as the document says and the clients send it.
        self.assertEqual(cpp_script("task_control.cc", "CancelRecordScript"), "\n" + blocks[2])

    def test_the_unique_examples_run_the_script(self) -> None:
        # The unique examples must go through the script (a matcher that skipped them would pass anything).
        unique = [e for e in self.examples if any("--unique-key" in s.argv for s in e.steps)]
        self.assertGreaterEqual(len(unique), 3)
        standard = [e for e in unique if e.env.get("STREAMFLEET_KEY_SCHEMA") != "cluster"]
        self.assertGreaterEqual(len(standard), 2)
        for e in standard:
            self.assertTrue(all(s.commands[0][:2] == ["EVALSHA", "<enqueue_script_sha1>"] for s in e.steps))

    def test_a_wrong_document_fails(self) -> None:
        # The matcher must be able to fail: the first example with its TTL changed, and with its envelope's
        # payload changed.
        first = self.examples[0]
        wrong_ttl = copy.deepcopy(first)
        self.assertEqual(wrong_ttl.steps[0].commands[1], ["EXPIRE", "streamfleet:task:<id>", "86400"])
        wrong_ttl.steps[0].commands[1][-1] = "86401"
        with self.assertRaises(AssertionError):
            self.check(wrong_ttl, "streamfleetctl")
        wrong_payload = copy.deepcopy(first)
        wrong_payload.envelopes = [(n, t.replace("hello", "goodbye")) for n, t in first.envelopes]
        with self.assertRaises(AssertionError):
            self.check(wrong_payload, "streamfleetctl")

    def test_placeholders_must_agree_within_a_block(self) -> None:
        b = Bindings()
        b.match(b"streamfleet:task:<id>", b"streamfleet:task:0123456789abcdef0123", "first")
        with self.assertRaises(AssertionError):
            b.match(b"<id>", b"ffffffffffffffffffff", "second")
        b.match(b"<now>", b"1000", "now")
        b.match(b"<now+60000>", b"61000", "run_at")
        with self.assertRaises(AssertionError):
            b.match(b"<now+60000>", b"61001", "run_at off by one")


if __name__ == "__main__":
    unittest.main()
