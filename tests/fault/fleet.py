"""The processes of a fault scenario: redis-server, PostgreSQL, ingest, compactors, queue-workers.

Every child gets PR_SET_PDEATHSIG(SIGKILL), so nothing outlives the suite even if it is SIGKILLed itself
(a ctest timeout); Fleet.close() kills the rest (and stops PostgreSQL, which runs detached under pg_ctl).
The death signal fires when the *thread* that forked the child ends, so start processes from the main
thread only (the scenarios' loops do; load generators and samplers run in threads).
Loopback only: every listener binds 127.0.0.1 on a free port.
"""
import ctypes
import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import json
import time
import urllib.error
import urllib.request

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not within {timeout} s")


def http_status(url, method="GET", body=None, headers=None, timeout=10):
    """The status code of one request (an error status too); 0 when no answer came (refused, reset, timeout).
    body: a JSON value, sent as application/json."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def post_json(api, path, body, token=None, timeout=10):
    """POST body as JSON to http://api/path (with a bearer token when given); the status code, 0 on no answer."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return http_status(f"http://{api}{path}", "POST", body, headers, timeout)


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


class Proc:
    """One fleet process: started, SIGKILLed and restarted with the same environment."""

    def __init__(self, fleet, name, argv, env, health_url=None):
        self.fleet, self.name, self.argv, self.env, self.health_url = fleet, name, argv, env, health_url
        self.popen = None
        self.starts = 0

    def start(self, wait=True):
        log = open(os.path.join(self.fleet.work, f"{self.name}.log"), "ab")
        self.popen = subprocess.Popen(self.argv, env=self.env, cwd=self.fleet.work, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=log, preexec_fn=_die_with_parent)
        log.close()
        self.starts += 1
        if wait and self.health_url:
            wait_until(lambda: http_ok(self.health_url), 15, f"{self.name} /healthz")
        return self

    def kill9(self):
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def terminate(self, grace=10):
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise
        return self.popen.returncode if self.popen else 0

    def alive(self):
        return self.popen is not None and self.popen.poll() is None


class Fleet:
    def __init__(self, build, work, root):
        self.build, self.work, self.root = build, work, root
        self.procs = []
        self.pg_dir = None
        self.redis = None
        self.redis_port = None

    # --- redis-server -------------------------------------------------------------------------------
    def start_redis(self, aof=False, maxmemory=None):
        self.redis_port = free_port()
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                "--dir", self.work, "--logfile", os.path.join(self.work, "redis.log")]
        # everysec: a background fsync once a second; what that can lose is stated in docs/reliability.md.
        argv += ["--appendonly", "yes", "--appendfsync", "everysec"] if aof else ["--appendonly", "no"]
        if maxmemory:
            argv += ["--maxmemory", str(maxmemory), "--maxmemory-policy", "noeviction"]
        self.redis = Proc(self, "redis", argv, os.environ.copy())
        self.redis.start()
        self.wait_redis()
        return self.redis_port

    def wait_redis(self, timeout=30):
        def up():
            r = subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True, text=True)
            return r.stdout.strip() == "PONG"  # LOADING answers an error, not PONG
        wait_until(up, timeout, "redis-server", 0.1)

    def redis_cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.redis_port), *map(str, args)], capture_output=True,
                           text=True, timeout=10)
        return r.stdout.strip()

    # --- PostgreSQL (scripts/pg.sh's server; stopped and started again on the same dir and port) -------
    def start_pg(self):
        # Its own directory: pg.sh makes it readable for the postgres user (WORK is private).
        self.pg_dir = tempfile.mkdtemp(prefix="streamfleet-fault-pg.")
        out = subprocess.run(["bash", os.path.join(self.root, "scripts/pg.sh"), "start", self.pg_dir],
                             capture_output=True, text=True, check=True, timeout=120)
        return out.stdout.strip().splitlines()[-1]

    def _pg_ctl(self, *args):
        pgbin = sorted(d for d in os.listdir("/usr/lib/postgresql"))[-1]
        cmd = [f"/usr/lib/postgresql/{pgbin}/bin/pg_ctl", "-D", os.path.join(self.pg_dir, "data"), *args]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def stop_pg(self):
        self._pg_ctl("-m", "fast", "-w", "stop")

    def restart_pg(self, port):
        # The options scripts/pg.sh starts it with (same port, same socket dir).
        opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {self.pg_dir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._pg_ctl("-l", os.path.join(self.pg_dir, "server.log"), "-w", "-t", "60", "-o", opts, "start")

    # --- s3rver (the object store; the package pinned in tests/support/s3rver, installed into the build) --
    def start_s3(self, bucket):
        pkg, work = os.path.join(self.root, "tests/support/s3rver"), os.path.join(self.build, "s3rver")
        os.makedirs(work, exist_ok=True)
        # One installer at a time (the C++ tests install into the same directory under the same lock).
        with open(os.path.join(work, ".install.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.exists(os.path.join(work, "node_modules/.bin/s3rver")):
                for f in ("package.json", "package-lock.json"):
                    shutil.copyfile(os.path.join(pkg, f), os.path.join(work, f))
                subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work, check=True,
                               timeout=600)
        self.s3_port = free_port()
        data = os.path.join(self.work, "s3")
        os.makedirs(data, exist_ok=True)
        argv = ["node", os.path.join(work, "node_modules/.bin/s3rver"), "-d", data, "-p", str(self.s3_port),
                "-a", "127.0.0.1", "--configure-bucket", bucket, "--silent"]
        self.s3 = Proc(self, "s3rver", argv, os.environ.copy())
        self.procs.append(self.s3)
        self.s3.start()
        self.wait_s3()
        return {"ARTIFACT_STORE": f"s3://{bucket}/fault", "ARTIFACT_STORE_ENDPOINT": f"http://127.0.0.1:{self.s3_port}",
                "AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER", "ARTIFACT_STORE_TIMEOUT": "2s"}

    def wait_s3(self):
        def listening():
            try:
                socket.create_connection(("127.0.0.1", self.s3_port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(listening, 30, "s3rver", 0.1)

    # --- streamfleet processes ------------------------------------------------------------------------
    def env(self, **extra):
        e = os.environ.copy()
        e.update(REDIS_PORT=str(self.redis_port), LOG_LEVEL=os.environ.get("FAULT_LOG_LEVEL", "warn"), IR_CACHE_DIR=os.path.join(self.work, "cache"))
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def _proc(self, name, binary, env):
        mp = free_port()
        env = dict(env, METRICS_LISTEN=f"127.0.0.1:{mp}")
        p = Proc(self, name, [os.path.join(self.build, binary)], env, f"http://127.0.0.1:{mp}/healthz")
        p.metrics_port = mp
        self.procs.append(p)
        return p

    def ingest(self, env):
        port = free_port()
        p = self._proc("ingest", "ingest/streamfleet-ingest", dict(env, INGEST_LISTEN=f"127.0.0.1:{port}"))
        p.api = f"127.0.0.1:{port}"
        return p.start()

    def compactor(self, i, env):
        return self._proc(f"compactor{i}", "compactor/streamfleet-compactor", dict(env, CONSUMER_NAME=f"c{i}")).start()

    def worker(self, i, env):
        # The webhook receivers of the scenarios listen on loopback, which webhooks are refused by default.
        env = dict({"WEBHOOK_ALLOW_NETS": "127.0.0.0/8"}, **env, CONSUMER_NAME=f"w{i}")
        return self._proc(f"worker{i}", "queue-worker/streamfleet-queue-worker", env).start()

    def close(self):
        for p in self.procs + ([self.redis] if self.redis else []):
            try:
                p.kill9()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        if self.pg_dir and os.path.isdir(self.pg_dir):
            subprocess.run(["bash", os.path.join(self.root, "scripts/pg.sh"), "stop", self.pg_dir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def log_tails(self, lines=15):
        out = []
        for f in sorted(os.listdir(self.work)):
            if f.endswith(".log"):
                with open(os.path.join(self.work, f), "rb") as fh:
                    tail = fh.read().decode("utf-8", "replace").splitlines()[-lines:]
                out.append(f"--- {f}\n" + "\n".join(tail))
        return "\n".join(out)


class Killer:
    """SIGKILLs one random process of `procs` and starts it again at once, once per `interval` seconds of
    calls to maybe_tick() (from the main thread: see the module comment)."""

    def __init__(self, procs, interval=1.0, seed=1):
        self.procs, self.interval = procs, interval
        self.next_at = time.monotonic() + interval
        self.rng = random.Random(seed)
        self.kills = 0
        self.restarts = 0

    def tick(self):
        p = self.rng.choice(self.procs)
        p.kill9()
        self.kills += 1
        p.start(wait=False)
        self.restarts += 1

    def maybe_tick(self):
        if time.monotonic() >= self.next_at:
            self.next_at += self.interval
            self.tick()
