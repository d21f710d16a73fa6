"""Backup engines: policy from requirements, and the staggered schedule of backups and patches.

Pure functions of plain data; nothing here imports the API, the CLI or the store.
"""

from corral.engines.backup.model import BackupInputs, BackupVM, IOBudget
from corral.engines.backup.patch import PatchPlan, PatchRules, PatchSlot, PatchVM, plan_patches
from corral.engines.backup.plan import BackupPlan, Fix, Miss, Rebuilt, Scheduled, plan_backups
from corral.engines.backup.policy import (
    Consistency,
    Effective,
    Planner,
    Policy,
    RestoreFrom,
    RestoreTesting,
    Retention,
    TierPolicy,
    Window,
    parse_policy,
)

__all__ = [
    "BackupInputs",
    "BackupPlan",
    "BackupVM",
    "Consistency",
    "Effective",
    "Fix",
    "IOBudget",
    "Miss",
    "PatchPlan",
    "PatchRules",
    "PatchSlot",
    "PatchVM",
    "Planner",
    "Policy",
    "Rebuilt",
    "RestoreFrom",
    "RestoreTesting",
    "Retention",
    "Scheduled",
    "TierPolicy",
    "Window",
    "parse_policy",
    "plan_backups",
    "plan_patches",
]
