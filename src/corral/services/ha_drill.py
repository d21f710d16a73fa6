"""``corral ha drill HOST``: pull a host's cable on purpose and measure the recovery.

A drill is allowed only on the hosts the HA policy's ``drills.allow`` names, and only
while an HA manager leads (it is what is being tested). The host is failed through its
own first fence method — the same agent the manager would use, so "off" is real: its
daemon and every guest die at once. The drill then only watches the manager's event
log until the host is recovered (or given up on, or the drill's deadline passes), and
builds its report from those events alone (:func:`report_from_events`), so every figure
can be checked against the log: detection (host_failed), fencing (host_fenced), and per
protected VM the time to running, planned vs actual host, and its RTO met or missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from corral.config import Settings
from corral.errors import ConfigError, ConflictError, CorralError
from corral.inventory.service import Inventory
from corral.services import ha_live_views
from corral.services.ha_live import DEFAULT_NAME
from corral.services.ha_live_policy import DrillPolicy, HAPolicyFile, load_policy
from corral.store import ha_drills
from corral.store.models import HAEventRow

#: Events that end a drill: every VM settled, or the host could not be fenced.
_FINAL = frozenset({"host_recovered", "host_unfenceable"})


@dataclass(frozen=True)
class DrillVM:
    vm: str
    planned: str | None
    #: where it runs after the drill (None: not recovered)
    actual: str | None
    #: seconds from the kill to vm_recovered
    restart_s: float | None
    rto_s: float
    rto_met: bool
    #: why it did not come back ("" when it did)
    why: str = ""


@dataclass(frozen=True)
class TimelineEntry:
    """One manager event after the kill, ``t_s`` seconds after it."""

    t_s: float
    kind: str
    host: str | None
    vm: str | None
    detail: str


@dataclass(frozen=True)
class DrillReport:
    host: str
    #: the kill, on the manager's clock (epoch seconds)
    killed_at: float
    #: seconds from the kill to host_failed / host_fenced (None: never happened)
    detection_s: float | None
    fence_s: float | None
    #: host_recovered, host_unfenceable or "timeout"
    ended_by: str
    vms: tuple[DrillVM, ...]
    #: protected VMs that are not running again
    not_recovered: tuple[str, ...]
    events: int
    #: VMs of the host without protection: down by design (no RTO)
    unprotected: tuple[str, ...] = ()
    #: the manager's events from the kill to the end: detection, fencing, each restart
    timeline: tuple[TimelineEntry, ...] = ()

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DrillReport:
        """A report as ``to_dict`` stored it (reports stored before the timeline have none)."""
        fields = {k: v for k, v in doc.items() if k != "all_met"}
        fields["vms"] = tuple(DrillVM(**v) for v in doc.get("vms", ()))
        fields["timeline"] = tuple(TimelineEntry(**e) for e in doc.get("timeline", ()))
        for name in ("not_recovered", "unprotected"):
            fields[name] = tuple(doc.get(name, ()))
        return cls(**fields)

    @property
    def all_met(self) -> bool:
        return all(v.rto_met for v in self.vms) and not self.not_recovered

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "all_met": self.all_met}


class DrillService:
    def __init__(
        self,
        inventory: Inventory,
        settings: Settings,
        *,
        name: str = DEFAULT_NAME,
        policy: HAPolicyFile | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inventory = inventory
        self.settings = settings
        self.name = name
        self.policy = policy or load_policy(settings)
        self.clock, self.sleep = clock, sleep
        #: the drill run ``run`` recorded last (its report: services.ha_drill_report)
        self.last_run_id: int | None = None

    def run(
        self,
        host: str,
        progress: Callable[[float], None] | None = None,
        *,
        run_id: int | None = None,
    ) -> DrillReport:
        """Drill ``host``, recorded as a drill run (``run_id``: one the scheduler began);
        refused while another drill runs."""
        db = self.inventory.db
        if run_id is None:
            run_id = ha_drills.begin(db, self.name, host, False, self._utc())
        self.last_run_id = run_id
        try:
            report = self._run(host, progress)
        except CorralError as exc:
            ha_drills.end(db, run_id, "failed", self._utc(), detail=exc.message)
            raise
        except BaseException:
            ha_drills.end(db, run_id, "failed", self._utc(), detail="interrupted")
            raise
        outcome = "met" if report.all_met else "missed"
        ha_drills.end(db, run_id, outcome, self._utc(), report.to_dict())
        return report

    def _utc(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _run(self, host: str, progress: Callable[[float], None] | None) -> DrillReport:
        drills = self.policy.drills
        if not drills.allows(host):
            raise ConfigError(
                f"Drills are not allowed on host {host}; add it to drills.allow in the HA policy."
            )
        watched, plan = self._before(host)
        methods = self.policy.fences.get(host, {})
        if not methods:
            raise ConfigError(f"Host {host} has no fence method to fail it with; add one.")
        first = next(iter(methods.values()))
        start_id = self._last_event_id()
        killed_at = self.clock()
        outcome = first.fence()
        if not outcome.result.proven_off:
            raise ConflictError(f"The fence agent could not fail host {host}: {outcome.detail}.")
        events = self._watch(start_id, host, killed_at + drills.timeout_s, progress)
        return report_from_events(host, killed_at, watched, plan, events, drills)

    def _before(self, host: str) -> tuple[list[str], dict[str, str]]:
        """The VMs the manager runs on ``host`` and their planned targets (a leader must be on)."""
        status = ha_live_views.status(self.inventory.db, self.name)
        fresh = max(3 * self.policy.config.check_interval_s, 10.0)
        age = (datetime.now(UTC) - status.updated_at).total_seconds() if status.updated_at else None
        if status.leader is None or age is None or age > fresh:
            raise ConflictError("No HA manager is running (corral ha run); start one, then drill.")
        states = {h.name: h.state for h in status.hosts}
        if states.get(host) != "online":
            raise ConflictError(f"Host {host} is {states.get(host, 'unknown')}, not online.")
        watched = sorted(v.name for v in status.vms if v.host == host and v.state == "running")
        entries = ha_live_views.plan(self.inventory.db, self.inventory, self.name).entries
        plan = {e.vm: e.target for e in entries if e.failed_host == host}
        return watched, plan

    def _last_event_id(self) -> int:
        with self.inventory.db.session() as s:
            return int(s.scalar(select(func.max(HAEventRow.id))) or 0)

    def _watch(
        self, after: int, host: str, until: float, progress: Callable[[float], None] | None
    ) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        while True:
            with self.inventory.db.session() as s:
                rows = s.scalars(
                    select(HAEventRow)
                    .where(HAEventRow.manager == self.name, HAEventRow.id > after)
                    .order_by(HAEventRow.id)
                )
                new = [_plain(r) for r in rows]
            if new:
                after = int(new[-1]["id"])
                seen += new
            if any(e["kind"] in _FINAL and e["host"] == host for e in seen):
                return seen
            now = self.clock()
            if now >= until:
                return seen
            if progress is not None:
                progress(min(0.95, len(seen) / 20))
            self.sleep(0.5)


def drill_runs(inventory: Inventory, name: str = DEFAULT_NAME) -> list[ha_drills.DrillRun]:
    """The drills run so far (manual and scheduled), newest first."""
    return ha_drills.runs(inventory.db, name)


def report_from_events(
    host: str,
    killed_at: float,
    watched: Sequence[str],
    plan: Mapping[str, str],
    events: Sequence[Mapping[str, Any]],
    drills: DrillPolicy,
) -> DrillReport:
    """The drill's figures, from the manager's events after the kill (a pure function);
    ``watched``: the VMs the manager had running on ``host`` before the kill."""

    def first(kind: str, **match: str) -> Mapping[str, Any] | None:
        for e in events:
            if e["kind"] == kind and all(e.get(k) == v for k, v in match.items()):
                return e
        return None

    def after(e: Mapping[str, Any] | None) -> float | None:
        return None if e is None else round(float(e["t"]) - killed_at, 3)

    vms = []
    unprotected = tuple(vm for vm in watched if first("vm_down_unprotected", vm=vm))
    for vm in watched:
        if vm in unprotected:
            continue  # it stays down by design: reported apart, no RTO
        back = first("vm_recovered", vm=vm)
        lost = first("vm_not_recovered", vm=vm) or first("vm_stranded", vm=vm)
        restart = after(back)
        rto = drills.rto_of(vm)
        why = "" if back else (str(lost["detail"]) if lost else "not recovered in the drill's time")
        vms.append(
            DrillVM(
                vm,
                plan.get(vm),
                str(back["host"]) if back else None,
                restart,
                rto,
                restart is not None and restart <= rto,
                why,
            )
        )
    ending = next((e for e in events if e["kind"] in _FINAL and e["host"] == host), None)
    return DrillReport(
        host=host,
        killed_at=killed_at,
        detection_s=after(first("host_failed", host=host)),
        fence_s=after(first("host_fenced", host=host)),
        ended_by=str(ending["kind"]) if ending else "timeout",
        vms=tuple(vms),
        not_recovered=tuple(v.vm for v in vms if v.actual is None),
        events=len(events),
        unprotected=unprotected,
        timeline=tuple(
            TimelineEntry(
                round(float(e["t"]) - killed_at, 3),
                str(e["kind"]),
                e.get("host"),
                e.get("vm"),
                str(e.get("detail") or ""),
            )
            for e in events
        ),
    )


def _plain(r: HAEventRow) -> dict[str, Any]:
    return {"id": r.id, "t": r.t, "kind": r.kind, "host": r.host, "vm": r.vm, "detail": r.detail}
