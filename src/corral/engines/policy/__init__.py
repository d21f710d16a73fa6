"""Governance policies (issue 10 item 7): declarative rules, checked on a request before it is
sent and on the whole inventory (drift). Pure: plain facts in, violations out."""

from corral.engines.policy.model import (
    Facts,
    Policy,
    SizeLimit,
    Violation,
    check,
    policy_from_mapping,
)

__all__ = ["Facts", "Policy", "SizeLimit", "Violation", "check", "policy_from_mapping"]
