"""The backup loop: ``corral backup run --every SECONDS`` takes the due backups and expires
what retention no longer keeps, round after round, with nobody calling ``gc`` or ``expire``.

Each round, in order: the due backups (corral.services.backup_exec.Executor.run), then the
restore points no retention rule keeps (``gc``), then the forensic evidence past its
retention days (corral.services.forensic.ForensicService.expire), then the restore tests
(corral.services.backup_restore_test.RestoreTester.scheduled, the service behind ``corral
backup restore-test``): the claims of tests whose process died are cleaned up and ended as
failed, then up to ``backup_loop_restore_tests`` due VMs are tested, one after another, each
on its own host. Last, because a test boots a VM and waits for it. A point or evidence set on
legal hold is never expired, and a held incremental keeps its parents. Every expiry is an
event (``restore-point-expired``, ``evidence-expired``) and an audit entry (the deleted
catalog row; the evidence's ``expired`` custody record). A stage that fails is reported and
the next stages still run: a host that does not answer must not keep old evidence forever.

One loop leads: on PostgreSQL the one holding the advisory lock ``corral-backup/loop`` (the
alert loop's kind of leadership), on SQLite a file lock beside the database; another loop
stands by and takes over when the leader's connection ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from corral.config import Settings
from corral.engines.backup import Policy
from corral.errors import CorralError
from corral.services.alert_loop import Lead, leadership, run_rounds
from corral.services.audit import Actor, acting_as
from corral.services.backup_exec import Executor, GcResult, RunReport, gc
from corral.services.backup_restore_test import RestoreTester, RestoreTestRound
from corral.services.forensic import Expiry, ForensicService
from corral.store.db import Database

log = logging.getLogger(__name__)

LOCK_NAME = "corral-backup/loop"
Now = Callable[[], datetime]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BackupRound:
    """One round: the backups taken, the restore points and evidence expired (and the ones
    only a hold kept), the restore tests, and each stage's error, if it failed."""

    leader: bool
    backups: RunReport | None = None
    points: GcResult | None = None
    evidence: Expiry | None = None
    restore_tests: RestoreTestRound | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.leader:
            return "standing by: another backup loop leads"
        parts = []
        if self.backups is not None:
            done = sum(1 for o in self.backups.outcomes if o.status == "done")
            parts.append(f"{done} backup(s) taken, {self.backups.failed} failed")
        if self.points is not None:
            parts.append(
                f"{len(self.points.removed)} restore point(s) expired, "
                f"{len(self.points.held)} kept on hold"
            )
        if self.evidence is not None:
            parts.append(
                f"{len(self.evidence.deleted)} evidence set(s) expired, "
                f"{len(self.evidence.held)} kept on hold"
            )
        if self.restore_tests is not None:
            parts.append(self.restore_tests.describe())
        parts += [f"{stage} failed: {why}" for stage, why in self.errors.items()]
        return "; ".join(parts)


@dataclass
class BackupLoop:
    executor: Executor
    forensic: ForensicService
    interval_s: float
    by: str = "backup-loop"  # the audit actor of the round's writes
    lead: Lead | None = None
    origin: str = "backup loop"
    tester: RestoreTester | None = None  # None: no restore tests in this loop
    restore_tests: int = 1  # tested a round (0: only killed tests cleaned up)

    @classmethod
    def from_settings(
        cls, settings: Settings, db: Database, policy: Policy, interval_s: float, by: str
    ) -> BackupLoop:
        executor = Executor.from_settings(settings, db, policy)
        forensic = ForensicService.from_settings(settings, db)
        tester = RestoreTester.from_settings(settings, db, policy)
        return cls(
            executor, forensic, interval_s, by, origin=f"backup loop (cli:{by})",
            tester=tester, restore_tests=settings.backup_loop_restore_tests,
        )  # fmt: skip

    def __post_init__(self) -> None:
        if self.lead is None:
            self.lead = leadership(self.executor.db, LOCK_NAME, "backup-loop")

    def round(self) -> BackupRound:
        """Back up what is due and expire what retention lets go, if this loop leads."""
        assert self.lead is not None
        if not self.lead.acquire():
            return BackupRound(leader=False)
        errors: dict[str, str] = {}
        ex = self.executor
        with acting_as(Actor(self.by, "", self.origin)):  # every expiry is audited as the loop's
            backups = _stage("backups", errors, ex.run)
            points = _stage(
                "restore points", errors, lambda: gc(ex.db, ex.repo, ex.policy, now=ex.now)
            )
            evidence = _stage("evidence", errors, lambda: self.forensic.expire(by=self.by))
            tests = None
            if self.tester is not None:
                tester, limit = self.tester, self.restore_tests
                tests = _stage("restore tests", errors, lambda: tester.scheduled(limit))
        return BackupRound(True, backups, points, evidence, tests, errors)

    def run(
        self,
        cycles: int | None = None,
        stop: threading.Event | None = None,
        on_round: Callable[[BackupRound], None] | None = None,
    ) -> None:
        """Round after round, ``interval_s`` apart (``cycles`` of them, or until ``stop``)."""
        assert self.lead is not None
        run_rounds(self.round, self.interval_s, self.lead, cycles, stop, on_round)


def _stage(name: str, errors: dict[str, str], work: Callable[[], T]) -> T | None:
    try:
        return work()
    except (CorralError, OSError) as exc:
        errors[name] = exc.message if isinstance(exc, CorralError) else str(exc)
        log.warning("backup loop: %s failed: %s", name, errors[name])
        return None
