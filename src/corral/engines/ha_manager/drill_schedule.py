"""When the next scheduled drill is due, and on which host: a pure function of plain data.

A drill fails a host on purpose, so it may only happen when the fleet can afford it: only on
hosts the drill policy allows, never while another drill runs, never while any host is not
online or is in maintenance (the fleet is already short of a host), never more often than
the schedule's period (fleet-wide: one drill per period, not one per host), and, if the
schedule names hours, only within them. Among the allowed hosts the one drilled longest ago
(never first) goes next, so every allowed host is drilled in turn.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class DrillSchedule:
    #: seconds between two scheduled drills (fleet-wide)
    every_s: float
    #: UTC hours (0-23) in which a drill may start; empty: any hour
    hours_utc: frozenset[int] = frozenset()


@dataclass(frozen=True)
class DrillDecision:
    #: the host to drill now, or None
    host: str | None
    #: why (not): one line for the log and ``corral ha drills``
    why: str


def next_drill(
    schedule: DrillSchedule,
    allowed: Collection[str],
    host_states: Mapping[str, str],
    maintenance: Collection[str],
    last_runs: Mapping[str, float],
    running: bool,
    now: float,
) -> DrillDecision:
    """``host_states``: the manager's state per host; ``last_runs``: host -> epoch seconds of
    its last drill (any, scheduled or not); ``now``: epoch seconds."""
    if running:
        return DrillDecision(None, "a drill is running")
    down = sorted(h for h, st in host_states.items() if st != "online")
    if down:
        return DrillDecision(None, f"host {down[0]} is {host_states[down[0]]}")
    if maintenance:
        return DrillDecision(None, f"host {sorted(maintenance)[0]} is in maintenance")
    latest = max(last_runs.values(), default=None)
    if latest is not None and now < latest + schedule.every_s:
        return DrillDecision(None, f"next due at {_utc(latest + schedule.every_s)}")
    hour = datetime.fromtimestamp(now, UTC).hour
    if schedule.hours_utc and hour not in schedule.hours_utc:
        return DrillDecision(None, f"outside the drill hours ({_hours(schedule.hours_utc)} UTC)")
    candidates = sorted(h for h in allowed if h in host_states)
    if not candidates:
        return DrillDecision(None, "no host the drill policy allows is watched")
    host = min(candidates, key=lambda h: (last_runs.get(h, float("-inf")), h))
    when = last_runs.get(host)
    return DrillDecision(host, "never drilled" if when is None else f"last drilled {_utc(when)}")


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _hours(hours: frozenset[int]) -> str:
    return ",".join(str(h) for h in sorted(hours))
