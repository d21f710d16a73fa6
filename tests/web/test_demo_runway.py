"""``corral demo`` on the embedded default gives the capacity runway real days: the demo's
hosts' past is read by the real collector from the replayed VMs (each counted from its
creation), into the same metrics store the administrator's page reads.

The demo is built by the CLI in a subprocess (as a user runs it); the runway service and the
/admin page are then read from the same home.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from lxml import html

from corral.api.app import create_app
from corral.config import Settings, load_settings
from corral.demo.fleet import generate
from corral.demo.metrics import FleetReplay, default_trace_dir, fleet_shape, running_vms
from corral.domain.clock import ManualClock
from corral.domain.metrics import EntityKind, SampleBatch
from corral.inventory.service import Inventory
from corral.metrics.collector import Collector
from corral.metrics.replay import assign
from corral.metrics.store import open_store
from corral.metrics.store.base import MetricsStore
from corral.security.token_store import TokenStore
from corral.services import capacity_runway
from corral.services.fleet import live_fleet
from tests.inventory.test_cli import run
from tests.web.conftest import sign_in
from tests.web.test_admin_page import runway_rows

RESOURCES = ("CPU (vCPUs allocated)", "Memory (allocated)", "Storage (pools allocated)")


@dataclass
class BuiltDemo:
    info: dict[str, object]
    settings: Settings
    inv: Inventory
    store: MetricsStore


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[BuiltDemo]:
    root = tmp_path_factory.mktemp("demo-runway")
    home = root / "home"
    proc = run(home, "demo", "--no-serve", "--history-days", "1", "--output", "json")
    settings = load_settings(
        env={
            "CORRAL_HOME": str(home),
            "CORRAL_NODE_DIR": str(root),
            "CORRAL_SHARED_DATA": str(shared_data),
        }
    )
    inv = Inventory.from_settings(settings)
    store = open_store(settings.metrics_url)
    yield BuiltDemo(json.loads(proc.stdout), settings, inv, store)
    store.close()
    inv.db.dispose()


def test_the_demo_records_every_hosts_use_through_the_collector(built: BuiltDemo) -> None:
    metrics = built.info["metrics"]
    assert isinstance(metrics, dict)
    fleet = live_fleet(built.inv).fleet
    assert metrics["hosts"] == len(fleet.hosts) == 6
    assert metrics["host_days"] == capacity_runway.HISTORY_DAYS
    now = int(time.time())
    start = now - capacity_runway.HISTORY_DAYS * 86400
    names = [h.name for h in fleet.hosts]
    metric_names = (
        "host_cpu_pct",
        "host_mem_used_bytes",
        "host_mem_total_bytes",
        capacity_runway.STORAGE,
    )
    cols = built.store.series_many(EntityKind.host, names, metric_names, start, now, 3600)
    assert sorted(cols.entities) == sorted(names)
    for k, metric in enumerate(cols.metrics):
        for e, host in enumerate(cols.entities):
            values = cols.value[(cols.metric == k) & (cols.entity == e)]
            values = values[np.isfinite(values)]
            # an hourly reading over the 28 days (the first hour may fall before the window)
            assert len(values) >= capacity_runway.HISTORY_DAYS * 24 - 2, (metric, host)
            if metric == "host_cpu_pct":
                assert ((values >= 0) & (values <= 100)).all() and values.max() > 0
            if metric == "host_mem_total_bytes":
                assert set(values) == {fleet.host(host).memory_mib * 2**20}
    # the collector's own health, as the real collector records it beside the samples
    up = built.store.series_many(EntityKind.collector, names, ("collect_up",), start, now, 86400)
    assert len(up.value) and set(up.value[np.isfinite(up.value)]) == {1.0}


def test_the_runway_has_days_for_cpu_memory_and_storage(built: BuiltDemo) -> None:
    fleet = live_fleet(built.inv).fleet
    runway = capacity_runway.fleet_runway(built.inv.db, built.store, fleet, int(time.time()))
    assert runway.growth.per_month is not None and runway.growth.per_month > 0
    assert runway.growth.hosts == len(fleet.hosts)
    assert tuple(r.resource for r in runway.resources) == RESOURCES
    for r in runway.resources:
        assert r.days == capacity_runway.days_left(r.used_pct, runway.growth), r
    # memory grows with the VMs created in the window: always a day within the horizon;
    # CPU follows the replayed traces of these 28 days, past the horizon on a calm month
    memory = runway.resources[1]
    assert memory.days is not None and 0 < memory.days < capacity_runway.HORIZON_DAYS
    # storage at its own growth, measured from what the pools held day by day (new disks,
    # growing snapshot overlays): the test driver's pools say 100 GiB, less than they hold,
    # so storage is used up (0 days) whatever the rate
    storage = runway.storage
    assert storage is not None and runway.storage_growth is not None
    assert runway.storage_growth.hosts == len(fleet.hosts)
    assert storage.per_month == runway.storage_growth.per_month
    assert storage.per_month is not None and storage.per_month > 0
    assert storage.used_pct > 100 and storage.days == 0.0
    # the page shows the service's figures, never "unknown"
    app = create_app(built.inv, settings=built.settings, metrics=built.store)
    token = TokenStore(built.inv.db).create("runway-admin")
    with TestClient(app, base_url="http://testserver") as client:
        sign_in(client, token)
        page = client.get("/admin")
        assert page.status_code == 200
        rows = runway_rows(page.text)
        assert tuple(rows) == RESOURCES
        for r in runway.resources:
            days = rows[r.resource][1]
            if r.days is None:
                assert days == f"more than {capacity_runway.HORIZON_DAYS:,}"
            else:
                assert float(days.replace(",", "")) == pytest.approx(r.days, abs=0.05)
        assert "No growth measured yet" not in page.text
        hint = html.fromstring(page.text).xpath("string(//*[@id='runway-storage-growth'])")
        assert f"{100 * runway.storage_growth.per_month:.1f} % a month" in hint
        assert hint.startswith("Storage at its own growth")
    app.state.jobs.shutdown(wait=True)


def test_the_live_present_continues_with_the_hosts_real_sizes(
    built: BuiltDemo, shared_data: Path
) -> None:
    """What ``corral demo`` collects while it serves: the same source with the VMs' own
    counters, on the demo's real host sizes (it once gave every host 32 CPUs, 256 GiB)."""
    names = [h.name for h in live_fleet(built.inv).fleet.hosts]
    vms = running_vms(built.inv, names)
    demo = generate(seed=7, n_vms=150, n_hosts=6, today=datetime.now(UTC).date())
    shape = fleet_shape(built.inv, demo)
    trace_dir = default_trace_dir(shared_data)
    assert trace_dir is not None
    clock = ManualClock(time.time())
    source = FleetReplay(assign(vms, trace_dir, 7), shape, clock)
    batches: list[SampleBatch] = []
    Collector(source, batches.append, interval_s=60, clock=clock).run(threading.Event(), cycles=2)
    samples = [s for b in batches for s in b.to_samples()]
    cpu = {s.entity for s in samples if s.metric == "cpu_pct"}
    assert cpu == {uuid for uuid, *_ in vms}  # every running VM, from the second cycle
    for host in names:
        (total, _) = [
            s.value for s in samples if s.entity == host and s.metric == "host_mem_total_bytes"
        ]
        assert total == shape.sizes[host][1] * 2**20
        used = [
            s.value for s in samples if s.entity == host and s.metric == capacity_runway.STORAGE
        ]
        assert used == [float(shape.storage[host][-1][1])] * 2  # today's pool
