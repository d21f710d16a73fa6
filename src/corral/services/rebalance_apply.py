"""``corral plan rebalance --apply``: carry the rebalance plan out with real live migrations.

The plan is the planning engine's (services.planning.rebalance) on the inventory's fresh
sync, its steps already in a safe order. They are carried out by the maintenance
evacuation's own step machine (engines.ha_manager.evacuation_run, with each VM's source
host) and its libvirt migrations (services.ha_migrations): a few at a time (the HA
policy's ``migration.max_parallel``), each under its deadline, each checked afterwards by
asking both hosts where the VM runs.

Order matters where the plan counted on room: the steps are cut into waves, a wave ending
before a step that moves a VM already in it or that goes to a host a step of the wave is
emptying. A wave's migrations run together; the next wave starts when it has ended. A
migration that fails is reported with the hypervisor's reason and the VM stays where it
was; the rest go on, except the steps that relied on it: a later hop of the same VM, and
any move INTO the host that VM should have left (the room is not there). An abort (the
job's cancel, Ctrl-C) starts nothing more and cancels the migrations in flight. Every
step is an event in the HA event log (each row audited, with who asked); a VM that moved
gets a ``vm_rebalanced`` event, from which the leading HA manager learns its new host at its
next round (and re-reads the fleet and its failover plan).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from corral.engines.ha_manager.evacuate import Destination
from corral.engines.ha_manager.evacuation_run import (
    ABORTED,
    FAILED,
    MOVED,
    EvacuationRun,
    VMMove,
)
from corral.engines.ha_manager.events import Event
from corral.engines.planning.consolidation.plan import Move
from corral.errors import CorralError, HostUnreachableError
from corral.services import planning
from corral.services.fleet import live_fleet
from corral.services.ha_live import REBALANCED
from corral.services.ha_maintenance import HAOperation
from corral.services.ha_migrations import LiveMigrations
from corral.store import ha_maintenance, ha_state
from corral.store import models as m

log = logging.getLogger(__name__)

LABEL = "rebalance"
SKIPPED = "skipped"
#: seconds between two steps of a wave
STEP_S = 0.5

#: done: every step moved; partial: some did not (see each move); aborted: stopped on request
DONE, PARTIAL = "done", "partial"


@dataclass(frozen=True)
class RebalanceApplyReport:
    state: str
    planned: int
    max_load_before: float
    max_load_after: float
    moves: tuple[VMMove, ...] = ()
    #: VM -> host, where each VM that moved runs now
    placement: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> tuple[VMMove, ...]:
        return tuple(mv for mv in self.moves if mv.outcome != MOVED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def waves(steps: Sequence[Move]) -> list[list[Move]]:
    """The plan's steps cut where a step needs an earlier one of its wave to have ended:
    the same VM again, or a target that a step of the wave is emptying (a pure function)."""
    out: list[list[Move]] = []
    current: list[Move] = []
    for step in steps:
        vms = {s.vm for s in current}
        sources = {s.source for s in current}
        if current and (step.vm in vms or step.target in sources):
            out.append(current)
            current = []
        current.append(step)
    if current:
        out.append(current)
    return out


def blocked_by(step: Move, failed: Sequence[VMMove]) -> str:
    """Why ``step`` may not run after the ``failed`` moves ('' when it may)."""
    for mv in failed:
        if mv.vm == step.vm:
            return f"skipped: its earlier move ({mv.source} to {mv.target}) failed"
        if step.target == mv.source:
            return f"skipped: {mv.vm} did not leave {mv.source}, so the room is not there"
    return ""


class RebalanceApply(HAOperation):
    def apply(
        self, max_migrations: int = 10, progress: Callable[[float], None] | None = None
    ) -> RebalanceApplyReport:
        """Plan on a fresh sync, then migrate. An exception while it runs (the job's cancel
        raised by ``progress``, Ctrl-C) aborts it: the report then says ``aborted``."""
        self._sync()
        snap = live_fleet(self.inventory)
        plan = planning.rebalance(snap.fleet, max_migrations)
        uuids = {str(v["name"]): str(v["uuid"]) for v in snap.document["vms"]}
        mig = self.policy.migration
        migrations = LiveMigrations(self.inventory, uuids, self._uris(), mig, self.clock)
        steps = plan.schedule.steps
        self._log([Event(self.clock(), "rebalance_begin", LABEL, detail=f"{len(steps)} moves")])
        moves = self._carry_out(steps, migrations, progress)
        state = DONE if all(mv.outcome == MOVED for mv in moves) else PARTIAL
        if any(mv.outcome == "cancelled" for mv in moves):
            state = ABORTED
        self._log([Event(self.clock(), "rebalance_end", LABEL, detail=_summary(state, moves))])
        self._resync()
        placement = {mv.vm: str(mv.target) for mv in moves if mv.outcome == MOVED}
        return RebalanceApplyReport(
            state, len(steps), plan.max_load_before, plan.max_load_after, tuple(moves), placement
        )

    def _carry_out(
        self,
        steps: Sequence[Move],
        migrations: LiveMigrations,
        progress: Callable[[float], None] | None,
    ) -> list[VMMove]:
        done: list[VMMove] = []
        held = self._in_maintenance()
        stop = False
        for wave in waves(steps):
            runnable = []
            for step in wave:
                why = blocked_by(step, [mv for mv in done if mv.outcome != MOVED])
                if not why and {step.source, step.target} & held:
                    why = "skipped: a host of this move is in maintenance"
                if stop or why or step.source is None:
                    detail = "not begun: aborted" if stop else why or "not placed yet"
                    outcome = "cancelled" if stop else SKIPPED
                    done.append(VMMove(step.vm, step.source or "", step.target, outcome, detail))
                else:
                    runnable.append(step)
            if runnable:
                stop = self._wave(runnable, migrations, done, len(steps), progress) or stop
        return done

    def _wave(
        self,
        wave: list[Move],
        migrations: LiveMigrations,
        done: list[VMMove],
        total: int,
        progress: Callable[[float], None] | None,
    ) -> bool:
        """Run one wave to its end; True when it was aborted."""
        mig = self.policy.migration
        run = EvacuationRun(
            LABEL,
            [Destination(s.vm, s.target, "rebalance") for s in wave],
            max_parallel=mig.max_parallel,
            timeout_s=mig.timeout_s,
            sources={s.vm: str(s.source) for s in wave},
        )
        try:
            while not self._step(run, migrations):
                if progress is not None:
                    progress((len(done) + len(run.moves)) / max(total, 1))
                self.sleep(STEP_S)
        except BaseException as exc:  # the caller's cancel, or Ctrl-C: abort
            log.info("rebalance aborted: %r", exc)
            self._log(run.abort(self.clock(), self.by or "operator"))
            while not self._step(run, migrations):  # the flights are cancelled, then read
                self.sleep(STEP_S)
        done += run.moves
        return run.aborting

    def _step(self, run: EvacuationRun, migrations: LiveMigrations) -> bool:
        """One step of ``run``, logged; True when it has ended. Each VM that moved gets a
        ``vm_rebalanced`` event too (on its new host, "from SOURCE"): the leading HA manager
        reads those to follow the move (services.ha_live)."""
        before = len(run.moves)
        events = [e for e in run.step(migrations) if e.kind.startswith("migration_")]
        now = self.clock()
        events += [
            Event(now, REBALANCED, mv.target, mv.vm, f"from {mv.source}")
            for mv in run.moves[before:]
            if mv.outcome == MOVED
        ]
        self._log(events)
        return run.finished

    def _log(self, events: list[Event]) -> None:
        """Into the HA event log: each row is audited (the actor is the caller's)."""
        for e in events:
            log.info("rebalance: %s", e.line().strip())
        if events:
            ha_state.append_events(self.inventory.db, self.name, [e.to_dict() for e in events])

    def _in_maintenance(self) -> set[str]:
        marks = ha_maintenance.marks(self.inventory.db, self.name)
        return {h for h, mk in marks.items() if mk.active}

    def _sync(self) -> None:
        report = self.inventory.sync()
        bad = [r for r in report.hosts if r.error]
        if bad:
            names = ", ".join(r.host for r in bad)
            raise HostUnreachableError(
                f"Hosts {names} did not answer; nothing was moved. Try again when they answer."
            )

    def _uris(self) -> dict[str, str]:
        with self.inventory.db.session() as s:
            return {h.name: h.uri for h in s.scalars(select(m.Host))}

    def _resync(self) -> None:
        try:
            self.inventory.sync()
        except CorralError as exc:  # the moves are in the report; the next sync shows them
            log.info("sync after the rebalance failed: %s", exc.message)


def _summary(state: str, moves: Sequence[VMMove]) -> str:
    counts = {o: sum(mv.outcome == o for mv in moves) for o in (MOVED, FAILED, SKIPPED)}
    return f"{state}: " + ", ".join(f"{n} {o}" for o, n in counts.items())
