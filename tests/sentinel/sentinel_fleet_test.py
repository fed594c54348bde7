"""The fleet behind Redis Sentinel through a failover (docs/deploy.md "High availability"): one master, one
replica, three sentinels (Debian's redis-server in sentinel mode); ingest, compactor and queue-worker
configured with REDIS_SENTINELS only. Chunks of 20 generations and a stream of tasks are written while the
master is SIGKILLed; the processes follow the promoted replica without a restart. Afterwards every
generation has its row and every acknowledged chunk and task is there, except what asynchronous replication
may lose: acknowledged by the old master in the last moments before the kill and not yet replicated. That
loss is measured and printed (and bounded: it can only be writes acknowledged in the last second).

With --wait-replicas, ingest runs with INGEST_WAIT_REPLICAS=1 (a 202 only once the replica has the chunk):
then no acknowledged chunk may be lost. The killed master is started again as the promoted replica's replica, so
that WAIT can be answered again (until then ingest answers 503 and the producer retries).

    sentinel_fleet_test.py BUILD_DIR [--wait-replicas]
"""
import base64
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fault"))

from fleet import Fleet, Proc, free_port, post_json, wait_until  # noqa: E402

GENS, CHUNKS = 20, 40


def cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), *map(str, args)], capture_output=True, text=True, timeout=10)
    return r.stdout.strip()


def main():
    build = sys.argv[1]
    wait_replicas = "--wait-replicas" in sys.argv[2:]
    work = tempfile.mkdtemp(prefix="streamfleet-sentinel.")
    fleet = Fleet(build, work, ROOT)
    try:
        mport, rport = free_port(), free_port()
        # No diskless-sync delay: a replica that needs a full resync after the failover gets it at once, not
        # 5 s later (with INGEST_WAIT_REPLICAS=1, every write waits for it).
        base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", work,
                "--repl-diskless-sync-delay", "0"]
        master = Proc(fleet, "redis-master", ["redis-server", "--port", str(mport), *base, "--logfile",
                                              f"{work}/master.log"], os.environ.copy())
        master.start()
        replica = Proc(fleet, "redis-replica", ["redis-server", "--port", str(rport), *base, "--logfile",
                                                f"{work}/replica.log", "--replicaof", "127.0.0.1", str(mport)],
                       os.environ.copy())
        replica.start()
        wait_until(lambda: "master_link_status:up" in cli(rport, "INFO", "replication"), 20, "the replica's sync")
        sentinels = []
        for i in range(3):
            sp = free_port()
            conf = f"{work}/sentinel{i}.conf"
            with open(conf, "w") as f:
                f.write(f"port {sp}\nbind 127.0.0.1\ndir {work}\nlogfile {work}/sentinel{i}.log\n"
                        f"sentinel monitor mymaster 127.0.0.1 {mport} 2\n"
                        # 3 s, not 1: with one missed ping enough, a loaded CI machine had the sentinels take
                        # the master just promoted for down and fail over a second time (back to the old master,
                        # with a full resync that held every write past the producer's deadline).
                        "sentinel down-after-milliseconds mymaster 3000\nsentinel failover-timeout mymaster 5000\n")
            p = Proc(fleet, f"sentinel{i}", ["redis-server", conf, "--sentinel"], os.environ.copy())
            p.start()
            fleet.procs.append(p)
            sentinels.append(f"127.0.0.1:{sp}")
        fleet.procs += [master, replica]
        for s in sentinels:
            wait_until(lambda s=s: cli(s.split(":")[1], "SENTINEL", "get-master-addr-by-name", "mymaster") != "",
                       20, "sentinel " + s)

        db = os.path.join(work, "fleet.db")
        env = fleet.env(DATABASE_URL=f"sqlite:{db}", GENERATION_IDLE_TIMEOUT="3s", REDIS_SENTINELS=",".join(sentinels),
                        REDIS_SENTINEL_MASTER="mymaster", REDIS_HOST="127.0.0.1", REDIS_PORT="1")
        if wait_replicas:
            env.update(INGEST_WAIT_REPLICAS="1", INGEST_WAIT_TIMEOUT="500ms")
        ingest = fleet.ingest(env)
        fleet.compactor(1, env)
        fleet.worker(1, env)
        ctl = os.path.join(build, "tools/streamfleetctl")

        acked = {}       # (gen, seq) -> (text, time of the 202)
        tasks = {}       # task id -> time enqueued
        kill_at = {}
        stop = threading.Event()

        def producer():
            for seq in range(CHUNKS):
                for g in range(GENS):
                    gen = 970000 + g
                    body = {"seq": seq, "data": f"<{gen}:{seq}>", "final": seq == CHUNKS - 1}
                    deadline = time.monotonic() + 30
                    while post_json(ingest.api, f"/v1/orgs/9/generations/{gen}/chunks", body) != 202:
                        if time.monotonic() > deadline:
                            raise SystemExit(f"chunk {gen}/{seq} never accepted")
                        time.sleep(0.05)
                    acked[(gen, seq)] = (body["data"], time.monotonic())
                time.sleep(0.02)

        def enqueuer():
            while not stop.is_set():
                out = subprocess.run([ctl, "--json", "enqueue", "noop"], env=env, capture_output=True, text=True,
                                     timeout=30)
                if out.returncode == 0:
                    tasks[json.loads(out.stdout)["id"]] = time.monotonic()
                time.sleep(0.05)

        pt = threading.Thread(target=producer)
        et = threading.Thread(target=enqueuer)
        pt.start()
        et.start()
        wait_until(lambda: len(acked) >= GENS * CHUNKS // 3, 60, "a third of the chunks")
        kill_at["t"] = time.monotonic()
        master.kill9()
        if wait_replicas:
            wait_until(lambda: cli(rport, "ROLE").splitlines()[:1] == ["master"], 30, "the replica's promotion")
            # Only once every sentinel names the promoted replica is the failover recorded: an old master back
            # before that can be taken for the master again and the replica turned back into its replica.
            for s in sentinels:
                wait_until(lambda s=s: cli(s.split(":")[1], "SENTINEL", "get-master-addr-by-name",
                                           "mymaster").splitlines()[1:2] == [str(rport)], 30,
                           f"sentinel {s} naming the promoted replica")
            # Back (empty: no persistence) as the new master's replica, as an orchestrator restarts it; the
            # sentinels would reconfigure a restarted master too, but only after several seconds.
            master.argv += ["--replicaof", "127.0.0.1", str(rport)]
            master.start()
            wait_until(lambda: "master_link_status:up" in cli(mport, "INFO", "replication"), 30,
                       "the old master back as a replica")
        pt.join(120)
        assert not pt.is_alive(), "the producer did not finish after the failover"
        time.sleep(2)
        stop.set()
        et.join(60)
        new_master = cli(rport, "ROLE").splitlines()[0]
        assert new_master == "master", f"the replica was not promoted: {new_master}"
        # Unavailability: the longest pause between two acknowledged chunks around the kill.
        times = sorted(t for (_, t) in acked.values())
        took = max((b - a for a, b in zip(times, times[1:]) if b > kill_at["t"]), default=0.0)

        def rows():
            try:
                return {r[0]: base64.b64decode(r[1]).decode() for r in sqlite3.connect(db).execute(
                    "SELECT id, compacted FROM scenario_generations WHERE id >= 970000 AND compacted IS NOT NULL")}
            except sqlite3.OperationalError:
                return {}
        wait_until(lambda: len(rows()) == GENS, 60, "every generation's row")
        got = rows()
        lost = [(g, s) for (g, s), (text, _) in acked.items() if text not in got[g]]
        lost_window = [kill_at["t"] - acked[k][1] for k in lost]
        assert all(w < 1.5 for w in lost_window), f"lost chunks acknowledged long before the kill: {lost_window}"
        if wait_replicas:
            assert not lost, f"INGEST_WAIT_REPLICAS=1 lost acknowledged chunks: {lost}"

        def state(tid):
            out = subprocess.run([ctl, "--json", "tasks", "show", tid], env=env, capture_output=True, text=True,
                                 timeout=30)
            return json.loads(out.stdout).get("state") if out.returncode == 0 else None
        time.sleep(3)
        lost_tasks = [t for t, at in tasks.items() if state(t) != "succeeded"]
        assert all(kill_at["t"] - tasks[t] < 1.5 for t in lost_tasks), "tasks lost long before the kill"
        print(f"ok{' (INGEST_WAIT_REPLICAS=1)' if wait_replicas else ''}: failover followed "
              f"(writes paused {took:.1f} s around the SIGKILL); "
              f"{len(acked)} chunks and {len(tasks)} tasks acknowledged; lost in the replication window: "
              f"{len(lost)} chunks, {len(lost_tasks)} tasks")
        print("sentinel fleet test passed")
    except BaseException:
        print(fleet.log_tails(25), file=sys.stderr)
        raise
    finally:
        fleet.close()


if __name__ == "__main__":
    main()
