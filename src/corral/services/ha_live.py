"""``corral ha run``: the HA manager against the live fleet, active/standby.

Each round the instance first makes sure it leads (:class:`~corral.store.ha_leader.Leadership`);
a standby only waits. The leader runs one :meth:`Manager.tick` against the
:class:`~corral.services.ha_live_env.LiveEnvironment` and saves, in one transaction, the
manager's state with the fleet, failover plan and VM definitions it protects, and the
round's events (each event row is audited by the session hook of services/audit.py).
A new leader resumes from that saved state exactly as the simulator's manager restart
does: a fence in flight is begun again, VMs that were starting are polled, not restarted.

The protected fleet and its plan are read from the inventory when the leader starts and
again whenever every host is online and every VM runs (the fleet cannot be re-read from a
dead host, and its VMs must stay known until they are recovered). VMs live-migrated by
others are applied at the start of each round: a maintenance run's moves (its mark) and a
rebalance's (its ``vm_rebalanced`` events, read past the last one the leader applied, kept
with the saved state); after a rebalance move the fleet and plan are re-read at once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import make_msgid
from typing import Any

from corral.config import Settings
from corral.engines.ha_manager import Event, HostState, Manager, VMState, plans_by_host
from corral.engines.ha_manager.events import ALERTS
from corral.engines.ha_manager.manager import initial_state
from corral.engines.planning.model import Fleet, Protection
from corral.errors import CorralError
from corral.inventory.service import Inventory
from corral.notify.mailer import Mail, Mailer
from corral.services.audit import Actor, acting_as
from corral.services.fleet import live_fleet, parse_fleet_document
from corral.services.ha_drill_schedule import DrillScheduler
from corral.services.ha_fencing import FenceRunner
from corral.services.ha_live_env import LiveEnvironment
from corral.services.ha_live_policy import HAPolicyFile, load_policy
from corral.store import ha_maintenance, ha_state
from corral.store.ha_leader import Leadership

log = logging.getLogger(__name__)

DEFAULT_NAME = "default"
#: Events mailed: the manager's alerts and the failures that lead to them.
MAILED = ALERTS | {"host_failed", "fence_failed", "fence_timeout"}
#: Calm rounds between two reads of the fleet and plan.
REFRESH_ROUNDS = 12
#: The event of a VM that ``corral plan rebalance --apply`` live-migrated (services.
#: rebalance_apply): host = where it runs now, detail = "from SOURCE".
REBALANCED = "vm_rebalanced"


@dataclass
class Protected:
    """What the leader protects: the fleet document, its plan, and each VM's definition."""

    document: Mapping[str, Any]
    plan: dict[str, dict[str, str]]
    #: VM name -> (uuid, libvirt's inactive XML)
    definitions: dict[str, tuple[str, bytes]]

    @property
    def fleet(self) -> Fleet:
        return parse_fleet_document(self.document, "HA manager's fleet").fleet

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet": dict(self.document),
            "plan": self.plan,
            "definitions": {k: [u, x.decode()] for k, (u, x) in self.definitions.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Protected:
        defs = {k: (str(v[0]), str(v[1]).encode()) for k, v in data["definitions"].items()}
        return cls(data["fleet"], {h: dict(p) for h, p in data["plan"].items()}, defs)


@dataclass(frozen=True)
class RoundReport:
    leader: bool
    events: tuple[Event, ...] = ()


class HALiveService:
    def __init__(
        self,
        inventory: Inventory,
        settings: Settings,
        *,
        name: str = DEFAULT_NAME,
        instance: str | None = None,
        mailer: Mailer | None = None,
        policy: HAPolicyFile | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inventory = inventory
        self.settings = settings
        self.name = name
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        self.mailer = mailer
        self.policy = policy or load_policy(settings)
        self.clock = clock
        self.leadership = Leadership(inventory.db, name)
        self.manager: Manager | None = None
        self.env: LiveEnvironment | None = None
        self.protected: Protected | None = None
        self._calm_rounds = 0
        #: the id of the last HA event this leader looked at for rebalance moves
        self._moves_seen = 0
        self.drills = self._scheduler()

    # ------------------------------------------------------------ rounds

    def run(self, cycles: int | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        """Round after round (``cycles`` of them, or until interrupted)."""
        done = 0
        try:
            while cycles is None or done < cycles:
                self.round()
                done += 1
                if cycles is None or done < cycles:
                    sleep(self.policy.config.check_interval_s)
        finally:
            self.close()

    def round(self) -> RoundReport:
        if self.manager is None:
            if not self.leadership.acquire():
                return RoundReport(leader=False)
            lead = self._take_over()
        elif not self.leadership.held():
            log.warning("HA manager %s lost the lead; standing by", self.instance)
            self._stand_down()
            return RoundReport(leader=False)
        else:
            lead = []
        assert self.manager is not None and self.env is not None
        events = lead + self._apply_maintenance() + self._apply_rebalance()
        events += self.manager.tick(self.env)
        events += self._maybe_refresh()
        self._save(events)
        events += self._drill_if_due()
        self._alert(events)
        return RoundReport(True, tuple(events))

    def close(self) -> None:
        self._stand_down()

    def _drill_if_due(self) -> list[Event]:
        """After the round is saved (the drill checks that a leader is fresh): start the
        scheduled drill that is due; its event goes to the log at once."""
        if self.drills is None or self.manager is None:
            return []
        events = self.drills.tick(self.manager.state)
        if events:
            with acting_as(Actor("ha-manager", "system", f"ha run {self.instance}")):
                ha_state.append_events(self.inventory.db, self.name, [e.to_dict() for e in events])
        return events

    def _scheduler(self) -> DrillScheduler | None:
        schedule = self.policy.drills.schedule
        if schedule is None:
            return None
        return DrillScheduler(
            self.inventory, self.settings, schedule, name=self.name, policy=self.policy,
            clock=self.clock,
        )  # fmt: skip

    # ------------------------------------------------------------ leading

    def _take_over(self) -> list[Event]:
        saved = ha_state.load_state(self.inventory.db, self.name)
        cfg, pol = self.policy.config, self.policy.policy
        # Before the fleet is read: a move logged meanwhile is applied, never missed.
        self._moves_seen = ha_state.last_event_id(self.inventory.db, self.name)
        if saved and "protected" in saved:
            self._moves_seen = int(saved.get("moves_seen", self._moves_seen))
            self.protected = Protected.from_dict(saved["protected"])
            fleet = self.protected.fleet
            self.manager = Manager.resume(fleet, self.protected.plan, saved["manager"], cfg, pol)
            how = "resumed the saved state"
        else:
            self.protected = survey(self.inventory)
            fleet = self.protected.fleet
            self.manager = Manager(fleet, self.protected.plan, cfg, pol)
            how = "read the fleet"
        self.env = self._environment(fleet, self.protected)
        log.info("HA manager %s leads (%s)", self.instance, how)
        events = [Event(self.clock(), "manager_leader", detail=f"{self.instance} {how}")]
        if self.drills is not None:
            events += self.drills.take_over(str((saved or {}).get("leader", "")))
        return events

    def _stand_down(self) -> None:
        if self.env is not None:
            self.env.close()
        self.env, self.manager, self.protected = None, None, None
        self.leadership.release()

    def _environment(self, fleet: Fleet, protected: Protected) -> LiveEnvironment:
        from corral.hypervisor.events import ensure_event_loop  # libvirt: on use

        ensure_event_loop()  # keepalive needs libvirt's event loop before connections open
        openers = {h.name: self.inventory.own_opener(h.name) for h in fleet.hosts}
        return LiveEnvironment(
            openers,
            FenceRunner(self.policy.fences),
            fleet,
            protected.definitions,
            timeout_s=min(self.settings.host_timeout_s, self.policy.config.check_interval_s * 2),
            start_timeout_s=self.settings.host_timeout_s,
            heartbeat_dir=self.policy.heartbeat_dir,
            heartbeat_max_age_s=self.policy.config.grace_s,
            clock=self.clock,
        )

    def _apply_maintenance(self) -> list[Event]:
        """The operators' maintenance marks (any process may set them) and the VMs they
        live-migrated, applied to the manager's state before the round's checks."""
        assert self.manager is not None and self.env is not None
        marks = ha_maintenance.marks(self.inventory.db, self.name)
        now, events = self.clock(), []
        for host in sorted(self.manager.state.hosts):
            on = host in marks and marks[host].active
            events += self.manager.set_maintenance(host, on, now)
        for mark in marks.values():
            for vm, target in sorted(mark.moves.items()):
                if target in self.manager.state.hosts:
                    moved = self.manager.vm_moved(vm, mark.host, target, now)
                    if moved:
                        self.env.relocated(vm, target)
                    events += moved
        return events

    def _apply_rebalance(self) -> list[Event]:
        """The VMs a rebalance live-migrated since the last round, applied like maintenance
        moves (only a VM still recorded on the move's source moves); any move makes the next
        calm round re-read the fleet and plan, so the failover plan follows it."""
        assert self.manager is not None and self.env is not None
        found = ha_state.events_after(self.inventory.db, self.name, self._moves_seen, [REBALANCED])
        events: list[Event] = []
        for event_id, e in found:
            self._moves_seen = event_id
            vm, target = str(e["vm"]), str(e["host"])
            source = str(e["detail"]).removeprefix("from ")
            if target not in self.manager.state.hosts:
                continue
            moved = self.manager.vm_moved(vm, source, target, self.clock())
            if moved:
                self.env.relocated(vm, target)
                self._calm_rounds = REFRESH_ROUNDS - 1
            events += moved
        return events

    def _maybe_refresh(self) -> list[Event]:
        """Re-read the fleet and plan after REFRESH_ROUNDS calm rounds (all online, all run)."""
        assert self.manager is not None
        st = self.manager.state
        calm = all(h.state is HostState.online or h.maintenance for h in st.hosts.values()) and all(
            v.state is VMState.running for v in st.vms.values()
        )
        self._calm_rounds = self._calm_rounds + 1 if calm else 0
        if self._calm_rounds < REFRESH_ROUNDS:
            return []
        self._calm_rounds = 0
        try:
            fresh = survey(self.inventory)
        except CorralError as exc:
            log.info("cannot re-read the fleet now: %s", exc.message)
            return []
        assert self.protected is not None
        if fresh.to_dict() == self.protected.to_dict():
            return []
        fleet = fresh.fleet
        state = initial_state(fleet)
        for host, rec in st.hosts.items():
            if host in state.hosts:
                state.hosts[host] = rec
        cfg, pol = self.policy.config, self.policy.policy
        self.manager = Manager(fleet, fresh.plan, cfg, pol, state)
        if self.env is not None:
            self.env.close()
        self.protected, self.env = fresh, self._environment(fleet, fresh)
        return [Event(self.clock(), "plan_recomputed", detail=f"{len(fleet.vms)} VMs")]

    # ------------------------------------------------------------ output

    def _save(self, events: list[Event]) -> None:
        assert self.manager is not None and self.protected is not None
        state = {
            "manager": self.manager.state.to_dict(),
            "protected": self.protected.to_dict(),
            "leader": self.instance,
            "moves_seen": self._moves_seen,
        }
        # The manager acts on its own: its transitions are audited under its own name.
        with acting_as(Actor("ha-manager", "system", f"ha run {self.instance}")):
            ha_state.save_round(
                self.inventory.db, self.name, state, self.manager.now, [e.to_dict() for e in events]
            )

    def _alert(self, events: list[Event]) -> None:
        to = self.settings.ha_alert_to
        for e in events:
            if e.kind not in MAILED:
                continue
            log.warning("HA alert: %s", e.line().strip())
            if self.mailer is None or not to:
                continue
            try:
                self.mailer.send(_mail(to, e))
            except CorralError as exc:
                log.warning("HA alert mail failed: %s", exc.message)


def survey(inventory: Inventory) -> Protected:
    """Sync the inventory; the fleet, its single-host failover plans and the definitions of
    the protected running VMs (read now, while their hosts answer)."""
    inventory.sync()
    snap = live_fleet(inventory)
    uuids = {str(v["name"]): str(v["uuid"]) for v in snap.document["vms"]}
    definitions: dict[str, tuple[str, bytes]] = {}
    for vm in snap.fleet.vms:
        if not vm.running or vm.host is None or vm.protection is Protection.none:
            continue
        uuid = uuids[vm.name]
        try:
            definitions[vm.name] = (uuid, inventory.open_host(vm.host).domain_xml(uuid))
        except CorralError as exc:
            log.info("no definition of %s: %s", vm.name, exc.message)
    return Protected(snap.document, plans_by_host(snap.fleet), definitions)


def _mail(to: str, e: Event) -> Mail:
    where = " ".join(x for x in (e.host, e.vm) if x)
    return Mail(
        to=to,
        subject=f"Corral HA: {e.kind.replace('_', ' ')} {where}".strip(),
        text=f"{e.kind} {where}: {e.detail}\n\nSee `corral ha status`.\n",
        message_id=make_msgid(domain="corral"),
        date=datetime.now(UTC),
    )
