"""Forward alerts to an existing Prometheus Alertmanager (``POST /api/v2/alerts``).

Each alert goes with its labels and a summary annotation; a resolved one carries ``endsAt``
(the time it resolved), so the Alertmanager resolves it too. Its own routing, grouping and
receivers then apply; Corral's outbox still sends each change once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from corral.notify.channels.base import AlertItem, ChannelError, Message


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _alert(item: AlertItem, message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": {**item.labels, "alertname": item.rule},
        "annotations": {
            "summary": item.summary,
            "corral_state": item.state,
            "corral_group": message.group,
        },
        "startsAt": _iso(item.started_at),
    }
    if item.state == "resolved":
        out["endsAt"] = _iso(message.at)
    return out


class AlertmanagerChannel:
    def __init__(self, name: str, url: str, timeout_s: float = 5.0) -> None:
        self._name = name
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        return self._name

    def send(self, message: Message) -> None:
        alerts = [_alert(a, message) for a in message.alerts]
        if not alerts:
            return  # a silence's end with nothing behind it: the Alertmanager has no such event
        try:
            answer = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise ChannelError(f"alertmanager {self._name}: {type(exc).__name__}: {exc}") from None
        if not answer.is_success:
            raise ChannelError(
                f"alertmanager {self._name}: answered {answer.status_code}: {answer.text[:200]}"
            )
