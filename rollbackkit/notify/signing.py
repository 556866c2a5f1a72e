"""The webhook signature: ``t=<unix>,v1=<hex HMAC-SHA256(secret, b"<t>." + body)>``.

The timestamp is inside the signed bytes, so a receiver that refuses signatures older than a
few minutes (:func:`verify`'s ``tolerance``) refuses a captured request replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from rollbackkit.errors import SignatureInvalid

HEADER = "X-Rollbackkit-Signature"
TOLERANCE = 300


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Rollbackkit-Signature`` value of ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, body: bytes, header: str, *, tolerance: int = TOLERANCE, now: float | None = None) -> None:
    """Check ``header`` against ``body``: a good HMAC no older (nor newer) than ``tolerance`` seconds.

    Raises:
        SignatureInvalid: The header is malformed, no ``v1`` matches, or its time is out of tolerance.
    """
    fields: dict[str, list[str]] = {}
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not value:
            raise SignatureInvalid("The signature header is malformed.", "Expect t=<unix seconds>,v1=<hex>.")
        fields.setdefault(key, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or not fields.get("v1"):
        raise SignatureInvalid("The signature header has no single t= and no v1=.", "Expect t=<unix>,v1=<hex>.")
    timestamp = int(stamps[0])
    expected = sign(secret, body, timestamp).partition(",v1=")[2]
    given = [v.encode() for v in fields["v1"] if v.isascii()]  # a non-ASCII value is a mismatch, not a TypeError
    if not any(hmac.compare_digest(expected.encode(), one) for one in given):
        raise SignatureInvalid("The signature does not match the body.", "Check the secret and the raw body.")
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance:
        raise SignatureInvalid(
            f"The signature is {age:.0f} s old, beyond the {tolerance} s tolerance.", "A replay, or a skewed clock."
        )
