#!/usr/bin/env python3
"""A minimal streamfleet push handler (docs/push-handlers.md), Python stdlib only.

    TASK_SIGNING_SECRET=... PORT=8000 python3 handler.py
    # worker: TASK_ROUTES='send_notifications=http://127.0.0.1:8000/tasks'

Answers: 200 + a JSON result (stored as the task's result), 401 bad signature (dead-lettered: fix the secret
and requeue), 400 unknown type or bad body (dead-lettered), 500 when the handler raises (retried).
HTTP/1.1 keep-alive: the worker reuses one connection per worker slot.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify import verify  # noqa: E402

SECRET = os.environ.get("TASK_SIGNING_SECRET", "")


class BadPayload(Exception):
    """A payload this type can never handle: answered 400, so the worker dead-letters it instead of retrying."""


def send_notifications(task):
    # Delivery is at least once: dedupe side effects on task["id"] (= the Idempotency-Key header).
    payload = task.get("payload")  # any JSON value the producer sent: check its shape before using it
    if not isinstance(payload, dict) or not isinstance(payload.get("user_ids", []), list):
        raise BadPayload('payload must be an object with a list "user_ids"')
    return {"sent": len(payload.get("user_ids", []))}


HANDLERS = {"send_notifications": send_notifications, "echo": lambda task: {"echo": task["payload"]}}


# The largest request the worker sends: a 16 MiB payload and its envelope. Anything larger, or a bad
# Content-Length, is refused before it is read: the body is read before its signature can be checked.
MAX_BODY = 17 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries Content-Length

    def answer(self, code, doc):
        body = json.dumps(doc).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True  # the unread body must not be taken for the next request
            return self.answer(413, {"error": "body too large or bad Content-Length"})
        raw = self.rfile.read(length)
        if not verify(SECRET, self.headers.get("X-Streamfleet-Timestamp"),
                      self.headers.get("X-Streamfleet-Signature"), raw):
            return self.answer(401, {"error": "bad signature"})
        try:
            task = json.loads(raw)
            if not isinstance(task, dict):
                raise TypeError("not an object")
            fn = HANDLERS[task["type"]]
        except (ValueError, KeyError, TypeError):
            return self.answer(400, {"error": "unknown task type or bad body"})
        try:
            result = fn(task)
        except BadPayload as e:
            return self.answer(400, {"error": str(e)})
        except Exception as e:  # noqa: BLE001 - any failure is retried by the worker
            return self.answer(500, {"error": str(e)})
        self.answer(200, result)

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    if not SECRET:
        sys.exit("set TASK_SIGNING_SECRET")
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler)
    print(f"push handler on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
