"""Verify a streamfleet push-handler request (docs/push-handlers.md). Copy this file into your app.

The worker signs every request with TASK_SIGNING_SECRET:
    X-Streamfleet-Timestamp: <unix seconds>
    X-Streamfleet-Signature: v1=<lowercase hex HMAC-SHA256(secret, timestamp + "." + raw body)>
Pass the raw request body (bytes, exactly as received: before any JSON parsing).
Stdlib only; tested by examples/push-handlers/test_verify.sh.
"""
from __future__ import annotations

import hashlib
import hmac
import time


def verify(secret: bytes | str, timestamp_header: str | None, signature_header: str | None, raw_body: bytes,
           now: float | None = None, tolerance_s: int = 300) -> bool:
    """True when the signature is right and the timestamp is within tolerance_s of now (replay protection)."""
    if not secret or not timestamp_header or not signature_header or raw_body is None:
        return False
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if isinstance(raw_body, str):
        raw_body = raw_body.encode("utf-8")
    timestamp_header = timestamp_header.strip()
    if not (timestamp_header.isascii() and timestamp_header.isdigit()) or len(timestamp_header) > 12:
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp_header)) > tolerance_s:
        return False
    expected = "v1=" + hmac.new(secret, timestamp_header.encode("ascii") + b"." + raw_body,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), signature_header.strip().encode("utf-8"))
