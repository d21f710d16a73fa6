"""The reclamation policy: waiting periods and approvals, from a YAML file with defaults.

Defaults (each can be set in the file given to ``load_policy``):
  notice_days: 14         the owner's time to answer the e-mail before the VM is quarantined
  quarantine_days: 14     powered off and marked before it is archived
  cooling_off_days: 30    archived (a disk snapshot) before it is deleted
  max_extension_days: 365 the furthest an owner may push the expiry in one extension
  approvals: {delete: 1}  approvals each step needs before it runs (quarantine, archive, delete)
  approvers: []           who may approve (empty: any authenticated user)
  four_eyes: true         the person who flagged a VM cannot approve its reclamation
  shutdown_grace_s: 120   ACPI shutdown time before a quarantined VM is forced off
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral import safeload
from corral.errors import ConfigError

_STEPS_WITH_APPROVAL = ("quarantine", "archive", "delete")


@dataclass(frozen=True)
class Policy:
    notice_days: int = 14
    quarantine_days: int = 14
    cooling_off_days: int = 30
    max_extension_days: int = 365
    approvals: Mapping[str, int] = field(default_factory=lambda: {"delete": 1})
    approvers: frozenset[str] = frozenset()
    four_eyes: bool = True
    shutdown_grace_s: float = 120.0


_INTS = ("notice_days", "quarantine_days", "cooling_off_days", "max_extension_days")


def parse_policy(data: Any, source: str = "reclaim policy") -> Policy:
    """Build a Policy from parsed YAML, naming the key of anything wrong."""
    if data is None:
        return Policy()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of settings.")
    known = {*_INTS, "approvals", "approvers", "four_eyes", "shutdown_grace_s"}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{source}: unknown setting {key!r}; known: {', '.join(sorted(known))}."
            )
    values: dict[str, Any] = {}
    for key in _INTS:
        if key in data:
            values[key] = _count(data[key], f"{source}: {key}")
    if "shutdown_grace_s" in data:
        grace = data["shutdown_grace_s"]
        if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
            raise ConfigError(f"{source}: shutdown_grace_s must be a number of seconds >= 0.")
        values["shutdown_grace_s"] = float(grace)
    if "four_eyes" in data:
        if not isinstance(data["four_eyes"], bool):
            raise ConfigError(f"{source}: four_eyes must be true or false.")
        values["four_eyes"] = data["four_eyes"]
    if "approvals" in data:
        values["approvals"] = _approvals(data["approvals"], source)
    if "approvers" in data:
        approvers = data["approvers"]
        if not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers):
            raise ConfigError(f"{source}: approvers must be a list of names.")
        values["approvers"] = frozenset(approvers)
    return Policy(**values)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where} must be a whole number of days >= 0.")
    return value


def _approvals(value: Any, source: str) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: approvals must map a step to a number of approvals.")
    out: dict[str, int] = {}
    for step, n in value.items():
        if step not in _STEPS_WITH_APPROVAL:
            raise ConfigError(
                f"{source}: approvals.{step}: only quarantine, archive and delete take approvals."
            )
        out[step] = _count(n, f"{source}: approvals.{step}")
    return {k: v for k, v in out.items() if v > 0}


def load_policy(path: Path | None, *, required: bool = True) -> Policy:
    """The policy in ``path``; the defaults when there is none and none is required."""
    if path is None or not path.exists():
        if path is not None and required:
            raise ConfigError(f"reclaim policy file {path} does not exist.")
        return Policy()
    data = safeload.load_file(path, "reclaim policy file", ConfigError)
    return parse_policy(data, str(path))
