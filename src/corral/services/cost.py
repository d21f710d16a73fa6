"""Cost services: what each VM costs a month, chargeback, licence compliance.

Every interface (CLI, REST, demo) calls these with the same inputs — the cost
model of the settings and fleet records (``FleetSnapshot.records`` of
``corral.services.fleet``: a fleet file, a request body or the live inventory)
— so a VM has one price wherever it is asked for. Results are typed; money is in
``currency`` per month.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from corral.engines.costing import (
    ChargebackRow,
    CostModel,
    Dimension,
    LicenceUsage,
    LicensingSuggestion,
    chargeback,
    default_cost_model_text,
    licence_report,
    price_fleet,
)
from corral.engines.sprawl.model import VMState
from corral.services.records import FleetRecords


@dataclass(frozen=True)
class CostLines:
    """A monthly cost, line by line (``os_app_licences`` sums the OS/application licences)."""

    compute: float
    storage: float
    snapshots: float
    platform: float
    os_app_licences: float
    software: float
    labour: float
    total: float

    @classmethod
    def of(cls, lines: Mapping[str, float]) -> CostLines:
        """From the engine's line mapping (``VMCost.lines()``, ``ChargebackRow.lines``)."""
        return cls(**{name: float(lines.get(name, 0.0)) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class VMCostLine:
    """One VM's monthly cost; ``licences`` is product -> monthly share."""

    uuid: str
    vm: str
    state: VMState
    lines: CostLines
    licences: Mapping[str, float]


@dataclass(frozen=True)
class CostPerVM:
    """Every VM of the fleet priced, in the fleet's order."""

    currency: str
    vms: tuple[VMCostLine, ...]

    @property
    def total(self) -> float:
        return sum(v.lines.total for v in self.vms)


@dataclass(frozen=True)
class ChargebackLine:
    """What one owner, department or project pays a month (``key`` is UNASSIGNED when unset)."""

    key: str
    vms: int
    lines: CostLines


@dataclass(frozen=True)
class Chargeback:
    """Chargeback rows by ``by``, largest total first."""

    currency: str
    by: Dimension
    rows: tuple[ChargebackLine, ...]


@dataclass(frozen=True)
class LicenceCompliance:
    """Deployed vs owned per licence product, and the cheaper per-host/per-VM choices."""

    currency: str
    usage: tuple[LicenceUsage, ...]
    suggestions: tuple[LicensingSuggestion, ...]


def cost_per_vm(fleet: FleetRecords, model: CostModel) -> CostPerVM:
    """Returns every VM's monthly cost under ``model`` (per-host licences shared on each host)."""
    costs = price_fleet(fleet.vms, fleet.hosts, model)
    return CostPerVM(
        currency=model.currency,
        vms=tuple(
            VMCostLine(
                uuid=vm.uuid,
                vm=vm.name,
                state=vm.state,
                lines=CostLines.of(costs[vm.uuid].lines()),
                licences=dict(costs[vm.uuid].licences),
            )
            for vm in fleet.vms
        ),
    )


def chargeback_by(fleet: FleetRecords, model: CostModel, by: Dimension) -> Chargeback:
    """Returns the fleet's monthly cost summed by owner, department or project."""
    costs = price_fleet(fleet.vms, fleet.hosts, model)
    rows = chargeback(fleet.vms, costs, by)
    return Chargeback(currency=model.currency, by=by, rows=tuple(_line(r) for r in rows))


def licence_compliance(fleet: FleetRecords, model: CostModel) -> LicenceCompliance:
    """Returns licence usage against entitlements and the switches that would save money."""
    report = licence_report(fleet.vms, fleet.hosts, model)
    return LicenceCompliance(model.currency, report.usage, report.suggestions)


def _line(row: ChargebackRow) -> ChargebackLine:
    return ChargebackLine(key=row.key, vms=row.vms, lines=CostLines.of(row.lines))


# CostModel, Dimension and the default model's text are re-exported: interfaces import services.
__all__ = [
    "Chargeback",
    "ChargebackLine",
    "CostLines",
    "CostModel",
    "CostPerVM",
    "Dimension",
    "LicenceCompliance",
    "VMCostLine",
    "chargeback_by",
    "cost_per_vm",
    "default_cost_model_text",
    "licence_compliance",
]
