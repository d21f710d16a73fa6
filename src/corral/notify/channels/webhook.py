"""Alert notifications as a signed JSON POST.

The body is the message as JSON; ``X-Corral-Signature: sha256=<hex>`` is the HMAC-SHA256 of
the exact body bytes under the channel's secret, so a receiver can check the sender and that
nothing changed; ``X-Corral-Delivery`` is the notification's key (the same on a retry, so a
receiver can drop a repeat). A short timeout bounds each try; retries with backoff are the
outbox's (corral.services.alerts).
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from corral.notify.channels.base import ChannelError, Message

SIGNATURE_HEADER = "X-Corral-Signature"


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, name: str, url: str, secret: str, timeout_s: float = 5.0) -> None:
        self._name = name
        self.url = url
        self._secret = secret.encode()
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"WebhookChannel({self._name!r}, {self.url!r})"

    def send(self, message: Message) -> None:
        body = json.dumps(message.to_json(), sort_keys=True, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            "X-Corral-Delivery": hashlib.sha256(message.key.encode()).hexdigest(),
            "X-Corral-Event": message.event,
        }
        try:
            answer = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise ChannelError(f"webhook {self._name}: {type(exc).__name__}: {exc}") from None
        if not answer.is_success:
            raise ChannelError(f"webhook {self._name}: the endpoint answered {answer.status_code}")
