"""Checking a signed inbound webhook: the signature is the sender's authentication.

The sender (an intrusion-detection system) signs the exact body bytes with HMAC-SHA256 under
a secret it shares with Corral and sends ``X-Corral-Signature: sha256=<hex>`` (the scheme of
Corral's own outgoing alert webhooks). The body carries a ``timestamp`` (Unix seconds), so
the signature covers it: a captured delivery cannot be re-dated. A delivery older (or newer)
than the allowed age is refused; a repeat inside that window is refused by the caller, who
keeps the digests of the deliveries it accepted (``digest``).

The comparison is constant-time; the secret and the signature are never put into an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from corral.errors import AuthError

SIGNATURE_HEADER = "X-Corral-Signature"
#: Marks an operation in the OpenAPI document as authenticated by its body's signature
#: (no bearer token); the role x route matrix test expects 401 there without a signature.
OPENAPI_MARK = "x-corral-signed"
PREFIX = "sha256="
REFUSED = "the webhook's signature, timestamp or delivery is not valid; nothing was done."


class WebhookRefused(AuthError):
    """Unsigned, badly signed, too old or repeated: answered 401, nothing happens."""

    code = "webhook-refused"


def sign(secret: bytes, body: bytes) -> str:
    """The header value a sender puts on ``body``."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def digest(body: bytes) -> str:
    """The key a delivery is remembered by (a repeat has the same body, so the same key)."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery whose signature and age held: its parsed JSON body and its digest."""

    doc: dict[str, Any]
    timestamp: float
    digest: str


def check(
    secret: bytes | None, body: bytes, header: str | None, now: float, max_age_s: float
) -> Delivery:
    """The delivery if it is signed with ``secret`` and dated within ``max_age_s`` of ``now``.

    Raises WebhookRefused otherwise (also when no secret is configured: then nothing is
    accepted). The signature is checked before the body is parsed.
    """
    if not secret or not header or not header.startswith(PREFIX):
        raise WebhookRefused(REFUSED)
    if not hmac.compare_digest(sign(secret, body).encode(), header.strip().encode()):
        raise WebhookRefused(REFUSED)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookRefused(REFUSED) from None
    stamp = doc.get("timestamp") if isinstance(doc, dict) else None
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        raise WebhookRefused(REFUSED)
    if abs(now - float(stamp)) > max_age_s:
        raise WebhookRefused(REFUSED)
    return Delivery(doc, float(stamp), digest(body))
