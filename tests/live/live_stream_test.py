"""Live streams end to end on real servers (docs/live.md): redis-server, two ingest processes, a compactor,
SQLite. Subscribers read a generation through one ingest while a producer writes through the other, out of
order and with duplicates, while the compactor is SIGKILLed and restarted and while one subscriber is cut
off again and again and resumes with Last-Event-ID on either replica: every subscriber's text must equal the
row's `compacted` byte for byte, with no seq twice and none missing. Then: a generation served from its row
after its buffer is gone, the events route (filtered per organization, resumable), authorization across
organizations, the wait for a generation that has not started, and a reader that does not read.

    live_stream_test.py BUILD_DIR
"""
import base64
import hashlib
import hmac
import json
import os
import random
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fault"))
sys.path.insert(0, HERE)

from fleet import Fleet, http_status, post_json, wait_until  # noqa: E402
from sse_client import SseStream, read_generation  # noqa: E402

TOKENS = {1: "tok-org-1", 2: "tok-org-2"}


def post_chunk(api, org, gen, body, token):
    status = post_json(api, f"/v1/orgs/{org}/generations/{gen}/chunks", body, token)
    assert status == 202, status


def status_of(api, path, token=None, headers=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    return http_status(f"http://{api}{path}", headers=h, timeout=5)


class World:
    def __init__(self, build, work):
        self.fleet = Fleet(build, work, ROOT)
        self.fleet.start_redis()
        self.db = os.path.join(work, "live.db")
        self.env = self.fleet.env(
            DATABASE_URL=f"sqlite:{self.db}", GENERATION_IDLE_TIMEOUT="3s",
            INGEST_TOKENS=",".join(f"{o}:{t}" for o, t in TOKENS.items()),
            LIVE_CORS_ORIGINS="https://app.example", LIVE_START_WAIT="2s", LIVE_KEEPALIVE="1s", LIVE_MAX_BUFFERED_BYTES="65536", LIVE_SLOW_READER_TIMEOUT="1s")
        self.a = self.fleet.ingest(self.env)
        self.b = self.fleet.ingest(self.env)
        self.compactor = self.fleet.compactor(1, self.env)

    def row(self, gen):
        with sqlite3.connect(self.db, timeout=10) as c:
            r = c.execute("SELECT compacted, chunk_count FROM scenario_generations WHERE id = ?", (gen,)).fetchone()
        if r is None or r[0] is None:
            return None
        return base64.b64decode(r[0]).decode("utf-8"), r[1]

    def wait_row(self, gen, timeout=30):
        out = {}

        def have():
            try:
                out["row"] = self.row(gen)
            except sqlite3.OperationalError:  # the table is created by the compactor's migration
                return False
            return out["row"] is not None
        wait_until(have, timeout, f"the row of generation {gen}", 0.1)
        return out["row"]


def chunk_text(seq, rng):
    words = ["delta", "naïve", "🚀", "{\"k\": [1, 2]}", "line\r\nbreak", "tab\there", "data: not a field", ": nor a comment"]
    return f"<{seq}:" + " ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) + ">\n"


def test_subscribers_across_replicas_faults_and_reconnects(w):
    org, gen, n = 1, 910001, 300
    rng = random.Random(24)
    texts = {s: chunk_text(s, rng) for s in range(n)}
    results, errors = {}, []

    def subscriber(name, api, from_seq=None):
        try:
            if from_seq is None:
                results[name] = read_generation(api, org, gen, TOKENS[org])
            else:
                s = SseStream(api, f"/v1/orgs/{org}/generations/{gen}/stream?from_seq={from_seq}", TOKENS[org])
                chunks, compacted = [], None
                for event, eid, data in s.events():
                    if event == "chunk":
                        chunks.append((json.loads(data)["seq"], json.loads(data)["text"]))
                    elif event == "compacted":
                        compacted = json.loads(data)
                results[name] = (chunks, compacted, None)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(f"{name}: {e!r}")

    def cutter():
        # Cut off every 37 chunks; reconnects alternate between the two replicas.
        try:
            chunks, last, compacted, rounds = [], None, None, 0
            while compacted is None:
                api = (w.a, w.b)[rounds % 2].api
                got, compacted, last = read_generation(api, org, gen, TOKENS[org], last_event_id=last, stop_after=37)
                chunks += got
                rounds += 1
                assert rounds < 100, "never reached the end"
            results["cutter"] = (chunks, compacted, rounds)
        except Exception as e:  # noqa: BLE001
            errors.append(f"cutter: {e!r}")

    threads = [threading.Thread(target=subscriber, args=("early", w.a.api)),
               threading.Thread(target=cutter),
               threading.Thread(target=subscriber, args=("from_100", w.a.api, 100))]
    for t in threads:
        t.start()
    time.sleep(0.5)  # subscribed before the first chunk: they wait for it
    # Out of order (windows of 6 shuffled), with duplicates; the final chunk says the total.
    order = list(range(n))
    for i in range(0, n, 6):
        window = order[i:i + 6]
        rng.shuffle(window)
        order[i:i + 6] = window
    late = None
    for k, seq in enumerate(order):
        body = {"seq": seq, "data": texts[seq]}
        if seq == n - 1:
            body["final"] = True
        post_chunk(w.b.api, org, gen, body, TOKENS[org])
        if k % 10 == 3:
            post_chunk(w.b.api, org, gen, body, TOKENS[org])  # a producer retry: the same seq and data
        if k == 120:
            w.compactor.kill9()  # mid-stream; restarted below, it takes its pending entries back
        if k == 150:
            w.compactor.start()
            late = threading.Thread(target=subscriber, args=("late", w.a.api))
            late.start()
        time.sleep(0.004)
    for t in threads + [late]:
        t.join(90)
        assert not t.is_alive(), "a subscriber did not finish"
    assert not errors, errors
    row_text, row_count = w.wait_row(gen)
    assert row_text == "".join(texts[s] for s in range(n))
    for name in ("early", "late", "cutter"):
        chunks, compacted, _ = results[name]
        seqs = [s for s, _ in chunks]
        assert seqs == list(range(n)), f"{name}: seqs out of order, missing or twice: {seqs[:20]}..."
        assert "".join(t for _, t in chunks) == row_text, f"{name}: text differs from the row"
        assert compacted["chunk_count"] == row_count and compacted["trigger"] == "complete", compacted
    chunks, compacted, _ = results["from_100"]
    assert [s for s, _ in chunks] == list(range(100, n)), "from_seq=100 must start at 100"
    print(f"ok: 4 subscribers, {n} chunks out of order with duplicates, compactor SIGKILLed, "
          f"cutter resumed {results['cutter'][2]} times across replicas")
    # The end: an EventSource reconnecting after `compacted` is told there is nothing more.
    assert status_of(w.a.api, f"/v1/orgs/{org}/generations/{gen}/stream", TOKENS[org], {"Last-Event-ID": "end"}) == 204
    return gen


def test_served_from_the_row_once_the_buffer_is_gone(w):
    org, gen = 1, 910002
    for s, t in enumerate(["{\"answer\": ", "42", "}"]):
        post_chunk(w.a.api, org, gen, {"seq": s, "data": t, "final": s == 2}, TOKENS[org])
    row_text, _ = w.wait_row(gen)
    keys = w.fleet.redis_cli("--scan", "--pattern", f"*generation:{gen}:*").split()
    assert keys, "no buffer keys"
    w.fleet.redis_cli("DEL", *keys)
    s = SseStream(w.b.api, f"/v1/orgs/{org}/generations/{gen}/stream", TOKENS[org])
    got = [(e, json.loads(d)) for e, _, d in s.events()]
    assert [e for e, _ in got] == ["text", "compacted"], got
    # The first (here the only) piece of the row's text replaces whatever the client has.
    assert got[0][1] == {"text": row_text, "replaces": True} and got[1][1]["json_valid"] is True, got
    s = SseStream(w.b.api, f"/v1/orgs/{org}/generations/{gen}/stream", TOKENS[org], last_event_id=0)
    got = [(e, json.loads(d)) for e, _, d in s.events()]
    assert got[0] == ("text", {"text": row_text, "replaces": True}), got
    print("ok: a compacted generation without its buffer is served from its row")


def test_events_route_per_organization(w, gen1):
    org2_gen = 920001
    post_chunk(w.a.api, 2, org2_gen, {"data": "org two", "final": True}, TOKENS[2])
    w.wait_row(org2_gen)
    # Organization 1 from the start of the retention window: its own generations' lifecycle, in order.
    s = SseStream(w.b.api, "/v1/orgs/1/events?after=0", TOKENS[1], timeout=5)
    seen = []
    try:
        for event, eid, data in s.events():
            d = json.loads(data)
            assert d["organization_id"] == 1 and d["type"] == event and d["event_id"] == eid, d
            seen.append((event, d["generation_id"], eid))
            if (event, d["generation_id"]) == ("generation.compacted", 910002):
                break
    finally:
        s.close()
    assert ("generation.started", gen1) in [(e, g) for e, g, _ in seen], seen
    assert ("generation.compacted", gen1) in [(e, g) for e, g, _ in seen], seen
    # Resumed after the first event: the rest, without it.
    s = SseStream(w.a.api, "/v1/orgs/1/events", TOKENS[1], last_event_id=seen[0][2], timeout=5)
    again = []
    try:
        for event, eid, data in s.events():
            again.append(eid)
            if eid == seen[-1][2]:
                break
    finally:
        s.close()
    assert again == [eid for _, _, eid in seen[1:]], (again, seen)
    # Organization 2 sees only its own.
    s = SseStream(w.a.api, "/v1/orgs/2/events?after=0", TOKENS[2], timeout=5)
    try:
        for event, eid, data in s.events():
            d = json.loads(data)
            assert d["organization_id"] == 2, d
            if event == "generation.compacted":
                assert d["generation_id"] == org2_gen
                break
    finally:
        s.close()
    # Live: a new generation's events arrive on an open stream.
    s = SseStream(w.a.api, "/v1/orgs/1/events", TOKENS[1], timeout=10)
    post_chunk(w.b.api, 1, 910003, {"data": "x", "final": True}, TOKENS[1])
    live = []
    try:
        for event, eid, data in s.events():
            live.append((event, json.loads(data)["generation_id"]))
            if event == "generation.compacted":
                break
    finally:
        s.close()
    assert live == [("generation.started", 910003), ("generation.compacted", 910003)], live
    print("ok: events route filtered per organization, resumed with Last-Event-ID, live")


def test_authorization_and_bad_requests(w, gen1):
    path = f"/v1/orgs/1/generations/{gen1}/stream"
    assert status_of(w.a.api, path) == 401
    assert status_of(w.a.api, path, TOKENS[2]) == 403
    assert status_of(w.a.api, f"/v1/orgs/2/generations/{gen1}/stream", TOKENS[2]) == 404, "another org's id"
    assert status_of(w.a.api, "/v1/orgs/1/events", TOKENS[2]) == 403
    assert status_of(w.a.api, "/v1/orgs/1/events") == 401
    assert status_of(w.a.api, path, TOKENS[1], {"Last-Event-ID": "-3"}) == 400
    assert status_of(w.a.api, path + "?from_seq=x", TOKENS[1]) == 400
    assert status_of(w.a.api, "/v1/orgs/1/events?after=1-2-3", TOKENS[1]) == 400
    assert status_of(w.a.api, "/v1/orgs/x/generations/1/stream", TOKENS[1]) == 400
    req = urllib.request.Request(f"http://{w.a.api}{path}", method="POST", data=b"{}",
                                 headers={"Authorization": f"Bearer {TOKENS[1]}", "Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("POST on a stream route was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 405
    print("ok: 401/403/404 across organizations, 400 for bad ids and resume points, 405")


def signed(path, token, exp):
    """A signed stream link, as an app's backend makes it for a browser (docs/live.md)."""
    sig = hmac.new(token.encode(), f"GET\n{path}\n{exp}".encode(), hashlib.sha256).hexdigest()
    return f"{path}?exp={exp}&sig={sig}"


def test_signed_links_for_browsers(w, gen1):
    path = f"/v1/orgs/1/generations/{gen1}/stream"
    exp = int(time.time()) + 60
    link = signed(path, TOKENS[1], exp)
    s = SseStream(w.a.api, link)  # no Authorization header: an EventSource cannot send one
    assert s.status == 200
    kinds = [e for e, _, _ in s.events()]
    assert kinds.count("chunk") == 300 and kinds[-1] == "compacted", kinds[-3:]
    req = urllib.request.Request(f"http://{w.a.api}{link}", headers={"Origin": "https://app.example"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["Access-Control-Allow-Origin"] == "https://app.example", dict(r.headers)
        r.read()
    req = urllib.request.Request(f"http://{w.a.api}{link}", headers={"Origin": "https://evil.example"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["Access-Control-Allow-Origin"] is None, "an origin that is not allowed got CORS"
        r.read()
    other = f"/v1/orgs/1/generations/{gen1 + 1}/stream"
    assert status_of(w.a.api, other + link[len(path):]) == 403, "a link is good for its own path only"
    assert status_of(w.a.api, signed(path, TOKENS[1], int(time.time()) - 5)) == 403, "expired"
    assert status_of(w.a.api, signed(path, TOKENS[2], exp)) == 403, "signed with another org's token"
    assert status_of(w.a.api, signed("/v1/orgs/1/events", TOKENS[1], exp).replace("sig=", "sig=0")) == 400
    # The signature covers the path: the other parameters (after=, from_seq=) stay the client's.
    s = SseStream(w.a.api, signed("/v1/orgs/1/events", TOKENS[1], exp) + "&after=0", timeout=5)
    assert s.status == 200
    first = next(s.events())
    s.close()
    assert json.loads(first[2])["organization_id"] == 1, first
    assert status_of(w.a.api, signed("/v1/orgs/2/events", TOKENS[1], exp)) == 403, "org 1's token signs no org 2 link"
    print("ok: signed links (path-bound, expiring, per organization) and CORS for allowed origins")


def test_waits_for_a_generation_that_has_not_started(w):
    org, gen = 1, 910004
    box = {}

    def reader():
        box["r"] = read_generation(w.a.api, org, gen, TOKENS[org])
    t = threading.Thread(target=reader)
    t.start()
    time.sleep(1.0)  # within LIVE_START_WAIT (2 s)
    post_chunk(w.b.api, org, gen, {"data": "late start", "final": True}, TOKENS[org])
    t.join(30)
    chunks, compacted, _ = box["r"]
    assert chunks == [(0, "late start")] and compacted["chunk_count"] == 1, box
    # Never started: keep-alives while waiting, then a closing event (not_found) and the end.
    s = SseStream(w.a.api, f"/v1/orgs/{org}/generations/910099/stream", TOKENS[org])
    got = [(e, json.loads(d)) for e, _, d in s.events()]
    assert got and got[-1][0] == "closing" and got[-1][1]["reason"] == "not_found", got
    assert s.comments >= 1, "no keep-alive comment while waiting"
    print("ok: waits for a generation's first chunk; an unknown one ends with not_found")


def metric(proc, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.metrics_port}/metrics", timeout=5) as r:
        total = 0.0
        for line in r.read().decode().splitlines():
            if line.startswith(name):
                total += float(line.rsplit(" ", 1)[1])
        return total


def rss_mb(proc):
    with open(f"/proc/{proc.popen.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def test_a_reader_that_does_not_read_is_closed(w):
    org, gen = 1, 910005
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = w.a.api.split(":")
    sock.connect((host, int(port)))
    sock.sendall(f"GET /v1/orgs/{org}/generations/{gen}/stream HTTP/1.1\r\nHost: t\r\n"
                 f"Authorization: Bearer {TOKENS[org]}\r\n\r\n".encode())
    before = metric(w.a, 'streamfleet_ingest_live_closed_total{reason="slow_reader"}')
    piece = "x" * 60000
    for s in range(150):  # 9 MB for a client that reads nothing
        post_chunk(w.b.api, org, gen, {"seq": s, "data": piece}, TOKENS[org])
    wait_until(lambda: metric(w.a, 'streamfleet_ingest_live_closed_total{reason="slow_reader"}') > before, 20,
               "the slow reader closed")
    assert rss_mb(w.a) < 200, f"ingest RSS {rss_mb(w.a)} MB"
    sock.settimeout(10)
    data = b""
    while True:
        part = sock.recv(1 << 20)
        if not part:
            break
        data += part
    assert b"event: closing" in data[-4096:] and b"slow_reader" in data[-4096:], data[-300:]
    print(f"ok: a reader that does not read is closed with a reason (ingest RSS {rss_mb(w.a):.0f} MB)")


def main():
    build = sys.argv[1]
    work = tempfile.mkdtemp(prefix="streamfleet-live.")
    w = World(build, work)
    try:
        gen1 = test_subscribers_across_replicas_faults_and_reconnects(w)
        test_served_from_the_row_once_the_buffer_is_gone(w)
        test_events_route_per_organization(w, gen1)
        test_authorization_and_bad_requests(w, gen1)
        test_signed_links_for_browsers(w, gen1)
        test_waits_for_a_generation_that_has_not_started(w)
        test_a_reader_that_does_not_read_is_closed(w)
    except BaseException:
        print(w.fleet.log_tails(30), file=sys.stderr)
        raise
    finally:
        w.fleet.close()
    print("live stream tests passed")


if __name__ == "__main__":
    main()
