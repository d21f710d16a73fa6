"""Showback/chargeback: VM costs summed by owner, department or project."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from corral.engines.costing.pricing import VMCost

UNASSIGNED = "(unassigned)"


class Dimension(StrEnum):
    owner = "owner"
    department = "department"
    project = "project"


class AttributedVM(Protocol):
    """A VM with the attributes chargeback groups by."""

    @property
    def uuid(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def department(self) -> str | None: ...
    @property
    def project(self) -> str | None: ...


@dataclass(frozen=True)
class ChargebackRow:
    """What one owner/department/project pays per month, line by line."""

    key: str
    vms: int
    lines: Mapping[str, float]

    @property
    def total(self) -> float:
        return self.lines.get("total", 0.0)


def chargeback(
    vms: Sequence[AttributedVM], costs: Mapping[str, VMCost], by: Dimension
) -> list[ChargebackRow]:
    """Rows sorted by total cost, largest first; VMs without the attribute go to UNASSIGNED."""
    sums: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for vm in vms:
        key = (getattr(vm, by.value) or "").strip() or UNASSIGNED
        acc = sums.setdefault(key, {})
        for line, value in costs[vm.uuid].lines().items():
            acc[line] = acc.get(line, 0.0) + value
        counts[key] = counts.get(key, 0) + 1
    rows = [ChargebackRow(key=k, vms=counts[k], lines=v) for k, v in sums.items()]
    return sorted(rows, key=lambda r: (-r.total, r.key))
