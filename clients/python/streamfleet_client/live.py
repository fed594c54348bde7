"""Signed live-stream links for browsers (docs/live.md, "Signed links").

An `EventSource` cannot send an `Authorization` header and an organization's token must not reach a browser, so
the app's backend signs the path of one stream with an expiry and hands the page the link:

    <path>?exp=<unix seconds>&sig=<lowercase hex HMAC-SHA256(org token, "GET\\n" + path + "\\n" + exp)>

ingest (components/live signed_link.cc) accepts it for that path only, until `exp`; 403 when expired or forged.

    from streamfleet_client.live import signed_generation_stream_link
    url = signed_generation_stream_link(token, org, gen, base_url="https://ingest.example.com")
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Optional, Union

DEFAULT_TTL_S = 600
# Ids as ingest parses them (ParseId in components/chunks request_parsing.cc): 1 to 18 decimal digits, > 0.
MAX_ID = 10**18 - 1
# ingest refuses an `exp` of more than 12 digits as malformed (400).
MAX_EXP = 10**12 - 1

_ID = r"[1-9][0-9]{0,17}"
_STREAM_PATH = re.compile(rf"/v1/orgs/{_ID}/generations/{_ID}/stream|/v1/orgs/{_ID}/events")
_BASE_URL = re.compile(r"(https?://[^/?#\s]+)?(/[^?#\s]*)?", re.IGNORECASE)

Id = Union[int, str]


def _check_id(name: str, value: Id) -> str:
    """A positive integer id (an int, or its decimal digits as a str) as it goes into the path."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(value, str):
        if re.fullmatch(_ID, value) is None:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
        value = int(value)
    if not 0 < value <= MAX_ID:
        raise ValueError(f"{name} must be a positive integer of at most 18 digits, got {value!r}")
    return str(value)


def generation_stream_path(org: Id, gen: Id) -> str:
    """`/v1/orgs/{org}/generations/{gen}/stream`; ValueError unless both are positive integers."""
    return f"/v1/orgs/{_check_id('org', org)}/generations/{_check_id('gen', gen)}/stream"


def events_path(org: Id) -> str:
    """`/v1/orgs/{org}/events`; ValueError unless org is a positive integer."""
    return f"/v1/orgs/{_check_id('org', org)}/events"


def link_signature(token: str, path: str, exp: int) -> str:
    """Lowercase hex HMAC-SHA256(token, "GET\\n" + path + "\\n" + exp): the `sig` of a link to `path` until `exp`."""
    if not isinstance(token, str) or not token:
        raise ValueError("token must be the organization's ingest token (INGEST_TOKENS), a non-empty str")
    return hmac.new(token.encode(), f"GET\n{path}\n{exp}".encode(), hashlib.sha256).hexdigest()


def signed_stream_link(token: str, path: str, ttl_s: int = DEFAULT_TTL_S, base_url: str = "",
                       now: Optional[float] = None) -> str:
    """A link to one live stream that a browser may open without a token, good for `ttl_s` seconds.

    token:    the organization's token (its INGEST_TOKENS entry); it signs the link and never leaves the backend.
    path:     `/v1/orgs/{org}/generations/{gen}/stream` or `/v1/orgs/{org}/events`, without a query
              (generation_stream_path / events_path make them).
    ttl_s:    seconds the link stays good (a positive int; default 600). An EventSource reconnects with the same
              link, so the stream must end before the link expires or the page asks for a new one.
    base_url: put before the path: "" for a link relative to the page's origin (an ingress route on the app's
              own domain), or "https://ingest.example.com" (a trailing "/" is dropped), optionally with a path
              prefix that a proxy strips before ingest: the signature covers only the path ingest sees.
    now:      unix seconds to count from (default time.time()).

    Returns `{base_url}{path}?exp=...&sig=...`; the client may append its own parameters (`&from_seq=N`,
    `&after=0`), which the signature does not cover. ValueError for anything else.
    """
    if not isinstance(path, str) or _STREAM_PATH.fullmatch(path) is None:
        raise ValueError("path must be /v1/orgs/{org}/generations/{gen}/stream or /v1/orgs/{org}/events with "
                         f"positive integer ids of at most 18 digits and no query, got {path!r}")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s <= 0:
        raise ValueError(f"ttl_s must be a positive int (seconds), got {ttl_s!r}")
    if not isinstance(base_url, str) or _BASE_URL.fullmatch(base_url) is None:
        raise ValueError(f"base_url must be \"\", http(s)://host[:port][/prefix] or /prefix, got {base_url!r}")
    if now is None:
        now = time.time()
    elif isinstance(now, bool) or not isinstance(now, (int, float)) or not 0 <= now <= MAX_EXP:
        raise ValueError(f"now must be unix seconds (not milliseconds), got {now!r}")
    exp = int(now) + ttl_s
    if exp > MAX_EXP:
        raise ValueError(f"ttl_s too large: the link would expire at {exp}, beyond what ingest accepts (12 digits)")
    return f"{base_url.rstrip('/')}{path}?exp={exp}&sig={link_signature(token, path, exp)}"


def signed_generation_stream_link(token: str, org: Id, gen: Id, ttl_s: int = DEFAULT_TTL_S, base_url: str = "",
                                  now: Optional[float] = None) -> str:
    """A signed link to generation `gen`'s stream of organization `org` (signed_stream_link's arguments)."""
    return signed_stream_link(token, generation_stream_path(org, gen), ttl_s, base_url, now)


def signed_events_link(token: str, org: Id, ttl_s: int = DEFAULT_TTL_S, base_url: str = "",
                       now: Optional[float] = None) -> str:
    """A signed link to organization `org`'s events stream (signed_stream_link's arguments)."""
    return signed_stream_link(token, events_path(org), ttl_s, base_url, now)
