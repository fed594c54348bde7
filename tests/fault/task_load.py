"""Tasks with an observable side effect: `webhook` tasks (a built-in type) POSTing to a receiver here.

The receiver counts every execution per task id (from the `Idempotency-Key: <task id>` header the worker
sends), so a duplicate *execution* shows; it applies the effect keyed by that id, so the *effect* is
idempotent (a replay rewrites the same entry). Poison tasks are planted two ways: a webhook whose receiver
answers 400 (permanent: dead-lettered at once) and a task of an unknown type.
"""
import http.server
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time


def load_task_pb2(root):
    out = tempfile.mkdtemp(prefix="streamfleet-fault-pb2-")
    subprocess.run(["protoc", "-I", os.path.join(root, "proto"), "--python_out", out,
                    "streamfleet/v1/task.proto"], check=True)
    sys.path.insert(0, out)
    return importlib.import_module("streamfleet.v1.task_pb2")


class Receiver:
    def __init__(self, port):
        self.executions = {}   # task id -> POSTs received (duplicate executions show here)
        self.effects = {}      # task id -> body; the idempotent effect (set, not append)
        self.poison_posts = 0
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                tid = self.headers.get("Idempotency-Key", "")
                with lock:
                    if self.path == "/poison":
                        outer.poison_posts += 1
                    else:
                        outer.executions[tid] = outer.executions.get(tid, 0) + 1
                        outer.effects[tid] = body
                code = 400 if self.path == "/poison" else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a worker SIGKILLed mid-request resets its connection: expected here

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def enqueue(redis_port, task_pb2, n, poison_webhooks, poison_unknown, receiver_port, prefix="streamfleet"):
    """XADDs n good tasks and the poison ones, shuffled in; returns (good ids, poison ids)."""
    import random
    import redis
    r = redis.Redis(port=redis_port)
    url = f"http://127.0.0.1:{receiver_port}"
    good = [f"t{i}" for i in range(n)]
    tasks = [(t, "webhook", {"url": url + "/effect", "body": {"task": t}}) for t in good]
    poison = [f"p{i}" for i in range(poison_webhooks)]
    tasks += [(t, "webhook", {"url": url + "/poison", "body": {"task": t}}) for t in poison]
    unknown = [f"u{i}" for i in range(poison_unknown)]
    tasks += [(t, "fault.no_such_type", {}) for t in unknown]
    random.Random(7).shuffle(tasks)
    now = int(time.time() * 1000)
    pipe = r.pipeline(transaction=False)
    for i, (tid, typ, payload) in enumerate(tasks):
        env = task_pb2.TaskEnvelope(id=tid, type=typ, payload=json.dumps(payload).encode(), attempt=0,
                                    enqueued_at_ms=now, queue="default")
        pipe.xadd(f"{prefix}:queue:default", {"e": env.SerializeToString()})
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return good, poison + unknown


def dead_letter_ids(redis_port, task_pb2, prefix="streamfleet"):
    import redis
    r = redis.Redis(port=redis_port)
    ids, reasons = [], {}
    for _, fields in r.xrange(f"{prefix}:dlq:tasks"):
        env = task_pb2.TaskEnvelope()
        env.ParseFromString(fields.get(b"e", b""))
        ids.append(env.id)
        reasons[env.id] = fields.get(b"reason", b"").decode("utf-8", "replace")
    return ids, reasons
