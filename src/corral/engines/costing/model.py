"""The cost model: every price Corral uses, as plain frozen dataclasses.

The numbers come from a YAML file (``default_cost_model.yaml`` ships the
documented defaults). The dataclasses validate themselves when loaded (see
``loader.py``) so the pricing code can trust them: no negative prices, no
unknown keys, no zero-sized hosts.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, NonNegativeFloat
from pydantic.dataclasses import dataclass

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=False)


class LicenceScope(StrEnum):
    """What one unit of a licence covers."""

    host = "host"  # one unit per host covers every VM of that host (e.g. Windows Datacenter)
    vm = "vm"  # one unit per VM


class LicenceKind(StrEnum):
    """Platform licences are paid for the whole fleet; OS/application ones only where used."""

    hypervisor = "hypervisor"
    management = "management"
    os = "os"
    application = "application"


@dataclass(config=_STRICT)
class HostCost:
    """A reference host; its monthly cost becomes a rate per vCPU and per GiB."""

    hardware_price: float = Field(default=20000.0, ge=0)
    amortisation_months: int = Field(default=48, gt=0)
    cores: int = Field(default=32, gt=0)
    memory_gib: float = Field(default=512.0, gt=0)
    cpu_overcommit: float = Field(default=4.0, gt=0)
    memory_overcommit: float = Field(default=1.0, gt=0)
    target_allocation: float = Field(default=0.8, gt=0, le=1)
    cpu_share: float = Field(default=0.5, ge=0, le=1)
    power_watts: float = Field(default=450.0, ge=0)
    pue: float = Field(default=1.6, ge=1)
    price_per_kwh: float = Field(default=0.12, ge=0)
    other_monthly: float = Field(default=0.0, ge=0)


@dataclass(config=_STRICT)
class StorageCost:
    price_per_gb_month: float = Field(default=0.25, ge=0)
    snapshot_price_per_gb_month: float = Field(default=0.25, ge=0)


@dataclass(config=_STRICT)
class Licence:
    """One licensed product: its scope, its monthly price per unit, what it entitles."""

    kind: LicenceKind
    per: LicenceScope
    monthly_price: float = Field(ge=0)
    covers: str | None = None  # OS/application family this product licenses, e.g. windows-server
    entitlements: int | None = Field(default=None, ge=0)  # units owned; None = not tracked
    description: str = ""


@dataclass(config=_STRICT)
class Labour:
    admin_hours_per_vm_month: float = Field(default=0.5, ge=0)
    hourly_rate: float = Field(default=60.0, ge=0)


@dataclass(config=_STRICT)
class CostModel:
    """All prices, in ``currency`` per month unless a key says otherwise."""

    currency: str = "USD"
    hours_per_month: float = Field(default=730.0, gt=0)
    consolidation_ratio: float = Field(default=15.0, gt=0)
    licence_warn_fraction: float = Field(default=0.9, gt=0, le=1)
    host: HostCost = Field(default_factory=HostCost)
    storage: StorageCost = Field(default_factory=StorageCost)
    licences: dict[str, Licence] = Field(default_factory=dict)
    per_vm_software: dict[str, NonNegativeFloat] = Field(default_factory=dict)
    os_map: dict[str, str] = Field(default_factory=dict)
    labour: Labour = Field(default_factory=Labour)
