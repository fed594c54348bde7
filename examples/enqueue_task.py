#!/usr/bin/python3
"""Enqueue a streamfleet task from Python with the client in clients/python (docs/task-protocol.md).

Uses Debian's python3-redis and python3-protobuf (run with /usr/bin/python3). Prints the task id.

    /usr/bin/python3 examples/enqueue_task.py --port 6379 --type noop --payload '{"hello": "world"}'
    /usr/bin/python3 examples/enqueue_task.py --type noop --delay 30 --unique-key report-7
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "clients", "python"))

import redis  # noqa: E402

from streamfleet_client import TaskClient  # noqa: E402
from streamfleet_client.config import keys_from_env  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.environ.get("REDIS_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("REDIS_PORT", "6379")))
    ap.add_argument("--queue", default="default")
    ap.add_argument("--type", required=True)
    ap.add_argument("--payload", default="{}")
    ap.add_argument("--delay", type=float, help="seconds from now")
    ap.add_argument("--unique-key", default="")
    args = ap.parse_args()
    json.loads(args.payload)  # fail early on invalid JSON: every handler parses its payload as JSON

    # Prefix, key schema, shards and status TTL from the fleet's own variables (STREAMFLEET_STREAM_PREFIX, ...).
    client = TaskClient(redis.Redis(host=args.host, port=args.port), keys_from_env(dict(os.environ)),
                        int(os.environ.get("TASK_RESULT_TTL", "86400")))
    res = client.enqueue(args.type, args.payload, queue=args.queue, delay=args.delay, unique_key=args.unique_key)
    print(res.id)


if __name__ == "__main__":
    main()
