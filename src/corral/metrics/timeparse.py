"""Times and durations as people type them: ``now``, ``-30d``, ISO 8601, epoch seconds, ``5m``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from corral.errors import ValidationError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def parse_duration(text: str) -> int:
    """``90s``, ``5m``, ``1h``, ``30d``, ``2w`` or plain seconds -> seconds."""
    t = text.strip().lower()
    if t.isdigit():
        return int(t)
    m = _DURATION.match(t)
    if not m or int(m.group(1)) == 0:
        raise ValidationError(f"{text!r} is not a duration; write e.g. 300, 5m, 1h or 30d.")
    return int(m.group(1)) * _UNITS[m.group(2)]


def parse_time(text: str, now: float) -> int:
    """``now``, ``-2h`` (relative to now), epoch seconds or ISO 8601 (UTC if no zone) -> epoch s."""
    t = text.strip()
    if t.lower() == "now":
        return int(now)
    if t.startswith("-"):
        return int(now) - parse_duration(t[1:])
    if t.isdigit():
        return int(t)
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValidationError(
            f"{text!r} is not a time; write now, -2h, -30d, epoch seconds or 2026-01-31T12:00."
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
