"""Fixtures of the report tests: a hand-made fleet with hostile names, and a small live demo."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from corral.demo.run import build_demo
from corral.engines.costing import CostModel, load_cost_model
from corral.engines.sprawl import Disk, HostRecord, VMRecord, VMState, Volume, analyse
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.reports.collect import ReportData, assemble_report
from corral.reports.history import Change, OrphanedDisk, VMHistory, month_ends, waste_over_time
from corral.reports.scorecard import GovernedVM, ScorecardInputs, Template, scorecard
from corral.security.secrets import SecretBox
from corral.store import models as m
from corral.store.db import Database

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SCRIPT_NAME = "<script>document.title='pwned'</script>"
IMG_NAME = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_DEPT = '</style><b>R&D "Labs"</b>'
HOSTILE_OWNER = "<svg onload=\"document.title='pwned'\">"


def _vm(n: int, name: str, **kw: object) -> VMRecord:
    base: dict[str, object] = {
        "uuid": f"vm-{n:02d}",
        "name": name,
        "host": "h1",
        "vcpus": 2,
        "memory_mib": 4096,
        "disks": (Disk(f"/pool/{n}.qcow2", 40.0),),
        "owner": "alice",
        "department": "Finance",
        "purpose": "web",
        "created_at": NOW - timedelta(days=400),
        "state_since": NOW - timedelta(days=200),
    }
    base.update(kw)
    return VMRecord(**base)  # type: ignore[arg-type]


def hostile_vms() -> list[VMRecord]:
    """A small fleet whose names, owners and departments try to inject markup."""
    off = {"state": VMState.shutoff, "state_since": NOW - timedelta(days=90)}
    return [
        _vm(1, SCRIPT_NAME, department=HOSTILE_DEPT, **off),
        _vm(2, IMG_NAME, owner=None, department=None),
        _vm(3, "web-03", owner=HOSTILE_OWNER, expiry=NOW - timedelta(days=10)),
        _vm(4, "db-04", department="Sales", purpose=None),
        _vm(5, "app-05", department=None, **off),
        _vm(6, "app-06"),
    ]


@pytest.fixture(scope="session")
def default_model() -> CostModel:
    return load_cost_model()


@pytest.fixture(scope="session")
def hostile_report(default_model: CostModel) -> ReportData:
    """A report of the hostile fleet, built from the real engines (no metrics: idle undecided)."""
    vms = hostile_vms()
    hosts = [HostRecord("h1", cores=32, memory_mib=256 * 1024, core_mhz=2400.0)]
    volumes = [
        Volume("/pool/<b>orphan</b>.qcow2", 100.0, host="h1", created_at=NOW - timedelta(days=60))
    ]
    analysis = analyse(vms, NOW, default_model, hosts=hosts, volumes=volumes)
    histories = [
        VMHistory(
            uuid=vm.uuid,
            name=vm.name,
            states=(Change(NOW - timedelta(days=150), VMState.running),)
            + ((Change(vm.state_since, vm.state),) if vm.state_since and not vm.powered_on else ()),
            owners=(Change(NOW - timedelta(days=150), vm.owner),),
            expiries=(Change(NOW - timedelta(days=150), vm.expiry),),
            vcpus=(Change(NOW - timedelta(days=150), vm.vcpus),),
            memory_mib=(Change(NOW - timedelta(days=150), vm.memory_mib),),
            disks=vm.disks,
        )
        for vm in vms
    ]
    orphans = [OrphanedDisk(v.path, v.size_gb, v.created_at or NOW) for v in volumes]
    when = month_ends(NOW - timedelta(days=150), NOW)
    history = waste_over_time(histories, orphans, when, default_model, hosts=hosts)
    inputs = ScorecardInputs(
        now=NOW,
        vms=[GovernedVM(vm.name, vm.owner, vm.purpose, vm.expiry, "restart") for vm in vms],
        templates=[Template("<i>tmpl</i>", NOW - timedelta(days=500))],
        orphaned_disks=1,
        orphaned_disk_gb=100.0,
        fleet_monthly_cost=analysis.fleet_monthly_cost,
        monthly_waste=analysis.monthly_waste,
    )
    signs = scorecard(inputs)
    return assemble_report(vms, hosts, default_model, analysis, history, signs, NOW, 30)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


DEMO_DAY = date(2026, 6, 1)


@dataclass(frozen=True)
class DemoInventory:
    inv: Inventory
    changed_uuid: str  # the VM whose owner was removed and department made hostile
    old_owner: str


@pytest.fixture(scope="module")
def demo_inventory(tmp_path_factory: pytest.TempPathFactory) -> DemoInventory:
    """A 30-VM demo fleet on two libvirt test-driver hosts, with a year of synced history."""
    folder = tmp_path_factory.mktemp("demo")
    db = Database(f"sqlite:///{folder / 'corral.db'}")
    db.migrate()
    clock = FixedClock(
        datetime.combine(DEMO_DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    )
    inv = Inventory(db, SecretBox(Fernet.generate_key()), clock, HostAccess(node_dir=folder))
    build_demo(inv, Path(folder) / "nodes", seed=3, n_vms=30, n_hosts=2, today=DEMO_DAY)
    with inv.db.session() as s:
        query = select(m.VM).where(m.VM.state == "running", m.VM.owner.is_not(None))
        target = s.scalars(query.order_by(m.VM.name)).first()
        assert target is not None
        uuid, owner = target.uuid, target.owner
    # A user gives one VM a hostile department and takes its owner away (a real
    # metadata-changed event), an hour before the report.
    clock.now -= timedelta(hours=1)
    inv.set_metadata(uuid, {"owner": None, "department": HOSTILE_DEPT}, actor="test")
    clock.now += timedelta(hours=1)
    return DemoInventory(inv, uuid, owner or "")
