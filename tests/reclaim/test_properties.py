"""What the reclamation workflow promises, under any order of events and crashes.

Each example is a fresh store and fresh test-driver hosts, one VM flagged, then
a random sequence of: time passing, the scheduler running, the owner extending
or confirming, approvals, restore, cancel — and crashes at any point of a step
(after the claim, after the outside actions, right after an e-mail was
accepted), after which a new process (new Inventory, new connections) resumes.

Promises checked after every operation:
- a VM whose owner extended it is never deleted;
- a VM is only deleted from an archived case that waited its notice (unless
  the owner confirmed), quarantine and cooling-off periods and has the approval
  the policy asks, from someone other than the flagger;
- no outside action is done twice: at most one effective power-off, start,
  snapshot taken, snapshot removed and deletion per case, whatever crashed;
- each e-mail of a step is sent once, except in the one window that cannot be
  closed (the server accepted it, the process died before noting it), where it
  is sent again with the same Message-ID.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from corral.engines.reclaim import Policy
from corral.errors import CorralError
from corral.hypervisor import xmlsafe
from corral.hypervisor.base import Hypervisor
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.notify.mailer import SmtpSettings
from corral.reclaim.service import ReclaimService
from corral.security.secrets import SecretBox
from corral.store import models as m
from tests.conftest import Clock
from tests.freshdb import fresh_sqlite
from tests.reclaim.conftest import Inbox, make_service, smtp_server

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
POLICY = Policy(notice_days=3, quarantine_days=3, cooling_off_days=5, approvals={"delete": 1})
STEPS = ("notify", "quarantine", "archive", "delete", "restore", "extend", "confirm", "cancel")
POINTS = (*(f"{s}:{p}" for s in STEPS for p in ("claimed", "acted")), "mail:sent")


class SimulatedCrash(BaseException):
    """The process dies here (BaseException: nothing in Corral may catch it)."""


@dataclass
class Effects:
    """Outside actions that changed something, per (method, VM)."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)


class Counting:
    """The real adapter, counting only the calls that changed the VM."""

    def __init__(self, inner: Hypervisor, effects: Effects) -> None:
        self._inner = inner
        self._effects = effects

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _note(self, what: str, uuid: str) -> None:
        self._effects.counts[(what, uuid)] += 1

    def power_off(self, uuid: str, *, grace_s: float = 60.0) -> str:
        how = self._inner.power_off(uuid, grace_s=grace_s)
        if how != "already-off":
            self._note("power_off", uuid)
        return how

    def start(self, uuid: str) -> None:
        self._inner.start(uuid)
        self._note("start", uuid)

    def create_snapshot(self, uuid: str, name: str, description: str | None = None) -> None:
        self._inner.create_snapshot(uuid, name, description)
        self._note("create_snapshot", uuid)

    def delete_snapshot(self, uuid: str, name: str) -> None:
        self._inner.delete_snapshot(uuid, name)
        self._note("delete_snapshot", uuid)

    def delete_vm(self, uuid: str, *, delete_storage: bool = True) -> list[str] | None:
        gone = self._inner.delete_vm(uuid, delete_storage=delete_storage)
        if gone is not None:
            self._note("delete_vm", uuid)
        return gone


class World:
    """One example's store, hosts, clock and the current 'process'."""

    def __init__(self, root: Path, settings: SmtpSettings) -> None:
        shutil.copytree(NODES, root / "nodes")
        self.node_file = root / "nodes" / "host-a.xml"
        self.db = fresh_sqlite(root / "corral.db")
        self.key = Fernet.generate_key()
        self.clock = Clock()
        self.settings = settings
        self.effects = Effects()
        self.armed: str | None = None
        self.crashed_at: list[str] = []
        self.inv = self._inventory()
        self.inv.add_host("a", f"test://{self.node_file}")
        self.inv.sync()
        self.svc = self._service()

    def _inventory(self) -> Inventory:
        return Inventory(
            self.db, SecretBox(self.key), self.clock, HostAccess(node_dir=self.node_file.parent)
        )

    def _service(self) -> ReclaimService:
        inv = self.inv
        return make_service(
            inv,
            self.settings,
            POLICY,
            connect=lambda host: Counting(inv.open_host(host), self.effects),
            crash=self._crash,
        )

    def _crash(self, point: str) -> None:
        if self.armed == point:
            self.armed = None
            self.crashed_at.append(point)
            raise SimulatedCrash(point)

    def restart(self) -> None:
        """A new process: new connections, nothing kept in memory."""
        self.inv.close()
        self.inv = self._inventory()
        self.svc = self._service()

    def vm_defined(self, name: str) -> bool:
        root = xmlsafe.parse(self.node_file.read_bytes(), "node file")
        return any(d.findtext("name") == name for d in root.iterfind("domain"))

    def close(self) -> None:
        self.inv.close()
        self.db.dispose()


Op = tuple[str, int]
# Weighted so that most scripts make progress (time passing, the scheduler running,
# approvals) and crash often; the people's steps come now and then.
_KINDS = ["tick"] * 8 + ["approve"] * 2 + ["crash"] * 4 + ["extend", "confirm", "restore", "cancel"]
ops = st.lists(
    st.tuples(st.sampled_from(_KINDS), st.integers(0, 64)),
    min_size=1,
    max_size=24,
)
APPROVERS = ("ops", "manager", "auditor")


@pytest.fixture(scope="module")
def smtp_module() -> Iterator[tuple[Inbox, SmtpSettings]]:
    with smtp_server() as server:
        yield server


def _apply(w: World, case_id: int, op: Op, extended: list[bool]) -> None:
    kind, arg = op
    svc = w.svc
    if kind == "tick":
        w.clock.advance(days=arg % 5)
        svc.run()
    elif kind == "crash":
        w.armed = POINTS[arg % len(POINTS)]
    elif kind == "approve":
        svc.approve(case_id, "delete", APPROVERS[arg % len(APPROVERS)])
    elif kind == "extend":
        until = w.clock.now.date() + timedelta(days=30)
        svc.extend(case_id, until, "still needed", "alice@example.test")
        extended[0] = True
    elif kind == "confirm":
        svc.confirm(case_id, "alice@example.test")
    elif kind == "restore":
        svc.restore(case_id, "ops")
    elif kind == "cancel":
        svc.cancel(case_id, "ops", "false positive")


def _check(w: World, inbox: Inbox, case_id: int, uuid: str, extended: bool) -> None:
    with w.db.session() as s:
        c = s.get(m.ReclaimCase, case_id)
        assert c is not None
        state, approvals = c.state, [(a.step, a.approver) for a in c.approvals]
        notified, quarantined, archived = c.notified_at, c.quarantined_at, c.archived_at
        confirmed = c.confirmed_at
        deleted_at = c.deleted_at
    extended = extended or state == "extended"
    if not w.vm_defined("web-01"):
        assert not extended, "a VM its owner extended was deleted"
        assert state == "deleted" or (state == "archived" and deleted_at is None)
        assert notified and quarantined and archived
        # the notice period, unless the owner agreed to the reclamation
        assert confirmed or quarantined - notified >= timedelta(days=POLICY.notice_days)
        assert archived - quarantined >= timedelta(days=POLICY.quarantine_days)
        assert w.clock.now - archived >= timedelta(days=POLICY.cooling_off_days)
        assert any(step == "delete" and who != "ops" for step, who in approvals)
    for what in ("power_off", "start", "create_snapshot", "delete_snapshot", "delete_vm"):
        assert w.effects.counts[(what, uuid)] <= 1, (what, w.effects.counts)
    per_step: dict[str, list[str]] = {}
    for msg in inbox.for_case(case_id):
        per_step.setdefault(msg["X-Corral-Step"], []).append(msg["Message-ID"])
    for step, ids in per_step.items():
        assert len(set(ids)) == 1, (step, ids)
        if len(ids) > 1:
            assert len(ids) == 2 and "mail:sent" in w.crashed_at, (step, ids, w.crashed_at)


@pytest.mark.requires("smtp")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=ops)
def test_workflow_promises_hold_under_any_order_and_crashes(
    smtp_module: tuple[Inbox, SmtpSettings], script: list[Op]
) -> None:
    inbox, settings_ = smtp_module
    with inbox._lock:
        inbox.messages.clear()
    with tempfile.TemporaryDirectory(prefix="corral-prop-") as tmp:
        w = World(Path(tmp), settings_)
        try:
            case = w.svc.flag("web-01", category="idle", reason="idle", actor="ops")
            uuid = case.vm_uuid
            extended = [False]
            for op in [*script, *[("tick", 4)] * 6]:
                try:
                    _apply(w, case.id, op, extended)
                except SimulatedCrash:
                    w.restart()
                    w.svc.run()  # the next process resumes what was pending
                except CorralError:
                    pass  # refused in this state: fine, the promises must still hold
                _check(w, inbox, case.id, uuid, extended[0])
            w.armed = None
            w.svc.run()
            assert all(c.pending is None for c in w.svc.cases())
            _check(w, inbox, case.id, uuid, extended[0])
            event(f"final state: {w.svc.case(case.id).state}")
            event(f"crashes: {len(w.crashed_at)}")
        finally:
            w.close()
