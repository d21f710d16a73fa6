"""Each detector on fixture files, including the cases where it must say 'insufficient data'."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from corral.engines.costing import CostModel, price_fleet
from corral.engines.sprawl import (
    DETECTORS,
    Category,
    DetectionContext,
    Finding,
    InsufficientData,
    Outcome,
    build_detectors,
)
from corral.engines.sprawl.inventory_file import Inventory, load_inventory
from corral.errors import ConfigError

from .conftest import load_metric_fixture


@pytest.fixture(scope="module")
def inventory(fixtures: Path) -> Inventory:
    return load_inventory(fixtures / "detectors_inventory.yaml")


def _ctx(inv: Inventory, model: CostModel) -> DetectionContext:
    assert inv.now is not None
    costs = price_fleet(inv.vms, inv.hosts, model)
    return DetectionContext(inv.vms, inv.now, costs, model, inv.hosts, inv.volumes)


def _run(name: str, ctx: DetectionContext, **params: float) -> dict[str, Outcome]:
    return {o.subject: o for o in DETECTORS[name](**params).detect(ctx)}


def _findings(outcomes: dict[str, Outcome]) -> set[str]:
    return {k for k, o in outcomes.items() if isinstance(o, Finding)}


def _insufficient(outcomes: dict[str, Outcome]) -> set[str]:
    return {k for k, o in outcomes.items() if isinstance(o, InsufficientData)}


def test_powered_off(inventory: Inventory, hand_model: CostModel) -> None:
    out = _run("powered_off", _ctx(inventory, hand_model))
    assert _findings(out) == {"off-40", "off-expired-snap"}
    assert _insufficient(out) == {"off-undated"}
    f = out["off-40"]
    assert isinstance(f, Finding)
    assert f.evidence.measures["days_off"] == pytest.approx(40.0)
    # powered off: storage + licences + agents + labour, no compute (hand model: 3 + 7 + 20)
    assert f.monthly_cost_held == pytest.approx(30.0)


def test_powered_off_threshold_is_a_parameter(inventory: Inventory, hand_model: CostModel) -> None:
    out = _run("powered_off", _ctx(inventory, hand_model), days=5)
    assert _findings(out) == {"off-40", "off-10", "off-expired-snap"}


def test_no_owner_and_placeholders(inventory: Inventory, hand_model: CostModel) -> None:
    out = _run("no_owner", _ctx(inventory, hand_model))
    assert _findings(out) == {"no-owner", "owner-na", "off-expired-snap"}


def test_no_purpose_blank_string(inventory: Inventory, hand_model: CostModel) -> None:
    assert _findings(_run("no_purpose", _ctx(inventory, hand_model))) == {"no-purpose"}


def test_lease_expired_with_grace(inventory: Inventory, hand_model: CostModel) -> None:
    ctx = _ctx(inventory, hand_model)
    assert _findings(_run("lease_expired", ctx)) == {"expired", "off-expired-snap"}
    assert _findings(_run("lease_expired", ctx, grace_days=30)) == {"off-expired-snap"}


def test_orphaned_disks(inventory: Inventory, hand_model: CostModel) -> None:
    out = _run("orphaned_disks", _ctx(inventory, hand_model))
    # ok2's disk path is written un-normalised in the pool: still attached; the new one is too young
    assert _findings(out) == {"/pool/orphan-old.qcow2", "/pool/orphan-undated.qcow2"}
    old, undated = out["/pool/orphan-old.qcow2"], out["/pool/orphan-undated.qcow2"]
    assert isinstance(old, Finding) and isinstance(undated, Finding)
    assert old.monthly_cost_held == pytest.approx(200 * 0.1)
    assert (old.confidence, undated.confidence) == (1.0, 0.7)
    assert undated.evidence.measures["age_days"] == "unknown"


def test_snapshot_sprawl(inventory: Inventory, hand_model: CostModel) -> None:
    out = _run("snapshot_sprawl", _ctx(inventory, hand_model))
    assert _findings(out) == {"snap-old", "snap-many", "snap-big", "off-expired-snap"}
    assert _insufficient(out) == {"snap-undated"}
    price = 0.05  # snapshot price per GB-month in the hand model
    held = {k: o.monthly_cost_held for k, o in out.items() if isinstance(o, Finding)}
    assert held["snap-old"] == pytest.approx(10 * price)  # only the old one
    assert held["snap-many"] == pytest.approx(3 * price)  # the two oldest beyond 3 (1 + 2 GB)
    assert held["snap-big"] == pytest.approx(150 * price)


def test_idle_on_metric_fixture(fixtures: Path, hand_model: CostModel) -> None:
    vms, batch, now = load_metric_fixture(fixtures / "idle_metrics.yaml")
    ctx = DetectionContext(vms, now, price_fleet(vms, [], hand_model), hand_model, metrics=batch)
    out = _run("idle", ctx)
    assert _findings(out) == {"idle"}
    assert _insufficient(out) == {"short-history", "gappy"}
    f = out["idle"]
    assert isinstance(f, Finding)
    assert f.evidence.measures["covered_days"] == 30
    assert f.evidence.measures["mean_cpu_mhz"] == pytest.approx(30.0)
    assert f.evidence.window_start is not None and f.evidence.window_end == now
    assert f.monthly_cost_held == pytest.approx(ctx.costs["idle"].total)
    assert f.confidence == pytest.approx(1.0)
    gappy = out["gappy"]
    assert isinstance(gappy, InsufficientData) and "10 covered days" in gappy.reason


def test_idle_needs_every_series(fixtures: Path, hand_model: CostModel) -> None:
    vms, batch, now = load_metric_fixture(fixtures / "idle_metrics.yaml")
    no_disk = replace(batch, disk_bytes_s=None)
    ctx = DetectionContext(vms, now, price_fleet(vms, [], hand_model), hand_model, metrics=no_disk)
    out = _run("idle", ctx)
    assert not _findings(out)
    assert _insufficient(out) == {vm.uuid for vm in vms}
    assert all("disk I/O" in o.reason for o in out.values() if isinstance(o, InsufficientData))


def test_idle_threshold_parameters(fixtures: Path, hand_model: CostModel) -> None:
    vms, batch, now = load_metric_fixture(fixtures / "idle_metrics.yaml")
    ctx = DetectionContext(vms, now, price_fleet(vms, [], hand_model), hand_model, metrics=batch)
    # busy 9 h a day: idle only if 60 % quiet samples per day are enough
    out = _run("idle", ctx, quiet_fraction=0.6)
    assert _findings(out) == {"idle", "busy-by-day"}


def test_idle_falls_back_to_cpu_percent(fixtures: Path, hand_model: CostModel) -> None:
    vms, batch, now = load_metric_fixture(fixtures / "idle_metrics.yaml")
    pct_only = replace(batch, cpu_mhz=None)
    ctx = DetectionContext(vms, now, price_fleet(vms, [], hand_model), hand_model, metrics=pct_only)
    out = _run("idle", ctx)
    assert _findings(out) == {"idle"}
    f = out["idle"]
    assert isinstance(f, Finding) and "mean_cpu_pct" in f.evidence.measures


def test_every_detector_describes_its_parameters() -> None:
    for name, cls in DETECTORS.items():
        assert cls.name == name and cls.description
        for p in cls.params:
            assert p.description and p.default >= p.minimum


def test_bad_detector_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="no parameter 'dayz'"):
        build_detectors({"powered_off": {"dayz": 3}})
    with pytest.raises(ConfigError, match="unknown detector"):
        build_detectors(enabled=("zombie",))
    with pytest.raises(ConfigError, match="at least 0"):
        build_detectors({"powered_off": {"days": -1}})


def test_categories_cover_every_detector() -> None:
    assert {cls.category for cls in DETECTORS.values()} == set(Category)
