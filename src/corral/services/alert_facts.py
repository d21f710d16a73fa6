"""What the alert rules read besides metrics: the fleet as the planner sees it (HA rules),
licence use (licence rules) and each protected VM's newest restore point (backup rules).

Read only when a rule asks (``Needs.facts``), from the same sources the rest of Corral uses:
the live inventory's last sync (corral.services.fleet), the cost model's licence verdicts
(corral.services.cost) and the backup repository on disk with the backup policy's RPOs, so
an alert never disagrees with ``corral plan ha``, ``corral cost licences`` or ``corral backup``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from corral.config import Settings
from corral.engines.alerting import BackupAge, Fact, LicenceCount
from corral.engines.backup import Policy
from corral.engines.costing import CostModel, load_cost_model
from corral.engines.planning.model import Fleet
from corral.inventory.service import Inventory
from corral.services import cost
from corral.services.backup import load_policy
from corral.services.backup_exec import repository
from corral.services.fleet import FleetSnapshot, live_fleet
from corral.store import models as m
from corral.store.backup_repo import Repository


@dataclass(frozen=True)
class Facts:
    fleet: Fleet | None = None
    licences: tuple[LicenceCount, ...] = ()
    backups: tuple[BackupAge, ...] = ()


@dataclass(frozen=True)
class FactReader:
    inventory: Inventory
    cost_model: CostModel
    backup_policy: Policy
    repository: Repository

    @classmethod
    def from_settings(cls, settings: Settings, inventory: Inventory) -> FactReader:
        return cls(
            inventory,
            load_cost_model(settings.cost_model),
            load_policy(settings),
            repository(settings),
        )

    def read(self, wanted: frozenset[Fact]) -> Facts:
        snap = live_fleet(self.inventory) if wanted & {"fleet", "licences"} else None
        return Facts(
            fleet=snap.fleet if snap is not None and "fleet" in wanted else None,
            licences=self._licences(snap) if snap is not None and "licences" in wanted else (),
            backups=self._backups() if "backups" in wanted else (),
        )

    def _licences(self, snap: FleetSnapshot) -> tuple[LicenceCount, ...]:
        usage = cost.licence_compliance(snap.records, self.cost_model).usage
        return tuple(
            LicenceCount(u.product, u.deployed, u.entitlements, u.status.value) for u in usage
        )

    def _backups(self) -> tuple[BackupAge, ...]:
        """Every running VM the policy backs up, with its newest sealed restore point."""
        newest: dict[str, float] = defaultdict(float)
        for point in self.repository.points():
            newest[point.vm_uuid] = max(newest[point.vm_uuid], point.taken_at.timestamp())
        out = []
        for uuid, name, host, tier in self._running():
            rules = self.backup_policy.for_vm(name, tier).rules
            if rules.backed_up:
                taken = newest.get(uuid)
                out.append(BackupAge(name, host, rules.rpo_minutes * 60.0, taken))
        return tuple(out)

    def _running(self) -> Sequence[tuple[str, str, str, str | None]]:
        with self.inventory.db.session() as s:
            rows = s.execute(
                select(m.VM.uuid, m.VM.name, m.Host.name, m.VM.protection_tier)
                .join(m.Host, m.VM.host_id == m.Host.id)
                .where(m.VM.deleted_at.is_(None), m.VM.state == "running")
                .order_by(m.VM.name)
            ).all()
        return [(u, n, h, t) for u, n, h, t in rows]
