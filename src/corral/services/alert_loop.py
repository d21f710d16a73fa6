"""The alert evaluation loop: every ``interval_s`` the rules run on the stores and what is due
is sent, with nobody calling ``corral alerts evaluate``.

Why one evaluator: two processes evaluating at once would both find the same alert new and
both send the same outbox row. On PostgreSQL the evaluator that holds a session advisory lock
(corral.store.ha_leader.Leadership, the lock the HA manager leads with) evaluates; the others
stand by and take over the moment its connection ends (a SIGKILLed leader hands over at once).
SQLite has no such lock: there the evaluator holds an exclusive ``flock`` on a file beside the
database file (``FileLeadership``), which the kernel releases when the process dies, so a
second loop on the same machine stands by as well. A round that fails (the metrics file
busy, the database away) is logged and the next round tries again.

Why the loop watches its files: an operator who edits the alert rules, the cost model or the
backup policy expects the running evaluator to follow, not to need a restart. Each round
compares the files' modification times with those last read; when one changed, the service
and the facts are built again. A file that no longer parses is reported and the rules in
force stay in force: a bad edit never silences alerting.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from corral.errors import CorralError
from corral.metrics.store.base import MetricsStore
from corral.services.alert_facts import FactReader
from corral.services.alerts import AlertService, EvaluationReport
from corral.store.db import Database
from corral.store.ha_leader import Leadership

log = logging.getLogger(__name__)

#: The advisory lock's name (the HA manager's locks are named after their managers).
LOCK_NAME = "corral-alerts/evaluator"


@dataclass(frozen=True)
class LoopRound:
    """One round: whether this process led, what it evaluated and sent, or why it failed;
    and whether the rules were read again (or why the new ones were refused)."""

    leader: bool
    report: EvaluationReport | None = None
    sent: int = 0
    failed: int = 0
    error: str | None = None
    reloaded: bool = False
    reload_error: str | None = None

    def describe(self) -> str:
        return "; ".join(filter(None, (self._reload(), self._round())))

    def _reload(self) -> str | None:
        if self.reload_error is not None:
            return f"changed files not taken, the rules in force stay: {self.reload_error}"
        return "rules and facts read again" if self.reloaded else None

    def _round(self) -> str:
        if self.error is not None:
            return f"round failed: {self.error}"
        if not self.leader or self.report is None:
            return "standing by: another evaluator leads"
        r = self.report
        return (
            f"evaluated: {r.conditions} condition(s), {r.changed} alert(s) changed, "
            f"{r.notifications} notification(s), {r.queued} queued; "
            f"sent {self.sent}, failed {self.failed}"
        )


class Lead(Protocol):
    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class FileLeadership:
    """Leads while holding an exclusive ``flock`` on ``path`` (SQLite: one machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the file lets the lock go


#: The evaluator's parts, built from the settings' files.
Parts = tuple[AlertService, FactReader | None]


@dataclass
class Sources:
    """The files the rules and facts come from, and how to build them again."""

    paths: tuple[Path, ...]
    build: Callable[[], Parts]
    stamps: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        self.stamps = self.stamps or self.read_stamps()

    def read_stamps(self) -> tuple[float | None, ...]:
        return tuple(_mtime(p) for p in self.paths)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns / 1e9
    except OSError:
        return None  # absent (the shipped defaults apply); its creation is a change


def leadership(db: Database, lock: str = LOCK_NAME, tag: str = "alert-loop") -> Lead:
    """The advisory lock ``lock`` on PostgreSQL; on SQLite a file lock beside the database
    file (``<database>.<tag>.lock``)."""
    if db.backend == "postgresql" or not db.url.database or db.url.database == ":memory:":
        return Leadership(db, lock)  # an in-memory SQLite is one process anyway
    return FileLeadership(Path(f"{db.url.database}.{tag}.lock"))


class AlertLoop:
    def __init__(
        self,
        service: AlertService,
        store: MetricsStore,
        db: Database,
        interval_s: float,
        facts: FactReader | None = None,
        sources: Sources | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.interval_s = interval_s
        self.facts = facts
        self.sources = sources
        self.leadership = leadership(db)

    def round(self) -> LoopRound:
        """Evaluate and deliver once if this process leads; else stand by."""
        if not self.leadership.acquire():
            return LoopRound(leader=False)
        reloaded, reload_error = self._reload()
        try:
            report = self.service.evaluate_store(self.store, facts=self.facts)
            sent = self.service.deliver()
        except CorralError as exc:
            log.warning("alert evaluation round failed: %s", exc.message)
            return LoopRound(True, error=exc.message, reloaded=reloaded, reload_error=reload_error)
        ok = sum(1 for d in sent if d.sent)
        return LoopRound(True, report, ok, len(sent) - ok, None, reloaded, reload_error)

    def _reload(self) -> tuple[bool, str | None]:
        """Build the service and facts again if a source file changed since the last read."""
        if self.sources is None:
            return False, None
        stamps = self.sources.read_stamps()
        if stamps == self.sources.stamps:
            return False, None
        self.sources.stamps = stamps  # a refused edit is reported once, not every round
        try:
            self.service, self.facts = self.sources.build()
        except CorralError as exc:
            log.warning("alert loop: changed files not taken: %s", exc.message)
            return False, exc.message
        log.info("alert loop: rules and facts read again")
        return True, None

    def run(
        self,
        cycles: int | None = None,
        stop: threading.Event | None = None,
        on_round: Callable[[LoopRound], None] | None = None,
    ) -> None:
        """Round after round, ``interval_s`` apart (``cycles`` of them, or until ``stop``)."""
        run_rounds(self.round, self.interval_s, self.leadership, cycles, stop, on_round)


R = TypeVar("R")


def run_rounds(
    one: Callable[[], R],
    interval_s: float,
    lead: Lead,
    cycles: int | None = None,
    stop: threading.Event | None = None,
    on_round: Callable[[R], None] | None = None,
) -> None:
    """``one`` round after another, ``interval_s`` apart from start to start (``cycles`` of
    them, or until ``stop``); the leadership is let go at the end, however it ends."""
    stop = stop or threading.Event()
    done = 0
    try:
        while cycles is None or done < cycles:
            started = time.monotonic()
            result = one()
            if on_round is not None:
                on_round(result)
            done += 1
            if cycles is not None and done >= cycles:
                break
            if stop.wait(max(0.0, interval_s - (time.monotonic() - started))):
                break
    finally:
        lead.release()


class Background:
    """The loop on a daemon thread (the API server's): ``stop`` ends it after its round."""

    def __init__(self, loop: AlertLoop) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=loop.run,
            kwargs={"stop": self._stop, "on_round": _log_round},
            name="corral-alert-loop",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)


def _log_round(result: LoopRound) -> None:
    log.info("alert loop: %s", result.describe())
