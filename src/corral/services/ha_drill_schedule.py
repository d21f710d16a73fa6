"""Scheduled drills: the leading HA manager starts one when :func:`next_drill` says it is due.

Why the manager and not a cron entry: only the leader knows, at this moment, that every host
is online and none is in maintenance, and only one leader exists, so two schedulers never
start two drills. The drill itself runs in a thread of the manager's process (it only fails
the host through its fence agent and then reads the event log, while the manager's own rounds
go on and recover the host). Its row is written before the thread starts, so the next round
already sees a drill running; the row's unique "running" slot refuses a manual drill begun
meanwhile. The clock is injected, so tests drive the schedule without waiting. Each run's
report is written to the folder of the ``ha_drill_reports`` setting (``drill-ID.html`` and
``.json``), the same files a manual drill writes with ``--report-html``/``--report-json``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from corral.config import Settings
from corral.engines.ha_manager import ManagerState
from corral.engines.ha_manager.drill_schedule import DrillDecision, DrillSchedule, next_drill
from corral.engines.ha_manager.events import Event
from corral.errors import CorralError
from corral.inventory.service import Inventory
from corral.services.ha_live_policy import HAPolicyFile
from corral.store import ha_drills

log = logging.getLogger(__name__)


class DrillScheduler:
    def __init__(
        self,
        inventory: Inventory,
        settings: Settings,
        schedule: DrillSchedule,
        *,
        name: str,
        policy: HAPolicyFile,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inventory, self.settings, self.schedule = inventory, settings, schedule
        self.name, self.policy = name, policy
        self.clock, self.sleep = clock, sleep
        self.thread: threading.Thread | None = None
        self._last_why = ""

    def decide(self, state: ManagerState) -> DrillDecision:
        db, now = self.inventory.db, self.clock()
        stale = timedelta(seconds=self.policy.drills.timeout_s + 300)
        ha_drills.close_abandoned(db, self.name, stale, _utc(now))
        last = {h: t.timestamp() for h, t in ha_drills.last_runs(db, self.name).items()}
        drills = self.policy.drills
        allowed = [h for h in state.hosts if drills.allows(h)]
        return next_drill(
            self.schedule,
            allowed,
            {h: rec.state.value for h, rec in state.hosts.items()},
            {h for h, rec in state.hosts.items() if rec.maintenance},
            last,
            ha_drills.is_running(db, self.name),
            now,
        )

    def tick(self, state: ManagerState) -> list[Event]:
        """Start the drill that is due, if any; an event when one starts or is refused."""
        decision = self.decide(state)
        if decision.host is None:
            if decision.why != self._last_why:
                log.info("no scheduled drill now: %s", decision.why)
            self._last_why = decision.why
            return []
        host, now = decision.host, self.clock()
        try:
            run_id = ha_drills.begin(self.inventory.db, self.name, host, True, _utc(now))
        except CorralError as exc:
            return [Event(now, "drill_not_started", host, detail=exc.message)]
        self.thread = threading.Thread(
            target=self._drill, args=(host, run_id), name=f"corral-drill:{host}", daemon=True
        )
        self.thread.start()
        return [Event(now, "drill_scheduled", host, detail=decision.why)]

    def take_over(self, previous: str) -> list[Event]:
        """A new leader's first step: a scheduled drill still running was the previous
        leader's (``previous``), and it died with its lead. Closed as abandoned, its report
        written, an event said: never left running. The host's recovery is not the drill's:
        the manager's own rounds go on with it, from the saved state."""
        if self.thread is not None and self.thread.is_alive():
            return []  # this very process leads again: its own drill still runs and ends
        now = self.clock()
        why = (
            f"the leading manager running it ({previous or 'unknown'}) stopped; its successor "
            "took over the recovery (see the HA event log)"
        )
        closed = ha_drills.close_scheduled(self.inventory.db, self.name, _utc(now), why)
        if closed is None:
            return []
        log.warning("scheduled drill run %s of %s abandoned: %s", closed.id, closed.host, why)
        self._write_report(closed.id)
        return [Event(now, "drill_abandoned", closed.host, detail=f"run {closed.id}: {why}")]

    def _drill(self, host: str, run_id: int) -> None:
        from corral.services.ha_drill import DrillService  # imports this module's users

        service = DrillService(
            self.inventory, self.settings, name=self.name, policy=self.policy,
            clock=self.clock, sleep=self.sleep,
        )  # fmt: skip
        try:
            report = service.run(host, run_id=run_id)
        except CorralError as exc:
            log.warning("scheduled drill of %s failed: %s", host, exc.message)
        else:
            log.info("scheduled drill of %s: %s", host, "met" if report.all_met else "missed")
        self._write_report(run_id)

    def _write_report(self, run_id: int) -> None:
        """The run's report as files, as ``corral ha drill --report-html/--report-json``
        writes them (a failed run too: its page says why)."""
        from corral.services import ha_drill_report  # imports this module's users

        folder = self.settings.drill_reports_dir
        try:
            html, _ = ha_drill_report.write_to_folder(self.inventory.db, run_id, folder, self.name)
        except (CorralError, OSError) as exc:
            log.warning("the report of drill run %s was not written to %s: %s", run_id, folder, exc)
            return
        log.info("drill run %s: report written to %s", run_id, html)


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)
