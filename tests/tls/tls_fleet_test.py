"""The fleet end to end over TLS (docs/deploy.md "Managed Redis"): redis-server with a TLS port only (no
plain-text port at all), the real ingest, compactor and queue-worker and streamfleetctl configured with a
rediss:// URL and the test's CA; once with server certificates only, once with mutual TLS (tls-auth-clients
yes, REDIS_TLS_CERT/KEY). Chunks become a byte-exact row, a live stream reads it, a task runs, and a Redis
restart in the middle is ridden out. A wrong CA is refused with the reason.

    tls_fleet_test.py BUILD_DIR
"""
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fault"))
sys.path.insert(0, os.path.join(ROOT, "tests", "live"))

from fleet import Fleet, Proc, free_port, post_json, wait_until  # noqa: E402
from sse_client import read_generation  # noqa: E402


class TlsRedis:
    def __init__(self, fleet, certs, mutual):
        self.fleet, self.certs, self.mutual = fleet, certs, mutual
        self.port = free_port()
        argv = ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
                "--tls-cert-file", f"{certs}/server.crt", "--tls-key-file", f"{certs}/server.key",
                "--tls-ca-cert-file", f"{certs}/ca.crt", "--tls-auth-clients", "yes" if mutual else "no",
                "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", fleet.work,
                "--logfile", os.path.join(fleet.work, "redis.log")]
        self.proc = Proc(fleet, "redis", argv, os.environ.copy())
        self.start()

    def cli(self, *args):
        tls = ["--tls", "--cacert", f"{self.certs}/ca.crt"]
        if self.mutual:
            tls += ["--cert", f"{self.certs}/client.crt", "--key", f"{self.certs}/client.key"]
        r = subprocess.run(["redis-cli", "-p", str(self.port), *tls, *map(str, args)], capture_output=True, text=True,
                           timeout=10)
        return r.stdout.strip()

    def start(self):
        self.proc.start()
        wait_until(lambda: self.cli("PING") == "PONG", 20, "redis-server --tls-port")

    def restart(self):
        self.proc.terminate()  # SIGTERM: the AOF is complete
        self.start()


def run(build, mutual):
    work = tempfile.mkdtemp(prefix="streamfleet-tls.")
    certs = os.path.join(work, "certs")
    subprocess.run(["bash", os.path.join(ROOT, "components/testing/scripts/make_test_certs.sh"), certs], check=True)
    fleet = Fleet(build, work, ROOT)
    try:
        redis = TlsRedis(fleet, certs, mutual)
        db = os.path.join(work, "fleet.db")
        tls_env = {"REDIS_URL": f"rediss://127.0.0.1:{redis.port}", "REDIS_TLS_CA": f"{certs}/ca.crt"}
        if mutual:
            tls_env.update(REDIS_TLS_CERT=f"{certs}/client.crt", REDIS_TLS_KEY=f"{certs}/client.key")
        env = fleet.env(DATABASE_URL=f"sqlite:{db}", GENERATION_IDLE_TIMEOUT="3s", **tls_env)
        ingest = fleet.ingest(env)
        fleet.compactor(1, env)
        fleet.worker(1, env)
        ctl = os.path.join(build, "tools/streamfleetctl")

        org, gen, n = 4, 960001, 30
        texts = [f"<{s} ünïcode \r\n>" for s in range(n)]
        for s in range(n // 2):
            assert post_json(ingest.api, f"/v1/orgs/{org}/generations/{gen}/chunks", {"seq": s, "data": texts[s]}) == 202
        redis.restart()  # mid-run: every process reconnects over TLS
        for s in range(n // 2, n):
            deadline = time.monotonic() + 20
            while post_json(ingest.api, f"/v1/orgs/{org}/generations/{gen}/chunks",
                       {"seq": s, "data": texts[s], "final": s == n - 1}) != 202:
                assert time.monotonic() < deadline, "ingest did not come back after the restart"
                time.sleep(0.2)

        def row():
            try:
                r = sqlite3.connect(db).execute("SELECT compacted FROM scenario_generations WHERE id = ?",
                                                (gen,)).fetchone()
            except sqlite3.OperationalError:
                return None
            return r and r[0] and base64.b64decode(r[0]).decode()
        wait_until(lambda: row() is not None, 30, "the row")
        assert row() == "".join(texts), "the row differs from the chunks"
        chunks, compacted, _ = read_generation(ingest.api, org, gen)
        assert "".join(t for _, t in chunks) == row() and compacted["chunk_count"] == n

        out = subprocess.run([ctl, "--json", "enqueue", "noop", "--payload", '{"over": "tls"}'], env=env,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        task = json.loads(out.stdout)["id"]

        def state():
            s = subprocess.run([ctl, "--json", "tasks", "show", task], env=env, capture_output=True, text=True,
                               timeout=30)
            return s.returncode == 0 and json.loads(s.stdout).get("state")
        wait_until(lambda: state() == "succeeded", 30, "the task over TLS")

        # A wrong CA: refused, and the reason says so.
        bad = dict(env, REDIS_TLS_CA=f"{certs}/other-ca.crt")
        out = subprocess.run([ctl, "streams"], env=bad, capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and "certificate verify failed" in (out.stdout + out.stderr), out
        if mutual:
            # Without the client certificate the server refuses the session.
            anon = {k: v for k, v in env.items() if k not in ("REDIS_TLS_CERT", "REDIS_TLS_KEY")}
            out = subprocess.run([ctl, "streams"], env=anon, capture_output=True, text=True, timeout=30)
            assert out.returncode != 0, "a client without a certificate was served"
        print(f"ok: fleet over TLS ({'mutual' if mutual else 'server certificate'}): {n} chunks across a Redis "
              f"restart, byte-exact row, live stream, task; wrong CA refused")
    except BaseException:
        print(fleet.log_tails(30), file=sys.stderr)
        raise
    finally:
        fleet.close()
        if 'redis' in locals():
            redis.proc.kill9()


def main():
    build = sys.argv[1]
    run(build, mutual=False)
    run(build, mutual=True)
    print("tls fleet tests passed")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
