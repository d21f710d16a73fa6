"""One maintenance evacuation carried out step by step: a few live migrations at a time,
each checked where the VM runs afterwards, and abortable between steps.

Why a step machine and not a loop with threads: the same run must play in the simulator
(where time moves only between manager rounds) and against libvirt (where a migration
takes seconds in a thread of its own). Each :meth:`EvacuationRun.step` asks its
:class:`Migrations` how the migrations in flight stand, starts new ones while fewer than
``max_parallel`` run, and returns the events of that step. An abort stops starting new
migrations and cancels the ones in flight (libvirt's abortJob: the guest resumes on its
host); a migration that completes before the cancel lands is kept (the VM runs on its
new host). A migration that overruns its deadline is cancelled the same way, and one that
answers neither is given up after ``cancel_wait_s`` and reported with where the VM runs.

What counts is never the call's return but where the VM runs afterwards, read from the
hosts: moved means running on the target alone.

A rebalance (services.rebalance_apply) plays the same run with VMs of several hosts:
``sources`` names each VM's host (``host`` is then only the run's label in its events).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from corral.engines.ha_manager.evacuate import Destination
from corral.engines.ha_manager.events import Event

MOVED, FAILED, SKIPPED, CANCELLED = "moved", "failed", "skipped", "cancelled"
#: How the run ended: every VM moved (in), some VM is still on the host (entering),
#: or an operator aborted it (aborted: the host goes back to service).
IN, ENTERING, ABORTED = "in", "entering", "aborted"


class MigrationState(enum.StrEnum):
    pending = "pending"
    done = "done"
    failed = "failed"


@dataclass(frozen=True)
class MigrationPoll:
    state: MigrationState
    #: the hypervisor's reason when failed
    detail: str = ""


class Migrations(Protocol):
    """What a run needs of the world: a clock, migrations, and where a VM runs."""

    def now(self) -> float: ...

    def begin(self, vm: str, source: str, target: str) -> None:
        """Start live-migrating ``vm`` (asynchronous: then :meth:`poll`)."""

    def poll(self, vm: str) -> MigrationPoll: ...

    def cancel(self, vm: str) -> None:
        """Ask the source to cancel the migration of ``vm`` (it may already be complete)."""

    def running_on(self, vm: str, hosts: tuple[str, ...]) -> tuple[str, ...]:
        """Which of ``hosts`` run ``vm`` now (a host that does not answer runs nothing)."""

    def unanswered(self, vm: str) -> tuple[str, ...]:
        """The hosts that did not answer the last :meth:`running_on` of ``vm``: where it
        runs there is unknown (a hung daemon; a late migration may still complete)."""


@dataclass(frozen=True)
class VMMove:
    vm: str
    source: str
    #: where it was sent (None: no host could take it, or not protected)
    target: str | None
    #: moved | failed (see detail) | skipped (not protected) | cancelled (by an abort)
    outcome: str
    detail: str
    seconds: float | None = None


@dataclass
class _Flight:
    dest: Destination
    started: float
    cancelled_at: float | None = None
    why: str = ""


@dataclass
class EvacuationRun:
    host: str
    destinations: list[Destination]
    max_parallel: int = 2
    timeout_s: float = 300.0
    #: after a cancel, how long a migration may take to answer before it is given up
    cancel_wait_s: float = 30.0
    #: VM -> the host it leaves, when not ``host`` (a rebalance moves VMs of many hosts)
    sources: dict[str, str] = field(default_factory=dict)
    moves: list[VMMove] = field(default_factory=list)
    aborting: bool = False
    _queue: list[Destination] = field(default_factory=list)
    _flights: dict[str, _Flight] = field(default_factory=dict)
    _begun: bool = False

    # ------------------------------------------------------------ progress

    @property
    def total(self) -> int:
        return len(self.destinations)

    @property
    def finished(self) -> bool:
        return self._begun and not self._flights and (self.aborting or not self._queue)

    @property
    def state(self) -> str:
        if self.aborting:
            return ABORTED
        return IN if all(mv.outcome == MOVED for mv in self.moves) else ENTERING

    def moved(self) -> dict[str, str]:
        """VM -> the host it runs on now, for every VM this run moved."""
        return {mv.vm: mv.target for mv in self.moves if mv.outcome == MOVED and mv.target}

    # ------------------------------------------------------------ steps

    def abort(self, now: float, by: str = "") -> list[Event]:
        """Start no more migrations; those in flight are cancelled at the next step."""
        if self.aborting or self.finished:
            return []
        self.aborting = True
        return [Event(now, "evacuation_abort", self.host, detail=by or "abort requested")]

    def step(self, env: Migrations) -> list[Event]:
        now, events = env.now(), []
        if not self._begun:
            events += self._start(now)
        for vm in sorted(self._flights):
            events += self._follow(env, vm, now)
        while not self.aborting and self._queue and len(self._flights) < self.max_parallel:
            dest = self._queue.pop(0)
            assert dest.target is not None
            self._flights[dest.vm] = _Flight(dest, now)
            env.begin(dest.vm, self.source_of(dest.vm), dest.target)
            events.append(Event(now, "migration_begin", dest.target, dest.vm, dest.why))
        if self.aborting:
            for d in self._queue:
                src = self.source_of(d.vm)
                not_begun = VMMove(d.vm, src, d.target, CANCELLED, "not begun: aborted")
                events.append(self._record(not_begun, now))
            self._queue = []
        if self.finished:
            events.append(Event(now, "evacuation_end", self.host, detail=self._summary()))
        return events

    def _start(self, now: float) -> list[Event]:
        self._begun = True
        self._queue = [d for d in self.destinations if d.target is not None]
        events = [Event(now, "evacuation_begin", self.host, detail=f"{self.total} VMs")]
        for d in self.destinations:
            if d.target is None:
                move = VMMove(d.vm, self.source_of(d.vm), None, FAILED, d.why)
                events.append(self._record(move, now))
        return events

    def _follow(self, env: Migrations, vm: str, now: float) -> list[Event]:
        flight = self._flights[vm]
        poll = env.poll(vm)
        if poll.state is MigrationState.pending:
            return self._maybe_cancel(env, vm, flight, now)
        del self._flights[vm]
        return [self._verify(env, flight, poll, now)]

    def _maybe_cancel(self, env: Migrations, vm: str, flight: _Flight, now: float) -> list[Event]:
        if flight.cancelled_at is None:
            late = now - flight.started >= self.timeout_s
            if not (self.aborting or late):
                return []
            flight.cancelled_at = now
            flight.why = "aborted by an operator" if self.aborting else "over its deadline"
            env.cancel(vm)
            return [Event(now, "migration_cancel", self.source_of(vm), vm, flight.why)]
        if now - flight.cancelled_at < self.cancel_wait_s:
            return []
        del self._flights[vm]
        silent = MigrationPoll(MigrationState.failed, "no answer to the cancel")
        return [self._verify(env, flight, silent, now)]

    def _verify(self, env: Migrations, flight: _Flight, poll: MigrationPoll, now: float) -> Event:
        """The move's outcome from where the VM runs now, not from what the call said."""
        d, src = flight.dest, self.source_of(flight.dest.vm)
        assert d.target is not None
        seconds = round(now - flight.started, 3)
        where = env.running_on(d.vm, (src, d.target))
        if where == (d.target,):
            return self._record(VMMove(d.vm, src, d.target, MOVED, d.why, seconds), now)
        why = poll.detail or flight.why or "not running on the target"
        if where == (src,):
            outcome = CANCELLED if flight.cancelled_at is not None and self.aborting else FAILED
            text = f"still running on its host: {why}"
        elif not where and (silent := env.unanswered(d.vm)):
            outcome = FAILED
            text = (
                f"host {', '.join(silent)} did not answer: where it runs is unknown, and the "
                f"migration may still end once it answers; check with 'corral sync' ({why})"
            )
        elif not where:
            outcome, text = FAILED, f"running on neither host: check it ({why})"
        else:
            outcome, text = FAILED, f"running on both hosts: stop one now ({why})"
        return self._record(VMMove(d.vm, src, d.target, outcome, text, seconds), now)

    def _record(self, move: VMMove, now: float) -> Event:
        self.moves.append(move)
        kind = {MOVED: "migration_done", CANCELLED: "migration_cancelled"}.get(
            move.outcome, "migration_failed"
        )
        return Event(now, kind, move.target or move.source, move.vm, move.detail)

    def source_of(self, vm: str) -> str:
        return self.sources.get(vm, self.host)

    def _summary(self) -> str:
        counts = {o: sum(mv.outcome == o for mv in self.moves) for o in (MOVED, FAILED, CANCELLED)}
        return f"{self.state}: " + ", ".join(f"{n} {o}" for o, n in counts.items())
