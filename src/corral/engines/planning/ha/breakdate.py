"""The day the HA guarantee breaks, given a demand growth rate.

Growth compounds monthly (30.44 days): demand on day d is
``(1 + growth_per_month) ** (d / 30.44)`` times today's. The first broken day
is found by bisection, assuming more demand never helps (true of every policy
here: scaling reservations, slots used or VM sizes up only removes room).
"""

from __future__ import annotations

from datetime import date, timedelta

from corral.engines.planning.ha.base import AdmissionPolicy
from corral.engines.planning.model import Fleet
from corral.errors import ValidationError

DAYS_PER_MONTH = 30.44


def growth_factor(growth_per_month: float, days: int) -> float:
    return float((1.0 + growth_per_month) ** (days / DAYS_PER_MONTH))


def ha_break_date(
    fleet: Fleet,
    policy: AdmissionPolicy,
    failures: int,
    growth_per_month: float,
    start: date,
    horizon_days: int = 5 * 365,
) -> date | None:
    """First day the policy no longer tolerates ``failures``; None if not within the horizon."""
    if growth_per_month <= -1:
        raise ValidationError("Growth per month must be above -1 (that is, -100 %).")

    def holds(day: int) -> bool:
        scale = growth_factor(growth_per_month, day)
        return policy.evaluate(fleet, failures, scale).admission_ok

    if not holds(0):
        return start
    if growth_per_month <= 0 or holds(horizon_days):
        return None
    lo, hi = 0, horizon_days  # holds(lo), not holds(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if holds(mid) else (lo, mid)
    return start + timedelta(days=hi)
