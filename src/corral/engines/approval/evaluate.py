"""Evaluate a request against the approval rules: approve, leave pending, or deny — and why.

A pure function of plain facts (the request's environment and cost, the quota check, the
placement, the distinct approvers so far), so every rule is tested without a database. Each
unmet rule gives its own reason, with a stable ``rule`` code the API and the CLI show.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from corral.engines.approval.capacity import CapacityStatus, CapacityVerdict
from corral.engines.approval.quota import QuotaBreach
from corral.engines.approval.rules import ApprovalRules, HABreach


class Decision(StrEnum):
    approve = "approve"
    pending = "pending"
    deny = "deny"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a request is not (yet) approved: the rule's code and one sentence."""

    rule: str
    text: str


@dataclass(frozen=True, slots=True)
class Facts:
    environment: str
    monthly_cost: float
    currency: str
    quota: tuple[QuotaBreach, ...]
    capacity: CapacityVerdict
    approvers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Evaluation:
    decision: Decision
    approvals_needed: int
    reasons: tuple[Reason, ...]


def blocking(rules: ApprovalRules, facts: Facts) -> tuple[Reason, ...]:
    """Reasons no approval can overcome: one per exceeded quota limit, and no capacity."""
    found = [Reason(f"quota.{b.dimension.value}", b.text(facts.currency)) for b in facts.quota]
    cap = facts.capacity
    if cap.status is CapacityStatus.unschedulable:
        found += [Reason("capacity", r) for r in cap.reasons]
    if cap.status is CapacityStatus.breaks_ha and rules.ha_breach is HABreach.deny:
        found += [
            Reason("ha_reserve", f"breaks the N+{cap.failures} guarantee: {r}") for r in cap.reasons
        ]
    return tuple(found)


def approvals_needed(rules: ApprovalRules, facts: Facts) -> tuple[int, tuple[Reason, ...]]:
    """How many distinct approvers the request needs (0: auto-approved), and why not fewer."""
    two = rules.two_approvers
    why_two = []
    if two.production and rules.is_production(facts.environment):
        why_two.append(
            Reason(
                "two_approvers.production",
                f"{facts.environment} is production: two distinct approvers",
            )
        )
    if two.min_monthly_cost is not None and facts.monthly_cost >= two.min_monthly_cost:
        why_two.append(
            Reason(
                "two_approvers.cost",
                f"costs {_money(facts.monthly_cost, facts.currency)} a month, at least "
                f"{_money(two.min_monthly_cost, facts.currency)}: two distinct approvers",
            )
        )
    if why_two:
        return 2, tuple(why_two)
    not_auto = _not_auto(rules, facts)
    return (1, not_auto) if not_auto else (0, ())


def _not_auto(rules: ApprovalRules, facts: Facts) -> tuple[Reason, ...]:
    auto = rules.auto_approve
    if auto is None:
        return (Reason("auto_approve.off", "automatic approval is off: an approver decides"),)
    found = []
    if rules.is_production(facts.environment):
        found.append(
            Reason(
                "auto_approve.environment",
                f"{facts.environment} is production: never approved automatically",
            )
        )
    if facts.monthly_cost >= auto.max_monthly_cost:
        found.append(
            Reason(
                "auto_approve.cost",
                f"costs {_money(facts.monthly_cost, facts.currency)} a month, not under the "
                f"{_money(auto.max_monthly_cost, facts.currency)} of automatic approval",
            )
        )
    if facts.capacity.status is CapacityStatus.breaks_ha:
        found.append(
            Reason("auto_approve.ha_reserve", "breaks the N+K guarantee: an approver decides")
        )
    return tuple(found)


def evaluate(rules: ApprovalRules, facts: Facts) -> Evaluation:
    """The decision the rules give now, with every reason it is not a plain approval."""
    blocked = blocking(rules, facts)
    needed, why = approvals_needed(rules, facts)
    if blocked:
        return Evaluation(Decision.deny, needed, blocked)
    have = len(facts.approvers)
    if have >= needed:
        return Evaluation(Decision.approve, needed, ())
    waiting = Reason("approvals", f"{have} of {needed} distinct approvals so far")
    return Evaluation(Decision.pending, needed, (*why, waiting))


def _money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}".strip()
