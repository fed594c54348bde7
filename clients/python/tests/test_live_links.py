"""Signed live-stream links (streamfleet_client.live): the signature against a known vector and the argument
checks without servers; then links made here against a real streamfleet-ingest, which
tests/clients/python_client_test.sh starts and passes as STREAMFLEET_TEST_INGEST_URL, with the organization
and token of its INGEST_TOKENS in STREAMFLEET_TEST_INGEST_ORG and STREAMFLEET_TEST_INGEST_TOKEN.
"""
from __future__ import annotations

import json
import os
import time
import unittest
import urllib.error
import urllib.request
from typing import Dict, Tuple

from streamfleet_client import live, signed_events_link, signed_generation_stream_link, signed_stream_link

VECTOR_SIG = "cbb3e6d4743bb856e33e0362fe2215e154581b7c710a47be4330837e9dee3358"


class SignedLinkTest(unittest.TestCase):
    def test_known_vector(self) -> None:
        # HMAC-SHA256("tok-org-1", "GET\n/v1/orgs/1/generations/7/stream\n1800000000"), as ingest computes it.
        path = "/v1/orgs/1/generations/7/stream"
        self.assertEqual(live.link_signature("tok-org-1", path, 1800000000), VECTOR_SIG)
        want = f"{path}?exp=1800000000&sig={VECTOR_SIG}"
        self.assertEqual(signed_stream_link("tok-org-1", path, ttl_s=600, now=1799999400), want)
        self.assertEqual(signed_generation_stream_link("tok-org-1", 1, 7, now=1799999400.9), want)  # 600 s default
        self.assertEqual(signed_generation_stream_link("tok-org-1", "1", "7", ttl_s=1, now=1799999999), want)
        self.assertEqual(signed_generation_stream_link("tok-org-1", 1, 7, base_url="https://in.example/sf/",
                                                       now=1799999400), "https://in.example/sf" + want)

    def test_events_link(self) -> None:
        link = signed_events_link("t", 42, ttl_s=60, base_url="http://127.0.0.1:8080", now=1000)
        self.assertEqual(link, "http://127.0.0.1:8080/v1/orgs/42/events?exp=1060&sig="
                         + live.link_signature("t", "/v1/orgs/42/events", 1060))

    def test_expiry_counts_from_now(self) -> None:
        before = int(time.time())
        link = signed_events_link("t", 1, ttl_s=30)
        exp = int(link.split("exp=")[1].split("&")[0])
        self.assertTrue(before + 30 <= exp <= int(time.time()) + 30, link)

    def test_invalid_arguments(self) -> None:
        bad_ids = [0, -1, 10**18, True, 1.0, None, "", "01", "+1", " 1", "1x", "x"]
        for bad in bad_ids:
            with self.subTest(org=bad), self.assertRaisesRegex(ValueError, "org must be a positive integer"):
                signed_events_link("t", bad)  # type: ignore[arg-type]
            with self.subTest(gen=bad), self.assertRaisesRegex(ValueError, "gen must be a positive integer"):
                signed_generation_stream_link("t", 1, bad)  # type: ignore[arg-type]
        self.assertIn("/999999999999999999/", signed_generation_stream_link("t", 1, 10**18 - 1))
        for ttl in (0, -5, 1.5, "600", True, None):
            with self.subTest(ttl=ttl), self.assertRaisesRegex(ValueError, "ttl_s must be a positive int"):
                signed_events_link("t", 1, ttl_s=ttl)  # type: ignore[arg-type]
        for token in ("", None, b"tok"):
            with self.subTest(token=token), self.assertRaisesRegex(ValueError, "token"):
                signed_events_link(token, 1)  # type: ignore[arg-type]
        for path in ("/v1/orgs/1/events?after=0", "v1/orgs/1/events", "/v1/orgs/0/events", "/v1/orgs/1/generations/7",
                     "/v1/orgs/1/generations/7/chunks", "http://h/v1/orgs/1/events", "/v1/orgs/1/events/"):
            with self.subTest(path=path), self.assertRaisesRegex(ValueError, "path must be"):
                signed_stream_link("t", path)
        for base in ("ingest:8080", "http://h/x?y=1", "ftp://h", "http://h/#x"):
            with self.subTest(base=base), self.assertRaisesRegex(ValueError, "base_url"):
                signed_events_link("t", 1, base_url=base)
        for now in (time.time() * 1000, -1, float("nan"), float("inf"), "1800000000"):
            with self.subTest(now=now), self.assertRaisesRegex(ValueError, "now must be unix seconds"):
                signed_events_link("t", 1, now=now)  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "ttl_s too large"):
            signed_events_link("t", 1, ttl_s=10**12)


def env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        raise RuntimeError(f"{name} is not set: run tests/clients/python_client_test.sh BUILD_DIR")
    return v


def get(url: str, headers: Dict[str, str] = {}) -> Tuple[int, str, bytes]:  # noqa: B006 - never mutated
    """GETs url: (status, Content-Type, the start of the body: "retry: 1000" of an event stream), then closes."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read(len(b"retry: 1000"))
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


class SignedLinkAgainstIngestTest(unittest.TestCase):
    url = org = token = ""

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = env("STREAMFLEET_TEST_INGEST_URL")
        cls.org = env("STREAMFLEET_TEST_INGEST_ORG")
        cls.token = env("STREAMFLEET_TEST_INGEST_TOKEN")

    def post_chunk(self, gen: int) -> None:
        """One chunk with the bearer token (the producer's side), so the generation's stream has begun."""
        req = urllib.request.Request(f"{self.url}/v1/orgs/{self.org}/generations/{gen}/chunks", method="POST",
                                     data=json.dumps({"seq": 0, "data": "hello"}).encode(),
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 202)

    def test_a_link_opens_the_generation_stream(self) -> None:
        gen = 500000 + int(time.time() * 1000) % 100000
        self.post_chunk(gen)
        link = signed_generation_stream_link(self.token, int(self.org), gen, ttl_s=60, base_url=self.url + "/")
        status, ctype, start = get(link)  # no Authorization header: an EventSource cannot send one
        self.assertEqual((status, start), (200, b"retry: 1000"), link)
        self.assertTrue(ctype.startswith("text/event-stream"), ctype)
        # The same signature on another generation's path, and an expired link: 403.
        query = link[link.index("?"):]
        other = f"{self.url}{live.generation_stream_path(self.org, gen + 1)}{query}"
        status, _, body = get(other)
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["error"], "forbidden")
        expired = signed_generation_stream_link(self.token, self.org, gen, ttl_s=60, base_url=self.url,
                                                now=time.time() - 120)
        status, _, body = get(expired)
        self.assertEqual(status, 403, body)
        self.assertIn("expired", json.loads(body)["detail"])
        # Signed with a token that is not the organization's.
        status, _, _ = get(signed_generation_stream_link(self.token + "x", self.org, gen, base_url=self.url))
        self.assertEqual(status, 403)

    def test_a_link_opens_the_events_stream(self) -> None:
        link = signed_events_link(self.token, self.org, ttl_s=60, base_url=self.url)
        status, ctype, start = get(link + "&after=0")  # the client's own parameters are not signed
        self.assertEqual((status, start), (200, b"retry: 1000"), link)
        self.assertTrue(ctype.startswith("text/event-stream"), ctype)


if __name__ == "__main__":
    unittest.main()
