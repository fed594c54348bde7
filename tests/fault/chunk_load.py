"""Generations of chunks: the plan (what is sent), the concurrent poster, and the byte-exact check.

A plan is deterministic from its seed. Chunk text mixes ASCII, JSON escapes and 2-, 3- and 4-byte UTF-8;
sizes are mostly small, some a few KB, and some exactly 64 KiB. A generation is either complete (seqs 0..49,
the last one "final": true) or left open (seqs 0..k-1, never finished: the compactors' idle timeout must
finalize exactly what was sent). Each generation's seqs are shuffled and cut into requests of 1-4 chunks
(single JSON or NDJSON); all requests of all generations are shuffled together and posted by several
threads on keep-alive connections, so chunks of one generation arrive out of order, through different
connections, at different compactors.
"""
import base64
import http.client
import json
import random
import threading
import time

ALPHABET = list("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789.,;") + \
    ["é", "ü", "ß", "ñ", "中", "文", "字", "€", "😀", "🚀", "🧪", '"', "\\", "\n", "\t", "/", "<", "{"]
SIXTY_FOUR_KB = 64 * 1024


class Plan:
    def __init__(self, org, generations, seed, chunks_per_gen=50, open_share=0.1, big_share=0.005,
                 first_gen=1):
        rng = random.Random(seed)
        pool = "".join(rng.choices(ALPHABET, k=1 << 20))
        self.org = org
        self.gens = {}      # gen -> list of chunk bytes (what must come out, in seq order)
        self.open = set()   # generations never finished
        self.big_chunks = 0
        self.large_chunks = 0  # >= 1 KiB: compressed by ingest (CHUNK_COMPRESSION_MIN_BYTES) when it pays
        for g in range(first_gen, first_gen + generations):
            is_open = rng.random() < open_share
            n = rng.randint(1, chunks_per_gen - 1) if is_open else chunks_per_gen
            chunks = []
            for _ in range(n):
                r = rng.random()
                size = SIXTY_FOUR_KB if r < big_share else (rng.randint(200, 4000) if r < 0.3 else rng.randint(1, 200))
                self.big_chunks += size == SIXTY_FOUR_KB
                self.large_chunks += size >= 1024
                chunks.append(_text_of_bytes(pool, rng, size))
            self.gens[g] = chunks
            if is_open:
                self.open.add(g)
        self.requests = []  # (gen, [seqs])
        for g, chunks in self.gens.items():
            seqs = list(range(len(chunks)))
            rng.shuffle(seqs)
            while seqs:
                k = rng.randint(1, 4)
                self.requests.append((g, seqs[:k]))
                seqs = seqs[k:]
        rng.shuffle(self.requests)

    def chunk_count(self):
        return sum(len(c) for c in self.gens.values())

    def byte_count(self):
        return sum(len(x) for c in self.gens.values() for x in c)

    def body(self, g, seqs):
        last = len(self.gens[g]) - 1
        objs = [{"seq": s, "data": self.gens[g][s].decode("utf-8"),
                 "final": g not in self.open and s == last} for s in seqs]
        if len(objs) == 1:
            return "application/json", json.dumps(objs[0], ensure_ascii=False).encode("utf-8")
        lines = "\n".join(json.dumps(o, ensure_ascii=False) for o in objs) + "\n"
        return "application/x-ndjson", lines.encode("utf-8")

    def expected(self, g):
        return b"".join(self.gens[g])


def _text_of_bytes(pool, rng, size):
    """Exactly `size` bytes of valid UTF-8 from the pool (a cut multi-byte char is padded with ASCII)."""
    off = rng.randrange(0, len(pool) - size)
    b = pool[off:off + size].encode("utf-8")[:size].decode("utf-8", "ignore").encode("utf-8")
    return b + b"x" * (size - len(b))


class Poster:
    """Posts a plan's requests with `threads` keep-alive connections. 202 acknowledges every chunk of the
    request (its time is kept per chunk); 503 (backpressure, Redis down) and connection errors are retried
    after a pause: the seqs are the client's, so a retry of a request that did land is deduplicated.
    Anything else is an error the suite fails on."""

    def __init__(self, plan, api, threads=8, deadline_s=600):
        self.plan, self.api, self.threads = plan, api, threads
        self.deadline = time.monotonic() + deadline_s
        self.acked_at = {}       # (gen, seq) -> wall time of the 202
        self.retries = 0
        self.errors = []
        self._next = 0
        self._lock = threading.Lock()

    def run(self):
        ts = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return self

    def _take(self):
        with self._lock:
            if self._next >= len(self.plan.requests) or self.errors:
                return None
            r = self.plan.requests[self._next]
            self._next += 1
            return r

    def _worker(self):
        host, port = self.api.split(":")
        conn = None
        while (req := self._take()) is not None:
            g, seqs = req
            ctype, body = self.plan.body(g, seqs)
            path = f"/v1/orgs/{self.plan.org}/generations/{g}/chunks"
            while True:
                if time.monotonic() > self.deadline:
                    self.errors.append(f"deadline passed posting generation {g}")
                    return
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(host, int(port), timeout=30)
                    conn.request("POST", path, body, {"Content-Type": ctype})
                    resp = conn.getresponse()
                    answer = resp.read()
                    status = resp.status
                except (OSError, http.client.HTTPException):
                    conn = None
                    status = None
                if status == 202:
                    now = time.time()
                    with self._lock:
                        for s in seqs:
                            self.acked_at[(g, s)] = now
                    break
                if status not in (None, 503):
                    with self._lock:
                        self.errors.append(f"generation {g} seqs {seqs}: HTTP {status} {answer[:200]!r}")
                    return
                with self._lock:
                    self.retries += 1
                time.sleep(0.2)


class Rows:
    """Reads scenario_generations from SQLite (python's sqlite3, read-only) or PostgreSQL (psql).
    summary(): id -> (chunk_count, length of compacted) for polling; full(): id -> (chunk_count,
    compacted, metadata, rows with that id) for the verdict. A row whose text is in the object store
    (compacted NULL, metadata.artifact: docs/storage.md) counts the base64 length of the text it names, and
    full() reads the text through `resolve(org, gen)` (streamfleetctl show-generation), as users do."""

    def __init__(self, database_url, resolve=None):
        self.url = database_url
        self.resolve = resolve
        self.in_store = 0  # rows full() found with their text in the object store

    def summary(self, org):
        return {r[0]: (int(r[1] or 0), int(r[2] or 0) or b64_len(_artifact_bytes(r[3]))) for r in self._query(
            "SELECT id, chunk_count, length(compacted), CASE WHEN compacted IS NULL THEN metadata END "
            "FROM scenario_generations WHERE organization_id = %d" % org)}

    def full(self, org):
        rows = {r[0]: (int(r[1] or 0), r[2], r[3], int(r[4])) for r in self._query(
            "SELECT id, chunk_count, compacted, metadata, (SELECT COUNT(*) FROM scenario_generations s2 "
            "WHERE s2.id = s.id) FROM scenario_generations s WHERE organization_id = %d" % org)}
        self.in_store = 0
        for g, (count, b64, meta, n) in rows.items():
            if not b64 and _artifact_bytes(meta) and self.resolve:
                self.in_store += 1
                rows[g] = (count, self.resolve(org, g), meta, n)
        return rows

    def _query(self, sql):
        if self.url.startswith("sqlite:"):
            import sqlite3
            try:
                db = sqlite3.connect(f"file:{self.url[len('sqlite:'):]}?mode=ro", uri=True, timeout=5)
                try:
                    return [tuple(r) for r in db.execute(sql)]
                finally:
                    db.close()
            except sqlite3.Error:
                return []
        import subprocess
        r = subprocess.run(["psql", self.url, "-AtX", "-F", "\x1f", "-c", sql], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            return []
        out = []
        for line in r.stdout.splitlines():
            f = line.split("\x1f")
            out.append((int(f[0]), *f[1:]))
        return out


def b64_len(n):
    return 4 * ((n + 2) // 3)


class Verdict:
    """Compares rows with the plan. `tolerated(g, missing_seqs)` may excuse missing chunks (the Redis AOF
    window); everything else missing, extra or different is counted and fails the scenario."""

    def __init__(self, plan, rows, tolerated=None):
        self.ok_gens = 0
        self.lost_chunks = 0
        self.duplicated_chunks = 0
        self.bad = []              # (gen, reason)
        self.tolerated_gens = []   # (gen, missing seqs)
        self.triggers = {}
        for g in plan.gens:
            want = plan.gens[g]
            row = rows.get(g)
            if row is None:
                missing = list(range(len(want)))
            else:
                count, b64, meta, n_rows = row
                got = base64.b64decode(b64 or "")
                trig = _trigger(meta)
                self.triggers[trig] = self.triggers.get(trig, 0) + 1
                if n_rows != 1:
                    self.bad.append((g, f"{n_rows} rows"))
                    continue
                if got == plan.expected(g) and count == len(want):
                    self.ok_gens += 1
                    continue
                missing = _missing_prefix_analysis(want, got, count)
                if missing is None:
                    self.duplicated_chunks += max(0, count - len(want))
                    self.bad.append((g, f"content differs: {len(got)} bytes / chunk_count {count}, "
                                        f"want {len(plan.expected(g))} / {len(want)}"))
                    continue
            if tolerated and tolerated(g, missing):
                self.tolerated_gens.append((g, missing))
            else:
                self.lost_chunks += len(missing)
                self.bad.append((g, f"missing seqs {missing[:10]}{'...' if len(missing) > 10 else ''}"))

    def ok(self):
        return not self.bad


def _artifact_bytes(meta):
    """The text size metadata.artifact names, 0 without one."""
    try:
        a = json.loads(meta or "{}").get("artifact") or {}
        return int(a.get("bytes", 0))
    except (ValueError, AttributeError, TypeError):
        return 0


def _trigger(meta):
    try:
        return json.loads(meta or "{}").get("finalize_trigger", "?")
    except ValueError:
        return "?"


def _missing_prefix_analysis(want, got, count):
    """If `got` is exactly `want` with some chunks left out (in order), the missing seqs; else None."""
    missing, pos = [], 0
    for s, c in enumerate(want):
        if got.startswith(c, pos) and (len(c) > 0):
            # Greedy match; ambiguous only for chunks that repeat bytes of their neighbours, which random
            # text of this plan makes vanishingly unlikely.
            pos += len(c)
        else:
            missing.append(s)
    if pos != len(got) or len(want) - len(missing) != count:
        return None
    return missing
