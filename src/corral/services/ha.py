"""HA admission control on a fleet: how many host failures it tolerates, and until when.

The policies are the planning engine's (exact, slots, percentage, failover-hosts);
this service picks one from plain parameters, evaluates it and, given a growth
rate (stated, or the trend of a usage history), the date the guarantee breaks.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from corral.engines.planning.forecast.history import History, load_history
from corral.engines.planning.forecast.history import growth_per_month as history_growth
from corral.engines.planning.ha.base import HAReport
from corral.engines.planning.ha.breakdate import ha_break_date
from corral.engines.planning.ha.registry import POLICIES, make_policy
from corral.engines.planning.model import Fleet

__all__ = ["GrowthProjection", "GrowthSource", "HACheckResult", "HAReport", "check", "policies"]


class GrowthSource(enum.StrEnum):
    given = "given"
    history_trend = "history trend"


@dataclass(frozen=True)
class GrowthProjection:
    """Demand growing by ``growth_per_month`` from ``start``: HA breaks on ``breaks_on``
    (None: not within five years)."""

    growth_per_month: float
    source: GrowthSource
    start: date
    breaks_on: date | None


@dataclass(frozen=True)
class HACheckResult:
    """The policy's report (tolerated failures, admission verdict, policy details such as
    slots or VMs that would not come back) and, when asked, the growth projection."""

    report: HAReport
    growth: GrowthProjection | None = None

    @property
    def admission_ok(self) -> bool:
        return self.report.admission_ok


def policies() -> tuple[str, ...]:
    """The names of the HA admission-control policies."""
    return tuple(POLICIES)


def check(
    fleet: Fleet,
    policy: str = "exact",
    failures: int = 1,
    *,
    failover_hosts: Sequence[str] = (),
    cpu_pct: float | None = None,
    memory_pct: float | None = None,
    growth_per_month: float | None = None,
    history: Path | History | None = None,
    as_of: date | None = None,
) -> HACheckResult:
    """Evaluate ``policy`` for K = ``failures`` host failures; returns an HACheckResult.

    ``cpu_pct``/``memory_pct`` configure the percentage policy, ``failover_hosts`` the
    failover-hosts policy. With ``growth_per_month`` (or a ``history`` whose cluster trend
    gives it) the result also says when the guarantee breaks, counted from ``as_of``
    (default: today, UTC). An unknown policy raises ValidationError.
    """
    params: dict[str, Any] = {}
    if policy == "percentage":
        params = {"cpu_pct": cpu_pct, "memory_pct": memory_pct}
    elif policy == "failover-hosts":
        params = {"hosts": list(failover_hosts) or None}
    engine = make_policy(policy, **params)
    report = engine.evaluate(fleet, failures)
    source = GrowthSource.given
    if growth_per_month is None and history is not None:
        series = load_history(history) if isinstance(history, Path) else history
        growth_per_month, source = history_growth(series), GrowthSource.history_trend
    if growth_per_month is None:
        return HACheckResult(report)
    start = as_of or datetime.now(UTC).date()
    broken = ha_break_date(fleet, engine, failures, growth_per_month, start)
    return HACheckResult(report, GrowthProjection(growth_per_month, source, start, broken))
