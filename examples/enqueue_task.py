#!/usr/bin/python3
"""Enqueue a streamfleet task from Python with the client in clients/python (docs/task-protocol.md).

Uses Debian's python3-redis and python3-protobuf (run with /usr/bin/python3). Prints the task id. Connects
as the fleet's processes do (REDIS_URL or REDIS_HOST/PORT, REDIS_USERNAME/PASSWORD, REDIS_DB, TLS, Sentinel,
REDIS_CLUSTER; TaskClient.from_env): --host and --port, when given, stand for REDIS_HOST and REDIS_PORT.

    /usr/bin/python3 examples/enqueue_task.py --port 6379 --type noop --payload '{"hello": "world"}'
    /usr/bin/python3 examples/enqueue_task.py --type noop --delay 30 --unique-key report-7
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "clients", "python"))

from streamfleet_client import TaskClient  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", help="REDIS_HOST for this run")
    ap.add_argument("--port", type=int, help="REDIS_PORT for this run")
    ap.add_argument("--queue", default="default")
    ap.add_argument("--type", required=True)
    ap.add_argument("--payload", default="{}")
    ap.add_argument("--delay", type=float, help="seconds from now")
    ap.add_argument("--unique-key", default="")
    args = ap.parse_args()
    json.loads(args.payload)  # fail early on invalid JSON: every handler parses its payload as JSON

    # The connection, prefix, key schema, shards and status TTL from the fleet's own variables: a task written
    # to another database, without the password, or with a standalone client on a cluster would never run.
    env = dict(os.environ)
    if args.host:
        env["REDIS_HOST"] = args.host
        env.pop("REDIS_URL", None)
    if args.port:
        env["REDIS_PORT"] = str(args.port)
        env.pop("REDIS_URL", None)
    client = TaskClient.from_env(env)
    res = client.enqueue(args.type, args.payload, queue=args.queue, delay=args.delay, unique_key=args.unique_key)
    print(res.id)


if __name__ == "__main__":
    main()
