"""Push handlers with a handler server in Python's standard library (http.server) and a real queue-worker.

The worker (streamfleet-queue-worker, started here with TASK_ROUTES pointing at the server) POSTs each task
of type py.* to it; the server answers what the task's payload asks for ({"answer": 200 | 400 | 500 | 503 |
"hang" | "hold"}) and records every request. Tasks are enqueued and followed with streamfleetctl.
Run by push_python_test.sh, which starts the redis-server.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List

PORT = int(os.environ["STREAMFLEET_TEST_REDIS_PORT"])
BUILD = os.environ["STREAMFLEET_BUILD"]
WORK = os.environ["STREAMFLEET_WORK"]
SECRET = "push-test-secret"
CTL = f"{BUILD}/tools/streamfleetctl"
WORKER = f"{BUILD}/queue-worker/streamfleet-queue-worker"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Recorded:
    """What the handler server saw, per task id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Dict[str, List[dict]] = {}
        self.connections: set = set()
        self.release_hold = threading.Event()

    def add(self, task_id: str, entry: dict) -> None:
        with self.lock:
            self.requests.setdefault(task_id, []).append(entry)

    def of(self, task_id: str) -> List[dict]:
        with self.lock:
            return list(self.requests.get(task_id, []))


REC = Recorded()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ts = self.headers.get("X-Streamfleet-Timestamp", "")
        sig = self.headers.get("X-Streamfleet-Signature", "")
        want = "v1=" + hmac.new(SECRET.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        doc = json.loads(raw)
        with REC.lock:
            REC.connections.add(self.client_address)
        entry = {"doc": doc, "headers": dict(self.headers), "signature_ok": hmac.compare_digest(sig, want),
                 "path": self.path, "at": time.time()}
        REC.add(doc["id"], entry)
        answer = doc["payload"].get("answer", 200)
        # "then": what later attempts get (a 503 first, then 200).
        if len(REC.of(doc["id"])) > 1 and "then" in doc["payload"]:
            answer = doc["payload"]["then"]
        if answer == "hang":
            time.sleep(3)
            answer = 200
        if answer == "hold":  # until the test has killed the worker, then 200 for the next attempt
            if len(REC.of(doc["id"])) == 1:
                REC.release_hold.wait(20)
                return  # the worker is gone: nobody reads an answer
            answer = 200
        body = json.dumps({"handled": doc["id"], "attempt": doc["attempt"]}).encode()
        self.send_response(int(answer))
        if int(answer) in (429, 503) and "retry_after" in doc["payload"]:
            self.send_header("Retry-After", str(doc["payload"]["retry_after"]))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker gave up on this request (its deadline): expected in the timeout test


def ctl(*args: str) -> dict:
    out = subprocess.run([CTL, "--json", *args], env={**os.environ, "REDIS_PORT": str(PORT)}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def wait_for(pred, timeout: float = 15.0, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class PushHandlerTest(unittest.TestCase):
    server: ThreadingHTTPServer
    worker: subprocess.Popen

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        cls.server.daemon_threads = True
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}/tasks"
        cls.worker = cls.start_worker("w1")

    @classmethod
    def start_worker(cls, name: str) -> subprocess.Popen:
        env = {**os.environ, "REDIS_PORT": str(PORT), "DATABASE_URL": f"sqlite:{WORK}/{name}.db",
               "METRICS_LISTEN": f"127.0.0.1:{free_port()}", "CONSUMER_NAME": name, "LOG_LEVEL": "warn",
               "TASK_ROUTES": f"py.*={cls.url}", "TASK_SIGNING_SECRET": SECRET,
               "TASK_TIMEOUTS": "py.hang=1s", "TASK_BACKOFF_BASE": "200ms", "TASK_BACKOFF_CAP": "1s",
               "TASK_MAX_ATTEMPTS": "3", "VISIBILITY_TIMEOUT": "2s", "WORKER_CONCURRENCY": "2"}
        log = open(f"{WORK}/worker-{name}.log", "ab")
        p = subprocess.Popen([WORKER], env=env, stdout=log, stderr=log)
        metrics = env["METRICS_LISTEN"]
        import urllib.request

        def ready() -> bool:
            try:
                return urllib.request.urlopen(f"http://{metrics}/readyz", timeout=1).status == 200
            except OSError:
                return False
        wait_for(ready, 10, f"worker {name} ready")
        return p

    @classmethod
    def tearDownClass(cls) -> None:
        REC.release_hold.set()
        cls.worker.kill()
        cls.worker.wait()
        cls.server.shutdown()

    def enqueue(self, type_: str, payload: dict) -> str:
        return ctl("enqueue", type_, "--payload", json.dumps(payload))["id"]

    def state(self, task_id: str) -> dict:
        return ctl("tasks", "show", task_id)

    def wait_state(self, task_id: str, state: str, timeout: float = 15.0) -> dict:
        return wait_for(lambda: (lambda s: s if s.get("state") == state else None)(self.state(task_id)), timeout,
                        f"task {task_id} {state}")

    def test_2xx_succeeds_with_the_answer_as_result_and_a_signed_request(self) -> None:
        task_id = self.enqueue("py.ok", {"answer": 200, "user": 7})
        st = self.wait_state(task_id, "succeeded")
        self.assertEqual(json.loads(st["result"]), {"handled": task_id, "attempt": 0})
        self.assertEqual(st["attempts"], 1)
        [req] = REC.of(task_id)
        self.assertTrue(req["signature_ok"], req["headers"])
        self.assertEqual(req["headers"]["Idempotency-Key"], task_id)
        self.assertEqual(req["path"], "/tasks")
        doc = req["doc"]
        self.assertEqual(doc["type"], "py.ok")
        self.assertEqual(doc["payload"], {"answer": 200, "user": 7})
        self.assertEqual(doc["queue"], "default")
        self.assertEqual(doc["attempt"], 0)
        # py.ok has no timeout of its own: the deadline is TASK_ROUTE_TIMEOUT's (60 s by default), after which
        # the request would be cut.
        left = int(req["headers"]["X-Streamfleet-Deadline-Ms"])
        self.assertTrue(55000 <= left <= 60000, left)
        self.assertLess(abs(doc["deadline_ms"] - (time.time() * 1000 + left)), 5000, doc["deadline_ms"])
        self.assertLess(abs(int(req["headers"]["X-Streamfleet-Timestamp"]) - time.time()), 5)

    def test_4xx_is_dead_at_once(self) -> None:
        task_id = self.enqueue("py.bad", {"answer": 400})
        st = self.wait_state(task_id, "dead")
        self.assertIn("HTTP 400", st["error"])
        time.sleep(0.5)
        self.assertEqual(len(REC.of(task_id)), 1, "no retry of a permanent refusal")

    def test_503_with_retry_after_comes_back_then(self) -> None:
        task_id = self.enqueue("py.busy", {"answer": 503, "retry_after": 2, "then": 200})
        st = self.wait_state(task_id, "retry_scheduled")
        first = REC.of(task_id)[0]["at"]
        self.assertAlmostEqual(st["run_at_ms"] / 1000.0, first + 2.0, delta=0.8)
        self.wait_state(task_id, "succeeded", 10)
        reqs = REC.of(task_id)
        self.assertEqual(len(reqs), 2)
        self.assertGreaterEqual(reqs[1]["at"] - reqs[0]["at"], 1.5, "not before Retry-After")
        self.assertEqual(reqs[1]["doc"]["attempt"], 1)
        self.assertEqual(reqs[1]["headers"]["Idempotency-Key"], task_id)

    def test_5xx_retries_with_the_policy(self) -> None:
        task_id = self.enqueue("py.flaky", {"answer": 500, "then": 200})
        st = self.wait_state(task_id, "succeeded")
        self.assertEqual(st["attempts"], 2)
        self.assertEqual(len(REC.of(task_id)), 2)

    def test_a_handler_past_the_deadline_is_retried_and_was_told_the_deadline(self) -> None:
        task_id = self.enqueue("py.hang", {"answer": "hang"})
        st = self.wait_state(task_id, "retry_scheduled", 10)
        self.assertIn("DEADLINE_EXCEEDED", st["error"])
        req = REC.of(task_id)[0]
        self.assertLessEqual(int(req["headers"]["X-Streamfleet-Deadline-Ms"]), 1000)
        self.assertIsNotNone(req["doc"]["deadline_ms"])

    def test_tasks_share_keep_alive_connections(self) -> None:
        ids = [self.enqueue("py.ka", {"answer": 200}) for _ in range(20)]
        for task_id in ids:
            self.wait_state(task_id, "succeeded")
        # Each worker slot (2, plus the housekeeper) keeps one connection: far fewer than 20.
        with REC.lock:
            conns = {a for a in REC.connections}
        self.assertLess(len(conns), 10, conns)

    def test_zz_a_worker_killed_mid_request_runs_the_task_again_with_the_same_key(self) -> None:
        task_id = self.enqueue("py.hold", {"answer": "hold"})
        wait_for(lambda: REC.of(task_id), 10, "the first request")
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait()
        REC.release_hold.set()
        type(self).worker = self.start_worker("w2")
        st = self.wait_state(task_id, "succeeded", 20)
        reqs = REC.of(task_id)
        self.assertEqual(len(reqs), 2)
        self.assertEqual(reqs[0]["headers"]["Idempotency-Key"], reqs[1]["headers"]["Idempotency-Key"])
        self.assertEqual(st["worker"].split("-")[0], "w2")


if __name__ == "__main__":
    unittest.main()
