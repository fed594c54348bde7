#!/usr/bin/python3
"""Enqueue a streamfleet task from Python: XADD of a streamfleet.v1.TaskEnvelope to the queue stream.

Uses Debian's python3-redis and python3-protobuf (run with /usr/bin/python3). The protobuf module is
generated from proto/streamfleet/v1/task.proto with protoc on first use (into a temporary directory).

    /usr/bin/python3 examples/enqueue_task.py --port 6379 --type noop --payload '{"hello": "world"}'
"""
import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_task_pb2():
    out = tempfile.mkdtemp(prefix="streamfleet-pb2-")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out,
                    "streamfleet/v1/task.proto"], check=True)
    sys.path.insert(0, out)
    return importlib.import_module("streamfleet.v1.task_pb2")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.environ.get("REDIS_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("REDIS_PORT", "6379")))
    ap.add_argument("--prefix", default=os.environ.get("STREAMFLEET_STREAM_PREFIX", "streamfleet"))
    ap.add_argument("--queue", default="default")
    ap.add_argument("--type", required=True)
    ap.add_argument("--payload", default="{}")
    args = ap.parse_args()
    json.loads(args.payload)  # fail early on invalid JSON

    task_pb2 = load_task_pb2()
    task = task_pb2.TaskEnvelope(id=uuid.uuid4().hex[:20], type=args.type, payload=args.payload.encode(),
                                 attempt=0, enqueued_at_ms=int(time.time() * 1000), queue=args.queue)
    r = redis.Redis(host=args.host, port=args.port)
    # The status hash the workers update (optional for producers; lets `streamfleetctl tasks show` find it).
    # Written BEFORE the XADD: a fast worker may finish the task before this script's next command.
    r.hset(f"{args.prefix}:task:{task.id}", mapping={"state": "pending", "type": task.type, "queue": args.queue})
    r.expire(f"{args.prefix}:task:{task.id}", 86400)
    r.xadd(f"{args.prefix}:queue:{args.queue}", {"e": task.SerializeToString()})
    print(task.id)


if __name__ == "__main__":
    main()
