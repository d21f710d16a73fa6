"""Monthly cost of each VM under a cost model.

Why a rate card: a VM's share of host hardware, power and per-host platform
licences is priced per vCPU and per GiB of a reference host filled to its
target allocation, so a VM costs the same wherever it runs and resizing it
changes its cost. A powered-off VM pays no compute share but still pays
storage, snapshots, licences, agents and labour.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from corral.engines.costing.model import CostModel, Licence, LicenceKind, LicenceScope


class PricedVM(Protocol):
    """What pricing needs to know about a VM (any record with these attributes)."""

    @property
    def uuid(self) -> str: ...
    @property
    def host(self) -> str | None: ...
    @property
    def vcpus(self) -> int: ...
    @property
    def memory_mib(self) -> int: ...
    @property
    def disk_gb(self) -> float: ...
    @property
    def snapshot_gb(self) -> float: ...
    @property
    def os(self) -> str | None: ...
    @property
    def licences(self) -> tuple[str, ...]: ...
    @property
    def powered_on(self) -> bool: ...


class PricedHost(Protocol):
    """A host and the per-host licences it holds."""

    @property
    def name(self) -> str: ...
    @property
    def licences(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class RateCard:
    """Prices derived from the reference host."""

    host_monthly: float
    per_vcpu: float
    per_gib: float
    per_gb_storage: float
    per_gb_snapshot: float

    def compute(self, vcpus: float, memory_mib: float) -> float:
        """Monthly compute share of a VM of this size."""
        return vcpus * self.per_vcpu + memory_mib / 1024.0 * self.per_gib


@dataclass(frozen=True)
class VMCost:
    """One VM's monthly cost, line by line; ``licences`` names each licence product."""

    uuid: str
    compute: float
    storage: float
    snapshots: float
    platform: float
    software: float
    labour: float
    licences: Mapping[str, float] = field(default_factory=dict)

    @property
    def licence_total(self) -> float:
        return sum(self.licences.values())

    @property
    def total(self) -> float:
        fixed = self.compute + self.storage + self.snapshots + self.platform
        return fixed + self.software + self.labour + self.licence_total

    def lines(self) -> dict[str, float]:
        """Cost lines for a report, licences summed."""
        return {
            "compute": self.compute,
            "storage": self.storage,
            "snapshots": self.snapshots,
            "platform": self.platform,
            "os_app_licences": self.licence_total,
            "software": self.software,
            "labour": self.labour,
            "total": self.total,
        }


def host_monthly_cost(model: CostModel) -> float:
    """Hardware amortisation, power and per-host platform licences of the reference host."""
    h = model.host
    power = h.power_watts / 1000.0 * model.hours_per_month * h.pue * h.price_per_kwh
    platform = sum(
        lic.monthly_price
        for lic in model.licences.values()
        if _is_platform(lic) and lic.per is LicenceScope.host
    )
    return h.hardware_price / h.amortisation_months + power + h.other_monthly + platform


def rate_card(model: CostModel) -> RateCard:
    """Rates per vCPU-month and GiB-month from the reference host."""
    h = model.host
    monthly = host_monthly_cost(model)
    vcpu_capacity = h.cores * h.cpu_overcommit * h.target_allocation
    gib_capacity = h.memory_gib * h.memory_overcommit * h.target_allocation
    return RateCard(
        host_monthly=monthly,
        per_vcpu=monthly * h.cpu_share / vcpu_capacity,
        per_gib=monthly * (1.0 - h.cpu_share) / gib_capacity,
        per_gb_storage=model.storage.price_per_gb_month,
        per_gb_snapshot=model.storage.snapshot_price_per_gb_month,
    )


def licensed_families(vm: PricedVM, model: CostModel) -> tuple[str, ...]:
    """Licence families a VM needs: from its OS via ``os_map`` plus its own licence list."""
    families: list[str] = []
    os_name = (vm.os or "").lower()
    for pattern, family in model.os_map.items():
        if os_name and fnmatch.fnmatch(os_name, pattern.lower()):
            families.append(family)
            break
    for item in vm.licences:
        lic = model.licences.get(item)
        family = lic.covers if lic is not None and lic.covers else item
        if family not in families:
            families.append(family)
    return tuple(families)


def price_fleet(
    vms: Sequence[PricedVM], hosts: Iterable[PricedHost], model: CostModel
) -> dict[str, VMCost]:
    """Monthly cost of every VM, sharing per-host licences among the VMs that use them."""
    rates = rate_card(model)
    host_licences = {h.name: set(h.licences) for h in hosts}
    assignments = assign_licences(vms, host_licences, model)
    sharers = _host_licence_sharers(vms, assignments)
    return {vm.uuid: _price_vm(vm, model, rates, assignments[vm.uuid], sharers) for vm in vms}


def price_vm(vm: PricedVM, model: CostModel) -> VMCost:
    """Monthly cost of a VM on its own (per-host licences spread by the consolidation ratio)."""
    return price_fleet([vm], [], model)[vm.uuid]


def assign_licences(
    vms: Sequence[PricedVM], host_licences: Mapping[str, set[str]], model: CostModel
) -> dict[str, dict[str, str]]:
    """For each VM, family -> the licence product that covers it there."""
    return {
        vm.uuid: {
            family: product
            for family in licensed_families(vm, model)
            if (product := _product_for(vm, family, host_licences, model)) is not None
        }
        for vm in vms
    }


def _product_for(
    vm: PricedVM, family: str, host_licences: Mapping[str, set[str]], model: CostModel
) -> str | None:
    explicit = [n for n in vm.licences if n in model.licences]
    held = host_licences.get(vm.host or "", set())
    candidates = [(n, lic) for n, lic in model.licences.items() if lic.covers == family]
    for name, lic in candidates:
        if lic.per is LicenceScope.host and name in held:
            return name
    for name, _ in candidates:
        if name in explicit:
            return name
    for name, lic in candidates:
        if lic.per is LicenceScope.vm:
            return name
    return candidates[0][0] if candidates else None


def _host_licence_sharers(
    vms: Sequence[PricedVM], assignments: Mapping[str, Mapping[str, str]]
) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for vm in vms:
        if vm.host is None:
            continue
        for product in assignments[vm.uuid].values():
            counts[(vm.host, product)] += 1
    return counts


def _price_vm(
    vm: PricedVM,
    model: CostModel,
    rates: RateCard,
    products: Mapping[str, str],
    sharers: Mapping[tuple[str, str], int],
) -> VMCost:
    licence_costs: dict[str, float] = {}
    for product in products.values():
        lic = model.licences[product]
        licence_costs[product] = _licence_share(vm, product, lic, model, sharers)
    platform = sum(
        lic.monthly_price
        for lic in model.licences.values()
        if _is_platform(lic) and lic.per is LicenceScope.vm
    )
    return VMCost(
        uuid=vm.uuid,
        compute=rates.compute(vm.vcpus, vm.memory_mib) if vm.powered_on else 0.0,
        storage=vm.disk_gb * rates.per_gb_storage,
        snapshots=vm.snapshot_gb * rates.per_gb_snapshot,
        platform=platform,
        software=sum(model.per_vm_software.values()),
        labour=model.labour.admin_hours_per_vm_month * model.labour.hourly_rate,
        licences=licence_costs,
    )


def _licence_share(
    vm: PricedVM,
    product: str,
    lic: Licence,
    model: CostModel,
    sharers: Mapping[tuple[str, str], int],
) -> float:
    if lic.per is LicenceScope.vm:
        return lic.monthly_price
    if vm.host is None:
        return lic.monthly_price / model.consolidation_ratio
    return lic.monthly_price / max(1, sharers.get((vm.host, product), 1))


def _is_platform(lic: Licence) -> bool:
    return lic.kind in (LicenceKind.hypervisor, LicenceKind.management)
