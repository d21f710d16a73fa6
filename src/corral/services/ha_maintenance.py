"""``corral ha maintenance enter|exit HOST``: empty a host with live migrations, mark it.

Entering marks the host first (``entering``), so the HA manager at once stops placing
recovered VMs on it; then every running protected VM of the host is live-migrated to
the destination :func:`~corral.engines.ha_manager.evacuate.evacuation` chooses (its
failover plan's target, else the placement engine's), a few at a time, each under a
deadline. Where a VM runs afterwards is read back from both hosts, never assumed: a
failed migration leaves the VM running where it was (libvirt resumes it there) and is
reported with libvirt's reason. The VMs that moved are written to the mark, and the
leading manager applies them to its records; once every protected VM has left, the
mark is ``in`` and the manager no longer checks the host, so its daemon may be stopped
without it being fenced. A VM that could not move keeps the host ``entering`` (and
watched). Exiting clears the mark.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from corral.config import Settings
from corral.engines.ha_manager import plans_by_host
from corral.engines.ha_manager.evacuate import Destination, evacuation
from corral.errors import ConflictError, CorralError, HostUnreachableError, NotFoundError
from corral.hypervisor import deadline
from corral.hypervisor.uri import redact
from corral.inventory.service import Inventory
from corral.services.fleet import live_fleet
from corral.services.ha_live import DEFAULT_NAME
from corral.services.ha_live_policy import HAPolicyFile, MigrationPolicy, load_policy
from corral.store import ha_maintenance
from corral.store import models as m

log = logging.getLogger(__name__)

MOVED, FAILED, SKIPPED = "moved", "failed", "skipped"


@dataclass(frozen=True)
class VMMove:
    vm: str
    source: str
    #: where it was sent (None: no host could take it, or not protected)
    target: str | None
    #: moved | failed (still on its host) | skipped (not protected, or nowhere to go)
    outcome: str
    detail: str
    seconds: float | None = None


@dataclass(frozen=True)
class MaintenanceReport:
    host: str
    #: entering (some protected VM still on it) | in (evacuated) | out (mark cleared)
    state: str
    moves: tuple[VMMove, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MaintenanceService:
    def __init__(
        self,
        inventory: Inventory,
        settings: Settings,
        *,
        name: str = DEFAULT_NAME,
        policy: HAPolicyFile | None = None,
        by: str = "",
    ) -> None:
        self.inventory = inventory
        self.name = name
        self.policy = policy or load_policy(settings)
        self.by = by

    def enter(
        self, host: str, progress: Callable[[float], None] | None = None
    ) -> MaintenanceReport:
        uris = self._uris()
        if host not in uris:
            raise NotFoundError(f"Host {host} is not in the inventory; see 'corral hosts list'.")
        db = self.inventory.db
        ha_maintenance.enter(db, self.name, host, self.by)
        self._read(host)
        snap = live_fleet(self.inventory)
        fleet = snap.fleet
        uuids = {str(v["name"]): str(v["uuid"]) for v in snap.document["vms"]}
        others = set(ha_maintenance.marks(db, self.name)) - {host}
        plan = plans_by_host(fleet).get(host, {})
        dests = evacuation(fleet, host, plan, others)
        unprotected = [
            VMMove(v.name, host, None, SKIPPED, "not protected: left on the host")
            for v in fleet.vms
            if v.host == host and v.running and v.name not in {d.vm for d in dests}
        ]
        moves = self._migrate(host, dests, uuids, uris, progress)
        moved = {mv.vm: mv.target for mv in moves if mv.outcome == MOVED and mv.target}
        state = (
            ha_maintenance.IN
            if all(mv.outcome == MOVED for mv in moves)
            else ha_maintenance.ENTERING
        )
        ha_maintenance.record(db, self.name, host, moved, state)
        self._resync()
        return MaintenanceReport(host, state, tuple(moves + unprotected))

    def exit(self, host: str) -> MaintenanceReport:
        if not ha_maintenance.leave(self.inventory.db, self.name, host):
            raise ConflictError(f"Host {host} is not in maintenance; nothing to exit.")
        return MaintenanceReport(host, "out")

    # ------------------------------------------------------------ migrating

    def _migrate(
        self,
        host: str,
        dests: list[Destination],
        uuids: dict[str, str],
        uris: dict[str, str],
        progress: Callable[[float], None] | None,
    ) -> list[VMMove]:
        mig = self.policy.migration
        ready = [d for d in dests if d.target is not None]
        tasks = {
            d.vm: _task(self.inventory, host, uuids[d.vm], uris[d.target], mig)
            for d in ready
            if d.target is not None
        }
        started = {d.vm: time.monotonic() for d in ready}
        done: list[str] = []

        def finished(out: deadline.Outcome[float]) -> None:
            done.append(out.key)
            if progress is not None:
                progress(len(done) / max(len(tasks), 1))

        outcomes = deadline.run_all(
            tasks, mig.timeout_s, max_parallel=mig.max_parallel, on_outcome=finished
        )
        moves = [VMMove(d.vm, host, None, FAILED, d.why) for d in dests if d.target is None]
        for d in ready:
            assert d.target is not None
            out = outcomes[d.vm]
            waited = time.monotonic() - started[d.vm]
            moves.append(self._verify(host, d, uuids[d.vm], out, waited, uris[d.target]))
        return sorted(moves, key=lambda mv: mv.vm)

    def _verify(
        self,
        host: str,
        d: Destination,
        uuid: str,
        out: deadline.Outcome[float],
        waited: float,
        dest_uri: str,
    ) -> VMMove:
        """Where the VM runs now, read from both hosts; the outcome says why if not moved."""
        assert d.target is not None
        if out.status is deadline.Status.LATE:
            why = "no answer within the migration deadline; it may still complete"
        elif out.error is not None:
            why = out.error.message if isinstance(out.error, CorralError) else repr(out.error)
        else:
            why = ""
        why = why.replace(dest_uri, redact(dest_uri))  # libvirt may quote it: no user info
        on_target = self._state(d.target, uuid) == "running"
        if on_target and not why:
            return VMMove(d.vm, host, d.target, MOVED, d.why, out.value or waited)
        if on_target:
            return VMMove(d.vm, host, d.target, MOVED, f"{d.why}; {why}", waited)
        where = (
            "still running on its host"
            if self._state(host, uuid) == "running"
            else ("running on neither host: check it")
        )
        log.warning("maintenance: %s did not move to %s: %s", d.vm, d.target, why)
        return VMMove(d.vm, host, d.target, FAILED, f"{where}: {why or 'not running there'}")

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

    def _state(self, host: str, uuid: str) -> str:
        try:
            return str(self.inventory.open_host(host).run_state(uuid))
        except CorralError as exc:
            log.info("cannot read %s on %s: %s", uuid, host, exc.message)
            return "unknown"

    def _uris(self) -> dict[str, str]:
        with self.inventory.db.session() as s:
            return {h.name: h.uri for h in s.scalars(select(m.Host))}

    def _resync(self) -> None:
        try:
            self.inventory.sync()
        except CorralError as exc:  # the moves are recorded; the next sync shows them
            log.info("sync after maintenance failed: %s", exc.message)


def _task(
    inventory: Inventory, host: str, uuid: str, dest_uri: str, mig: MigrationPolicy
) -> Callable[[], float]:
    """One migration on a connection of its own (a shared one would serialise them)."""
    opener = inventory.own_opener(host)

    def run() -> float:
        began = time.monotonic()
        conn = opener()
        try:
            conn.migrate_live(uuid, dest_uri, migration_uri=mig.uri, unsafe=mig.unsafe)
        finally:
            conn.close()
        return time.monotonic() - began

    return run
