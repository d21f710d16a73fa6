"""``corral ha maintenance enter|abort|exit HOST``: empty a host with live migrations, mark it.

Entering marks the host first (``entering``), so the HA manager at once stops placing
recovered VMs on it; then every running protected VM of the host is live-migrated to
the destination :func:`~corral.engines.ha_manager.evacuate.evacuation` chooses (its
failover plan's target, else the placement engine's) by an
:class:`~corral.engines.ha_manager.evacuation_run.EvacuationRun` — the same run the
simulator plays: a few at a time, each under a deadline. Where a VM runs afterwards is
read back from both hosts, never assumed: a failed migration leaves the VM running where
it was (libvirt resumes it there) and is reported with libvirt's reason. After each step
the run writes its moves and progress to the mark and reads whether an abort was asked;
its events go to the HA event log (each audited). The leading manager applies the moves
to its records; once every protected VM has left, the mark is ``in`` and the manager no
longer checks the host, so its daemon may be stopped without it being fenced. A VM that
could not move keeps the host ``entering`` (and watched).

Aborting stops the run between migrations: none is begun any more, the ones in flight are
cancelled (abortJob; one that completed first stays moved), and the mark becomes
``aborted``: the host is back in service. Exiting clears the mark.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from corral.config import Settings
from corral.engines.ha_manager import plans_by_host
from corral.engines.ha_manager.evacuate import evacuation
from corral.engines.ha_manager.evacuation_run import EvacuationRun, VMMove
from corral.engines.ha_manager.events import Event
from corral.errors import ConflictError, CorralError, HostUnreachableError, NotFoundError
from corral.inventory.service import Inventory
from corral.services.fleet import live_fleet
from corral.services.ha_live import DEFAULT_NAME
from corral.services.ha_live_policy import HAPolicyFile, load_policy
from corral.services.ha_migrations import LiveMigrations
from corral.store import ha_maintenance, ha_state
from corral.store import models as m

log = logging.getLogger(__name__)

SKIPPED = "skipped"
#: seconds between two steps of an evacuation (and two reads of an abort's end)
STEP_S = 0.5

__all__ = ["MaintenanceReport", "MaintenanceService", "VMMove"]


@dataclass(frozen=True)
class MaintenanceReport:
    host: str
    #: entering (some protected VM still on it) | in (evacuated) | out (mark cleared) |
    #: aborting (the running evacuation was asked to stop) | aborted (back in service)
    state: str
    moves: tuple[VMMove, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class HAOperation:
    """What a service that moves VMs for the HA manager holds: the inventory, the manager's
    name and policy, who asked, and the clock (maintenance and rebalance share it)."""

    def __init__(
        self,
        inventory: Inventory,
        settings: Settings,
        *,
        name: str = DEFAULT_NAME,
        policy: HAPolicyFile | None = None,
        by: str = "",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inventory = inventory
        self.name = name
        self.policy = policy or load_policy(settings)
        self.by = by
        self.clock, self.sleep = clock, sleep


class MaintenanceService(HAOperation):
    def __init__(self, inventory: Inventory, settings: Settings, **kw: Any) -> None:
        super().__init__(inventory, settings, **kw)
        self.runner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    def enter(
        self, host: str, progress: Callable[[float], None] | None = None
    ) -> MaintenanceReport:
        uris = self._uris()
        if host not in uris:
            raise NotFoundError(f"Host {host} is not in the inventory; see 'corral hosts list'.")
        db = self.inventory.db
        ha_maintenance.enter(db, self.name, host, self.by, self.runner)
        try:
            run, unprotected, migrations = self._prepare(host, uris)
            self._carry_out(run, migrations, progress)
        except BaseException:
            ha_maintenance.finish(db, self.name, host, self.runner, {}, ha_maintenance.ENTERING)
            raise
        ha_maintenance.finish(db, self.name, host, self.runner, run.moved(), run.state)
        self._resync()
        moves = sorted(run.moves, key=lambda mv: mv.vm)
        return MaintenanceReport(host, run.state, tuple(moves + unprotected))

    def abort(self, host: str, *, wait: bool = True) -> MaintenanceReport:
        """Stop the evacuation of ``host`` and put it back in service. With a run going on,
        it is asked to stop and (``wait``) followed until it has; without one, the mark is
        aborted at once."""
        db = self.inventory.db
        before = ha_maintenance.request_abort(db, self.name, host)
        who = self.by or "operator"
        now = datetime.now(UTC)
        if not before.running(now):
            self._log([Event(self.clock(), "evacuation_abort", host, detail=f"{who}; no run")])
            return MaintenanceReport(host, ha_maintenance.ABORTED, _moved(before))
        self._log([Event(self.clock(), "evacuation_abort_asked", host, detail=who)])
        limit = self.clock() + self.policy.migration.timeout_s + 60
        while wait and self.clock() < limit:
            mark = ha_maintenance.mark(db, self.name, host)
            if mark is None or mark.runner != before.runner or not mark.running(datetime.now(UTC)):
                state = mark.state if mark is not None else "out"
                return MaintenanceReport(host, state, _moved(mark) if mark else ())
            self.sleep(STEP_S)
        return MaintenanceReport(host, "aborting", _moved(before))

    def exit(self, host: str) -> MaintenanceReport:
        if not ha_maintenance.leave(self.inventory.db, self.name, host):
            raise ConflictError(f"Host {host} is not in maintenance; nothing to exit.")
        return MaintenanceReport(host, "out")

    # ------------------------------------------------------------ migrating

    def _prepare(
        self, host: str, uris: dict[str, str]
    ) -> tuple[EvacuationRun, list[VMMove], LiveMigrations]:
        self._read(host)
        snap = live_fleet(self.inventory)
        fleet = snap.fleet
        uuids = {str(v["name"]): str(v["uuid"]) for v in snap.document["vms"]}
        marks = ha_maintenance.marks(self.inventory.db, self.name)
        others = {h for h, mk in marks.items() if mk.active} - {host}
        plan = plans_by_host(fleet).get(host, {})
        dests = evacuation(fleet, host, plan, others)
        unprotected = [
            VMMove(v.name, host, None, SKIPPED, "not protected: left on the host")
            for v in fleet.vms
            if v.host == host and v.running and v.name not in {d.vm for d in dests}
        ]
        mig = self.policy.migration
        run = EvacuationRun(host, dests, max_parallel=mig.max_parallel, timeout_s=mig.timeout_s)
        return run, unprotected, LiveMigrations(self.inventory, uuids, uris, mig, self.clock)

    def _carry_out(
        self,
        run: EvacuationRun,
        migrations: LiveMigrations,
        progress: Callable[[float], None] | None,
    ) -> None:
        """Step the run until it ends; after each step its events are logged, its moves and
        progress written to the mark, and an abort asked meanwhile is passed on."""
        db, host = self.inventory.db, run.host
        while True:
            events = run.step(migrations)
            self._log(events)
            if progress is not None and run.total:
                progress(len(run.moves) / run.total)
            if run.finished:
                return
            beat = (len(run.moves), run.total)
            if ha_maintenance.beat(db, self.name, host, self.runner, run.moved(), beat):
                self._log(run.abort(self.clock(), self.by or "operator"))
            self.sleep(STEP_S)

    def _log(self, events: list[Event]) -> None:
        """The run's events in the HA event log (each row is audited by the session hook)."""
        for e in events:
            log.info("maintenance: %s", e.line().strip())
        if events:
            ha_state.append_events(self.inventory.db, self.name, [e.to_dict() for e in events])

    def _read(self, host: str) -> None:
        """Sync, so the VMs of ``host`` are known now; a host that does not answer cannot
        be emptied (what runs on it is unknown): it stays 'entering' and the caller hears."""
        report = self.inventory.sync()
        result = next((r for r in report.hosts if r.host == host), None)
        if result is not None and result.error:
            raise HostUnreachableError(
                f"Host {host} did not answer ({result.error}); nothing was moved and it stays "
                "'entering' (no VM is placed on it). Try again when it answers."
            )

    def _uris(self) -> dict[str, str]:
        with self.inventory.db.session() as s:
            return {h.name: h.uri for h in s.scalars(select(m.Host))}

    def _resync(self) -> None:
        try:
            self.inventory.sync()
        except CorralError as exc:  # the moves are recorded; the next sync shows them
            log.info("sync after maintenance failed: %s", exc.message)


def _moved(mark: ha_maintenance.Mark) -> tuple[VMMove, ...]:
    return tuple(
        VMMove(vm, mark.host, target, "moved", "moved before the abort")
        for vm, target in sorted(mark.moves.items())
    )
