"""What every channel receives and promises.

A ``Message`` is a notification as plain data (it is what the outbox stores): alert names,
labels, summaries and values, never a secret — channel secrets live in the channel objects
only, read from 0600 files when the channels are built. A channel's ``send`` either delivers
the message or raises ChannelError; retrying is the outbox's job (exponential backoff), so one
dead endpoint never holds the others up.
"""

from __future__ import annotations

import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from corral.errors import ConfigError, CorralError


class ChannelError(CorralError):
    code = "alert-channel-failed"
    http_status = 502


@dataclass(frozen=True)
class AlertItem:
    fingerprint: str
    rule: str
    state: str
    severity: str
    summary: str
    value: float
    started_at: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    key: str
    event: str
    group: str
    title: str
    at: float
    alerts: tuple[AlertItem, ...] = ()
    silence: str | None = None  # the id of the silence that ended

    @property
    def text(self) -> str:
        lines = [self.title, ""]
        if self.silence:
            lines.append(f"Silence {self.silence} has ended; its alerts are notified again.")
        lines += [f"- {a.severity.upper()} {a.rule}: {a.summary} [{a.state}]" for a in self.alerts]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        items = tuple(AlertItem(**a) for a in data.get("alerts", ()))
        return cls(**{**data, "alerts": items})


class Channel(Protocol):
    @property
    def name(self) -> str: ...

    def send(self, message: Message) -> None: ...


def read_secret(path: Path, what: str) -> str:
    """A secret from a file only its owner may read (never from the rules file itself)."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{what} file {path} is readable by others; chmod 600 it.")
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}.") from None
    if not text:
        raise ConfigError(f"{what} file {path} is empty.")
    return text
