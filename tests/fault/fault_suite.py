#!/usr/bin/python3
"""The fault suite (issue 10): the fleet's real binaries on loopback, under SIGKILLs and outages.

    fault_suite.py BUILD_DIR [--short | --long] [--only NAME,...]

Scenarios (docs/reliability.md, "Fault suite", has what each proves and the figures of a long run):
  chunks        ingest + 3 compactors, a random compactor SIGKILLed and restarted every second
  redis_restart the same, and redis-server (AOF, appendfsync everysec) SIGKILLed and restarted mid-run
  pg_outage     the same on PostgreSQL, and PostgreSQL stopped mid-run (pg_ctl stop/start, same dir/port)
  object_store  the same with compacted texts in the object store (s3rver), and the store SIGKILLed mid-run
  tasks         webhook tasks with a recorded effect, queue-workers SIGKILLed at random, poison tasks planted
  memory        compactors stopped: ingest's backpressure engages before Redis reaches maxmemory; streams
                are trimmed once compactors run again
Each prints one FIGURES line; any loss, duplicate, unexpected dead letter or hang fails (exit 1).
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from chunk_load import Plan, Poster, Rows, Verdict, b64_len  # noqa: E402
from fleet import Fleet, Killer, free_port, wait_until  # noqa: E402
import task_load  # noqa: E402

SIZES = {
    "short": dict(chunks=150, redis_restart=80, pg_outage=80, pg_down_s=3, object_store=80, s3_down_s=3,
                  tasks=3000, poison=20, settle_s=120),
    "long": dict(chunks=2000, redis_restart=2000, pg_outage=2000, pg_down_s=10, object_store=2000, s3_down_s=10,
                 tasks=50000, poison=100, settle_s=1200),
}
# Slots per worker in the tasks scenario (WORKER_CONCURRENCY); it bounds what a SIGKILL may re-run.
TASK_SLOTS = 8
# Redis documents everysec as losing "one second of writes" and up to two when a slow fsync postpones the
# write(2) of the AOF buffer; acknowledged chunks acked this long before the kill may be missing.
AOF_WINDOW_S = 2.0


class Failure(Exception):
    pass


def figures(name, **kv):
    print("FIGURES " + name + ": " + " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)


class StreamSampler(threading.Thread):
    """Largest total length of the chunk streams seen while the scenario runs (bounded by trimming)."""

    def __init__(self, fleet):
        super().__init__(daemon=True)
        self.fleet, self.max_len, self.stop = fleet, 0, threading.Event()

    def run(self):
        while not self.stop.wait(0.5):
            try:
                n = sum(int(self.fleet.redis_cli("XLEN", f"streamfleet:chunks:{i}") or 0) for i in range(4))
                self.max_len = max(self.max_len, n)
            except Exception:  # noqa: BLE001 - Redis may be down in the restart scenario
                pass


def chunk_scenario(fleet, name, gens, seed, database_url, settle_s, disrupt=None, tolerated_window=None,
                   extra_env=None):
    """Posts a plan while compactors are SIGKILLed every second; `disrupt(fleet, figures)`, a generator the
    main loop steps every 50 ms, starts once half the chunks are acknowledged and adds its figures. Returns once every generation's row is byte-exact (or fails)."""
    started = time.monotonic()
    org = seed
    plan = Plan(org, gens, seed)
    env = fleet.env(DATABASE_URL=database_url, GENERATION_IDLE_TIMEOUT="2s", VISIBILITY_TIMEOUT="1s",
                    MAX_DELIVERIES=1000, **(extra_env or {}))
    ingest = fleet.ingest(env)
    comps = [fleet.compactor(i, env) for i in (1, 2, 3)]
    killer = Killer(comps, 1.0, seed)
    sampler = StreamSampler(fleet)
    poster = Poster(plan, ingest.api, threads=8, deadline_s=900)
    pt = threading.Thread(target=poster.run, daemon=True)
    extra = {}
    steps = None  # the disruption's generator, once started
    sampler.start()
    pt.start()
    # The main thread kills, restarts and disrupts (the processes it starts die with the thread that forked them).
    while pt.is_alive() or (steps is not None and steps is not False):
        time.sleep(0.05)
        killer.maybe_tick()
        if disrupt and steps is None and len(poster.acked_at) >= plan.chunk_count() // 2:
            steps = disrupt(fleet, extra)
        if steps:
            try:
                next(steps)
            except StopIteration:
                steps = False
    end = time.monotonic() + 1.0  # a last kill or two after the final chunk
    while time.monotonic() < end:
        time.sleep(0.05)
        killer.maybe_tick()
    for c in comps:
        if not c.alive():
            c.start(wait=False)
    if poster.errors:
        raise Failure(f"{name}: posting failed: {poster.errors[:3]}")
    posted_s = time.monotonic() - started

    def show_generation(o, g):
        """The row's compacted text read through the object store, as streamfleetctl shows it."""
        r = subprocess.run([os.path.join(fleet.build, "tools/streamfleetctl"), "--json", "show-generation", str(o),
                            str(g)], env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Failure(f"{name}: show-generation {o} {g}: {r.stdout} {r.stderr}")
        return json.loads(r.stdout)["compacted"]

    rows = Rows(database_url, show_generation)
    want = {g: (len(c), b64_len(sum(map(len, c)))) for g, c in plan.gens.items()}
    settle_started = time.monotonic()
    left = settle(fleet, lambda: rows.summary(org) == want, settle_s)
    settle_took = time.monotonic() - settle_started
    sampler.stop.set()
    # One generation.compacted event per finalization that wrote (and per replay): how often rows were rewritten.
    compacted_events = fleet.redis_cli("XLEN", "streamfleet:events")

    def tolerated(g, missing):
        if tolerated_window is None:
            return False
        lo, hi = tolerated_window()
        return all(lo <= poster.acked_at.get((g, s), 0) <= hi for s in missing)

    v = Verdict(plan, rows.full(org), tolerated if tolerated_window else None)
    if "ARTIFACT_STORE" in env:
        extra["rows_text_in_store"] = rows.in_store
        # Every generation whose text is over the inline limit must have it in the store, read back through it.
        limit = int(env.get("ARTIFACT_INLINE_MAX_BYTES", "1048576"))
        want_in_store = sum(1 for g in plan.gens if len(plan.expected(g)) > limit)
        if rows.in_store != want_in_store:
            raise Failure(f"{name}: {rows.in_store} rows have their text in the store, {want_in_store} should")
    compressed, elements = buffer_forms(fleet, org)
    elapsed = time.monotonic() - started
    figures(name, generations=gens, open_generations=len(plan.open), chunks=plan.chunk_count(),
            bytes=plan.byte_count(), chunks_64k=plan.big_chunks, requests=len(plan.requests),
            http_retries=poster.retries, compactor_kills=killer.kills, compactor_restarts=killer.restarts,
            **extra, byte_exact=v.ok_gens, lost=v.lost_chunks, duplicated=v.duplicated_chunks,
            bad_generations=len(v.bad), tolerated_generations=len(v.tolerated_gens),
            tolerated_chunks=sum(len(m) for _, m in v.tolerated_gens),
            triggers="/".join(f"{k}:{n}" for k, n in sorted(v.triggers.items())), compacted_events=compacted_events,
            max_chunk_stream_len=sampler.max_len, posting_s=f"{posted_s:.1f}", settle_s=f"{settle_took:.1f}",
            backlog_at_verdict=left or 0, buffer_elements=elements, compressed_elements=compressed,
            seconds=f"{elapsed:.1f}")
    for g, m in v.tolerated_gens:
        print(f"  tolerated (AOF everysec window): generation {g} missing seqs {m}")
    if not v.ok():
        why = f"still busy after {settle_s} s: {left}" if left else "the fleet was idle: lost, not slow"
        raise Failure(f"{name}: {len(v.bad)} generations wrong ({why}), e.g. {v.bad[:5]}")
    if plan.large_chunks and elements and not compressed:
        raise Failure(f"{name}: no chunk was stored compressed, though {plan.large_chunks} were >= 1 KiB "
                      "(CHUNK_COMPRESSION=zstd is the default)")
    for p in [ingest] + comps:
        p.kill9()


def buffer_forms(fleet, org):
    """(compressed, all) elements of the organization's buffer lists: "<seq>z:<zstd frame>" is compressed
    (components/chunks/include/streamfleet/chunks/buffer_element.h)."""
    import redis
    r = redis.Redis(port=fleet.redis_port)
    compressed = total = 0
    for key in r.scan_iter(match=f"app:scenario_planning:org:{org}:*gen:*", count=1000):
        if r.type(key) != b"list":
            continue
        for e in r.lrange(key, 0, -1):
            total += 1
            compressed += re.match(rb"\d+z:", e) is not None
    return compressed, total


def backlog(fleet):
    """What the compactors still have to do, or None when nothing is left: every chunk and finalize entry
    delivered and acknowledged, and no idle deadline waiting (a deadline's finalization can still change a
    row)."""
    import redis
    r = redis.Redis(port=fleet.redis_port)
    left = {}
    for s in [f"streamfleet:chunks:{i}" for i in range(4)] + ["streamfleet:finalize"]:
        for g in r.xinfo_groups(s):
            if g["name"] == b"compactor" and (g["pending"] or g.get("lag")):
                left[s.split(":", 1)[1]] = f"pending {g['pending']} lag {g.get('lag')}"
    deadlines = r.zcard("streamfleet:deadlines")
    if deadlines:
        left["deadlines"] = deadlines
    return left or None


def settle(fleet, done, timeout_s):
    """Waits until `done()` or until the compactors have nothing left to do (then once more: the last
    finalization may have committed a moment ago), at most timeout_s. Returns the backlog left, None when
    the fleet went idle. Adaptive: a loaded machine drains a backlog slower, and a fixed wait would call
    that a loss."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if done():
            return None
        try:
            left = backlog(fleet)
        except Exception as e:  # noqa: BLE001 - a stream not created yet
            left = {"error": str(e)}
        if left is None:
            time.sleep(1.0)
            return None
        time.sleep(0.5)
    return backlog(fleet)


def pause(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        yield


def scenario_chunks(fleet, size):
    fleet.start_redis()
    chunk_scenario(fleet, "chunks", size["chunks"], 11, f"sqlite:{fleet.work}/fleet.db", size["settle_s"])


def scenario_object_store(fleet, size):
    """The chunks scenario with compacted texts in the object store (ARTIFACT_STORE, texts over 512 bytes), and
    the store SIGKILLed mid-run and brought back: finalizations retry, nothing is acknowledged that is not
    durable, and every row's text, read back through the store, is byte-exact."""
    fleet.start_redis()
    store_env = fleet.start_s3("fault")

    def disrupt(f, extra):
        t0 = time.time()
        f.s3.kill9()
        yield from pause(size["s3_down_s"])
        f.s3.start()
        f.wait_s3()
        # What the compactors said while it was away (their health reports, "store artifact: UNAVAILABLE"):
        # proof that finalizations met the outage and were retried, not that the store was never needed.
        logged = 0
        for log in os.listdir(f.work):
            if log.startswith("compactor") and log.endswith(".log"):
                with open(os.path.join(f.work, log), "rb") as fh:
                    logged += fh.read().count(b"store artifact")
        extra.update(store_kills=1, store_down_s=f"{time.time() - t0:.1f}", store_errors_logged=logged)
        if logged == 0:
            print("  note: no finalization met the store outage in this run (nothing to retry)", flush=True)

    chunk_scenario(fleet, "object_store", size["object_store"], 14, f"sqlite:{fleet.work}/fleet.db", size["settle_s"],
                   disrupt, extra_env=dict(store_env, ARTIFACT_INLINE_MAX_BYTES=512))


def scenario_redis_restart(fleet, size):
    fleet.start_redis(aof=True)
    window = {}

    def disrupt(f, extra):
        window["kill"] = time.time()
        f.redis.kill9()
        yield from pause(0.5)
        f.redis.start()
        f.wait_redis()
        extra.update(redis_kills=1, redis_down_s=f"{time.time() - window['kill']:.1f}")

    chunk_scenario(fleet, "redis_restart", size["redis_restart"], 12, f"sqlite:{fleet.work}/fleet.db", size["settle_s"],
                   disrupt, lambda: (window["kill"] - AOF_WINDOW_S, window["kill"]))


def scenario_pg_outage(fleet, size):
    fleet.start_redis()
    url = fleet.start_pg()
    port = int(url.rsplit(":", 1)[1].split("/")[0])

    def disrupt(f, extra):
        t0 = time.time()
        f.stop_pg()
        yield from pause(size["pg_down_s"])
        f.restart_pg(port)
        extra.update(pg_stops=1, pg_down_s=f"{time.time() - t0:.1f}")

    chunk_scenario(fleet, "pg_outage", size["pg_outage"], 13, url, size["settle_s"], disrupt)


def scenario_tasks(fleet, size):
    started = time.monotonic()
    fleet.start_redis()
    pb2 = task_load.load_task_pb2(ROOT)
    rport = free_port()
    recv = task_load.Receiver(rport)
    try:
        n, poison_webhooks, poison_unknown = size["tasks"], size["poison"] // 2, size["poison"] - size["poison"] // 2
        good, poison = task_load.enqueue(fleet.redis_port, pb2, n, poison_webhooks, poison_unknown, rport)
        env = fleet.env(DATABASE_URL=f"sqlite:{fleet.work}/fleet.db", VISIBILITY_TIMEOUT="2s",
                        WORKER_CONCURRENCY=TASK_SLOTS, TASK_BACKOFF_BASE="100ms", TASK_BACKOFF_CAP="1s")
        workers = [fleet.worker(i, env) for i in (1, 2)]
        killer = Killer(workers, 1.0, 5)
        # Kill until 90% of the effects are in; then let the fleet finish.
        end = time.monotonic() + (60 if n <= 10000 else 600)
        while len(recv.effects) < 0.9 * n and time.monotonic() < end:
            time.sleep(0.05)
            killer.maybe_tick()
        for w in workers:
            if not w.alive():
                w.start(wait=False)

        def done():
            return len(recv.effects) >= n and len(task_load.dead_letter_ids(fleet.redis_port, pb2)[0]) >= len(poison)
        try:
            wait_until(done, 60, "every task effect and dead letter", 0.5)
        except TimeoutError:
            pass
        dlq, reasons = task_load.dead_letter_ids(fleet.redis_port, pb2)
        missing = [t for t in good if t not in recv.effects]
        execs = sum(recv.executions.get(t, 0) for t in good)
        re_executions = execs - (n - len(missing))
        # The delivery window: a SIGKILL re-runs what was running (one task per slot) and, per slot, one task
        # whose ack was still in flight; never the read-ahead batch a slot finished but had not acked.
        window = killer.kills * 2 * TASK_SLOTS
        wrong_effect = [t for t in good if t in recv.effects and recv.effects[t] != ('{"task":"%s"}' % t).encode()]
        unexpected_dlq = sorted(set(dlq) - set(poison))
        missing_dlq = sorted(set(poison) - set(dlq))
        figures("tasks", tasks=n, poison_planted=len(poison), worker_kills=killer.kills,
                worker_restarts=killer.restarts, effects_distinct=len(recv.effects), lost=len(missing),
                extra_effects=len(set(recv.effects) - set(good)),
                executions=execs, re_executions=re_executions, re_execution_bound=window,
                tasks_executed_twice_or_more=sum(1 for t in good if recv.executions.get(t, 0) > 1),
                dead_letters=len(dlq), unexpected_dead_letters=len(unexpected_dlq),
                seconds=f"{time.monotonic() - started:.1f}")
        if missing:
            print(subprocess.run([os.path.join(fleet.build, "tools/streamfleetctl"), "streams"], env=env,
                                 capture_output=True, text=True).stdout, file=sys.stderr)
            print(fleet.redis_cli("XPENDING", "streamfleet:queue:default", "workers", "-", "+", "20"), file=sys.stderr)
        if re_executions > window:
            raise Failure(f"tasks: {re_executions} re-executions after {killer.kills} worker kills, more than "
                          f"the {window} that in-flight tasks and acks explain")
        if missing or set(recv.effects) - set(good) or unexpected_dlq or missing_dlq or wrong_effect or len(dlq) != len(set(dlq)):
            raise Failure(f"tasks: missing effects {missing[:5]}, unexpected dead letters "
                          f"{[(t, reasons[t]) for t in unexpected_dlq[:5]]}, poison not dead-lettered "
                          f"{missing_dlq[:5]}, wrong effects {wrong_effect[:5]}, dead letters {len(dlq)}")
    finally:
        recv.close()


def scenario_memory(fleet, size):
    started = time.monotonic()
    # Room for the drain: while the compactor applies the backlog, each chunk is in its stream entry and in its
    # generation buffer until the next trim, about twice what was accepted (docs/reliability.md, Findings).
    maxmemory = 128 << 20
    lag = 200
    fleet.start_redis(maxmemory=maxmemory)
    db = f"sqlite:{fleet.work}/fleet.db"
    env = fleet.env(DATABASE_URL=db, INGEST_BACKPRESSURE_LAG=lag, GENERATION_IDLE_TIMEOUT="2s")
    ingest = fleet.ingest(env)
    comp = fleet.compactor(1, env)   # creates the consumer groups, then stops
    wait_until(lambda: fleet.redis_cli("EXISTS", "streamfleet:chunks:0") == "1", 10, "chunk streams")
    if comp.terminate() != 0:
        raise Failure("memory: compactor did not exit 0 on SIGTERM")
    chunk = ("é" * (32 * 1024)).encode("utf-8")   # 64 KiB of 2-byte UTF-8
    host, port = ingest.api.split(":")
    state = dict(accepted=[], backpressure=0, other=[], retry_after=set(), first_503_used=None, peak=0)
    lock = threading.Lock()
    stop = threading.Event()
    next_gen = iter(range(1, 10**9))

    def used():
        info = fleet.redis_cli("INFO", "memory")
        return int(next(ln.split(":")[1] for ln in info.splitlines() if ln.startswith("used_memory:")))

    def sample():
        while not stop.wait(0.05):
            u = used()
            with lock:
                state["peak"] = max(state["peak"], u)

    def post():
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while not stop.is_set():
            with lock:
                g = next(next_gen)
            body = b'{"seq": 0, "final": true, "data": "' + chunk + b'"}'
            conn.request("POST", f"/v1/orgs/40/generations/{g}/chunks", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            answer = r.read()
            with lock:
                if r.status == 202:
                    state["accepted"].append(g)
                elif r.status == 503 and b"backpressure" in answer:
                    state["backpressure"] += 1
                    state["retry_after"].add(r.getheader("Retry-After"))
                    if state["first_503_used"] is None:
                        state["first_503_used"] = used()
                else:
                    state["other"].append((r.status, answer[:200]))
            if r.status == 503:
                time.sleep(0.05)

    threads = [threading.Thread(target=sample, daemon=True)] + [threading.Thread(target=post, daemon=True)
                                                                for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: state["backpressure"] > 0 or state["other"], 60, "backpressure")
    time.sleep(1.0)  # it stays engaged: every answer now is 503
    stop.set()
    for t in threads:
        t.join(timeout=35)
    accepted = len(state["accepted"])
    if state["other"]:
        raise Failure(f"memory: answers other than 202/503 backpressure: {state['other'][:3]}")
    if state["peak"] >= maxmemory or state["retry_after"] != {"1"}:
        raise Failure(f"memory: peak {state['peak']} >= maxmemory {maxmemory} or Retry-After {state['retry_after']}")

    # Compactors back: the backlog drains, every accepted chunk becomes its row, and the trimmer bounds
    # the streams (only acknowledged entries are trimmed, every 10 s).
    comp.start()
    rows = Rows(db)
    want = {g: (1, b64_len(len(chunk))) for g in state["accepted"]}
    try:
        wait_until(lambda: rows.summary(40) == want, 60, "memory: a row for every accepted chunk", 0.5)
    except TimeoutError as e:
        raise Failure(f"{e}: {len(rows.summary(40))} rows of {accepted} accepted, used_memory {used()} (peak while "
                      f"posting {state['peak']}), {fleet.redis_cli('XLEN', 'streamfleet:dlq:chunks')} dead letters")

    def stream_total():
        return sum(int(fleet.redis_cli("XLEN", f"streamfleet:chunks:{i}") or 0) for i in range(4))
    before_trim = stream_total()
    wait_until(lambda: stream_total() <= 4, 25, "memory: chunk streams trimmed")
    figures("memory", maxmemory_bytes=maxmemory, backpressure_lag=lag, chunk_bytes=len(chunk), accepted=accepted,
            backpressure_503=state["backpressure"], used_memory_at_first_503=state["first_503_used"],
            used_memory_peak=state["peak"], peak_share_of_maxmemory=f"{state['peak'] / maxmemory:.2f}",
            rows=accepted, lost=0, stream_len_after_drain=before_trim, stream_len_after_trim=stream_total(),
            seconds=f"{time.monotonic() - started:.1f}")


SCENARIOS = [("chunks", scenario_chunks), ("redis_restart", scenario_redis_restart),
             ("pg_outage", scenario_pg_outage), ("object_store", scenario_object_store), ("tasks", scenario_tasks),
             ("memory", scenario_memory)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--short", action="store_const", dest="mode", const="short")
    g.add_argument("--long", action="store_const", dest="mode", const="long")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    args = ap.parse_args()
    size = SIZES[args.mode or "short"]
    only = set(filter(None, args.only.split(",")))
    build = os.path.abspath(args.build)
    failures = 0
    t0 = time.monotonic()
    for name, fn in SCENARIOS:
        if only and name not in only:
            continue
        work = tempfile.mkdtemp(prefix=f"streamfleet-fault-{name}.")
        fleet = Fleet(build, work, ROOT)
        try:
            fn(fleet, size)
            print(f"PASS {name}", flush=True)
        except (Failure, TimeoutError) as e:
            failures += 1
            print(f"FAIL {name}: {e}\n{fleet.log_tails()}", file=sys.stderr, flush=True)
        finally:
            fleet.close()
            if os.environ.get("FAULT_KEEP") != "1":
                shutil.rmtree(work, ignore_errors=True)
            else:
                print(f"kept {work}")
    print(f"fault suite ({args.mode or 'short'}): {failures} failed, {time.monotonic() - t0:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    random.seed(1)
    sys.exit(main())
