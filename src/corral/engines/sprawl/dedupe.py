"""Count each VM once: keep its highest-value finding, remember the other categories.

Why: a powered-off VM with old snapshots and no owner is one VM to reclaim, and
its money must not be counted three times. A waste category (powered off,
idle, lease expired, snapshots) always beats a governance one (no owner, no
purpose); then the most money wins; ties go to the category listed first in
``Category``, as vROps ranks reclamation types. Orphaned volumes are not VMs
and pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from corral.engines.sprawl.model import CATEGORY_RANK, GOVERNANCE, Finding


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per subject: waste before governance, then most money, then category rank."""
    by_subject: dict[str, list[Finding]] = {}
    for f in findings:
        by_subject.setdefault(f.subject, []).append(f)
    return [_keep_best(group) for group in by_subject.values()]


def _keep_best(group: list[Finding]) -> Finding:
    best = min(group, key=_preference)
    others = {f.category for f in group if f.category is not best.category}
    ordered = sorted(others, key=lambda c: CATEGORY_RANK[c])
    return replace(best, also_matched=tuple(ordered))


def _preference(f: Finding) -> tuple[bool, float, int]:
    return (f.category in GOVERNANCE, -round(f.monthly_cost_held, 6), CATEGORY_RANK[f.category])
