"""Licence compliance: entitlements against what is deployed, and the cheaper way to license.

Why per host: a per-host licence such as Windows Server Datacenter covers every
VM of its family on that host, so it pays off once enough such VMs share a
host; below that, per-VM licences are cheaper. Both directions are reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from corral.engines.costing.model import CostModel, LicenceKind, LicenceScope
from corral.engines.costing.pricing import PricedHost, PricedVM, assign_licences


class ComplianceStatus(StrEnum):
    ok = "ok"
    warn = "warn"  # at or above the warning fraction of entitlements
    over = "over"  # more deployed than owned
    untracked = "untracked"  # no entitlement count in the cost model


@dataclass(frozen=True)
class LicenceUsage:
    product: str
    per: LicenceScope
    covers: str | None
    deployed: int
    entitlements: int | None
    status: ComplianceStatus
    monthly_cost: float

    @property
    def free(self) -> int | None:
        return None if self.entitlements is None else self.entitlements - self.deployed


@dataclass(frozen=True)
class LicensingSuggestion:
    """On ``host``, licensing ``family`` with ``suggested`` instead of ``current`` saves money."""

    host: str
    family: str
    vms: int
    current: str
    current_monthly: float
    suggested: str
    suggested_monthly: float

    @property
    def monthly_saving(self) -> float:
        return self.current_monthly - self.suggested_monthly


@dataclass(frozen=True)
class LicenceReport:
    usage: tuple[LicenceUsage, ...]
    suggestions: tuple[LicensingSuggestion, ...]


def licence_report(
    vms: Sequence[PricedVM], hosts: Iterable[PricedHost], model: CostModel
) -> LicenceReport:
    """Usage of every licence product and the per-host/per-VM switches that would save money."""
    held = {h.name: set(h.licences) for h in hosts}
    assignments = assign_licences(vms, held, model)
    usage = tuple(_usage(name, vms, held, assignments, model) for name in sorted(model.licences))
    return LicenceReport(usage=usage, suggestions=tuple(_suggestions(vms, assignments, model)))


def _usage(
    name: str,
    vms: Sequence[PricedVM],
    held: Mapping[str, set[str]],
    assignments: Mapping[str, Mapping[str, str]],
    model: CostModel,
) -> LicenceUsage:
    lic = model.licences[name]
    if lic.kind in (LicenceKind.hypervisor, LicenceKind.management):
        users = list(vms)  # platform licences cover every VM and every host
        held = {h: {*names, name} for h, names in held.items()}
    else:
        users = [vm for vm in vms if name in assignments[vm.uuid].values()]
    if lic.per is LicenceScope.vm:
        deployed = len(users)
    else:
        hosts_used = {vm.host or f"(unknown host of {vm.uuid})" for vm in users}
        deployed = len(hosts_used | {h for h, names in held.items() if name in names})
    return LicenceUsage(
        product=name,
        per=lic.per,
        covers=lic.covers,
        deployed=deployed,
        entitlements=lic.entitlements,
        status=_status(deployed, lic.entitlements, model.licence_warn_fraction),
        monthly_cost=deployed * lic.monthly_price,
    )


def _status(deployed: int, entitlements: int | None, warn_fraction: float) -> ComplianceStatus:
    if entitlements is None:
        return ComplianceStatus.untracked
    if deployed > entitlements:
        return ComplianceStatus.over
    if deployed >= warn_fraction * entitlements:
        return ComplianceStatus.warn
    return ComplianceStatus.ok


def _suggestions(
    vms: Sequence[PricedVM], assignments: Mapping[str, Mapping[str, str]], model: CostModel
) -> list[LicensingSuggestion]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for vm in vms:
        if vm.host is not None:
            for family, product in assignments[vm.uuid].items():
                groups[(vm.host, family)].append(product)
    out = []
    for (host, family), products in sorted(groups.items()):
        suggestion = _cheaper(host, family, products, model)
        if suggestion is not None:
            out.append(suggestion)
    return out


def _cheaper(
    host: str, family: str, products: list[str], model: CostModel
) -> LicensingSuggestion | None:
    n = len(products)
    current = max(set(products), key=products.count)
    current_cost = _cost_of(current, n, model)
    options = [name for name, lic in model.licences.items() if lic.covers == family]
    best = min(options, key=lambda name: (_cost_of(name, n, model), name))
    best_cost = _cost_of(best, n, model)
    if best_cost >= current_cost - 1e-9:
        return None
    return LicensingSuggestion(host, family, n, current, current_cost, best, best_cost)


def _cost_of(product: str, vms: int, model: CostModel) -> float:
    lic = model.licences[product]
    return lic.monthly_price if lic.per is LicenceScope.host else lic.monthly_price * vms
