"""The reclamation workflow's rules (pure): states, steps, timing and approvals."""

from corral.engines.reclaim.machine import (
    AUTOMATIC,
    OFFLINE,
    OPEN,
    SOURCES,
    TARGET,
    CaseView,
    Decision,
    Due,
    State,
    Step,
    Waiting,
    check,
    check_approver,
    check_extension,
    missing_approvals,
    next_step,
)
from corral.engines.reclaim.policy import Policy, load_policy, parse_policy

__all__ = [
    "AUTOMATIC",
    "OFFLINE",
    "OPEN",
    "SOURCES",
    "TARGET",
    "CaseView",
    "Decision",
    "Due",
    "Policy",
    "State",
    "Step",
    "Waiting",
    "check",
    "check_approver",
    "check_extension",
    "load_policy",
    "missing_approvals",
    "next_step",
    "parse_policy",
]
