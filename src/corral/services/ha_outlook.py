"""What the administrator's landing page says of HA: how many host failures the fleet
tolerates, and for each host what its failure would do.

Why a service: the answer joins the HA manager's stored plan (or, before any manager ran,
the plan of the inventory's last sync, as ``corral ha plan`` gives it) with the fleet that
plan was made for, to name the VMs a failure would *not* bring back; the page only renders
it. The tolerated count is how many host failures the fleet survives now
(:func:`~corral.engines.planning.ha.tolerance.tolerated_failures`: the exact policy's restart
model, not capped at the K the N+K setting asks for), shown beside that K.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from corral.engines.ha_manager import plans_by_host
from corral.engines.planning.ha.tolerance import Tolerance, tolerated_failures
from corral.engines.planning.model import Fleet, Protection
from corral.services.ha_live import DEFAULT_NAME, Protected
from corral.services.ha_live_views import PlanEntry
from corral.store.db import Database
from corral.store.models import HAManagerStateRow


@dataclass(frozen=True)
class HostFailure:
    """If ``host`` failed: where each protected VM restarts, which protected VMs find no
    room (``lost``), and the running VMs without protection that stay down by design."""

    host: str
    restarts: tuple[PlanEntry, ...]
    lost: tuple[str, ...]
    unprotected: tuple[str, ...]


@dataclass(frozen=True)
class HAOutlook:
    #: "stored" (the HA manager's plan) or "inventory" (computed now from the last sync)
    source: str
    #: host failures the fleet's N+K setting asks it to survive (its K)
    failures_asked: int
    #: how many host failures, any of them, it survives now with every protected VM
    #: restarted (may exceed ``failures_asked``)
    failures_tolerated: int
    hosts: tuple[HostFailure, ...]
    #: the most it may survive when not every failure set could be checked (else equal)
    failures_tolerated_at_most: int | None = None

    @property
    def tolerated_exactly(self) -> bool:
        return self.failures_tolerated_at_most in (None, self.failures_tolerated)

    @property
    def hosts_losing_vms(self) -> int:
        return sum(1 for h in self.hosts if h.lost)


def outlook(db: Database, live: Fleet, name: str = DEFAULT_NAME) -> HAOutlook:
    """The stored plan and fleet when a manager saved them, else those of ``live`` (the
    inventory's last sync) now."""
    with db.session() as s:
        row = s.get(HAManagerStateRow, name)
        stored = row.state.get("protected") if row is not None else None
    if stored is not None:
        saved = Protected.from_dict(stored)
        return of_fleet(saved.fleet, saved.plan, "stored")
    return of_fleet(live, plans_by_host(live), "inventory")


#: The last fleet's figure: the page's live fleet is the same object until the inventory
#: changes, and the figure may take a second on a large fleet.
_last: list[tuple[Fleet, Tolerance]] = []


def _tolerance(fleet: Fleet) -> Tolerance:
    if _last and _last[0][0] is fleet:
        return _last[0][1]
    found = tolerated_failures(fleet)
    _last[:] = [(fleet, found)]
    return found


def of_fleet(fleet: Fleet, plans: Mapping[str, Mapping[str, str]], source: str) -> HAOutlook:
    """The outlook of ``fleet`` under its per-host failover ``plans`` (host -> {VM -> target})."""
    asked = fleet.settings.ha_host_failures
    tolerated = _tolerance(fleet)
    running: dict[str, list[tuple[str, bool]]] = {}
    for vm in fleet.vms:
        if vm.running and vm.host is not None:
            running.setdefault(vm.host, []).append((vm.name, vm.protection is Protection.none))
    hosts = []
    for host in sorted(h.name for h in fleet.hosts):
        plan = plans.get(host, {})
        on_host = sorted(running.get(host, []))
        hosts.append(
            HostFailure(
                host=host,
                restarts=tuple(PlanEntry(host, vm, target) for vm, target in sorted(plan.items())),
                lost=tuple(vm for vm, bare in on_host if not bare and vm not in plan),
                unprotected=tuple(vm for vm, bare in on_host if bare),
            )
        )
    return HAOutlook(source, asked, tolerated.at_least, tuple(hosts), tolerated.at_most)


__all__ = ["HAOutlook", "HostFailure", "of_fleet", "outlook"]
