"""Approval of VM requests: rules as data, quota checks and capacity-aware placement (pure)."""

from corral.engines.approval.capacity import (
    Booked,
    CapacityStatus,
    CapacityVerdict,
    Slot,
    overlay,
    place_new_vms,
    place_request,
)
from corral.engines.approval.evaluate import (
    Decision,
    Evaluation,
    Facts,
    Reason,
    approvals_needed,
    blocking,
    evaluate,
)
from corral.engines.approval.quota import Amounts, Limits, QuotaBreach, check_quota
from corral.engines.approval.rules import (
    ApprovalRules,
    AutoApprove,
    Expiry,
    HABreach,
    TwoApprovers,
    default_rules_text,
    load_rules,
    parse_rules,
)

__all__ = [
    "Amounts",
    "ApprovalRules",
    "AutoApprove",
    "Booked",
    "CapacityStatus",
    "CapacityVerdict",
    "Decision",
    "Evaluation",
    "Expiry",
    "Facts",
    "HABreach",
    "Limits",
    "QuotaBreach",
    "Reason",
    "Slot",
    "TwoApprovers",
    "approvals_needed",
    "blocking",
    "check_quota",
    "default_rules_text",
    "evaluate",
    "load_rules",
    "overlay",
    "parse_rules",
    "place_new_vms",
    "place_request",
]
