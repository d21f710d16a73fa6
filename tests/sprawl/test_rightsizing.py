"""Right-sizing modes, headroom, memory sources and prices on the compact metric fixture."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from corral.engines.costing import CostModel, rate_card
from corral.engines.sprawl import (
    InsufficientData,
    RightSizeMode,
    RightSizing,
    RightSizingParams,
    right_size,
)

from .conftest import load_metric_fixture


def _sized(
    fixtures: Path, model: CostModel, **kw: object
) -> dict[str, RightSizing | InsufficientData]:
    vms, batch, _ = load_metric_fixture(fixtures / "idle_metrics.yaml")
    params = RightSizingParams(**kw)  # type: ignore[arg-type]
    return {
        (r.vm_uuid if isinstance(r, RightSizing) else r.subject): r
        for r in right_size(vms, batch, rate_card(model), params)
    }


@pytest.mark.parametrize(
    ("mode", "demand", "vcpus", "verdict"),
    [
        (RightSizeMode.conservative, 8.0, 10, "undersized"),  # the one 100 % hour, +20 %
        (RightSizeMode.moderate, 1.0, 2, "oversized"),  # p95 is the 12.5 % baseline
        (RightSizeMode.aggressive, 3.0, 4, "oversized"),  # typical daily peak 37.5 %
    ],
)
def test_cpu_modes(
    fixtures: Path,
    hand_model: CostModel,
    mode: RightSizeMode,
    demand: float,
    vcpus: int,
    verdict: str,
) -> None:
    r = _sized(fixtures, hand_model, mode=mode)["spiky"]
    assert isinstance(r, RightSizing) and r.cpu is not None
    assert (r.cpu.current, r.cpu.demand, r.cpu.recommended, r.cpu.verdict) == (
        8,
        demand,
        vcpus,
        verdict,
    )
    assert r.cpu.source == "cpu_pct"


def test_headroom_changes_the_size(fixtures: Path, hand_model: CostModel) -> None:
    r = _sized(fixtures, hand_model, mode=RightSizeMode.aggressive, headroom=0.0)["spiky"]
    assert isinstance(r, RightSizing) and r.cpu is not None and r.cpu.recommended == 3


def test_memory_prefers_balloon_then_rss_then_trace(fixtures: Path, hand_model: CostModel) -> None:
    out = _sized(fixtures, hand_model)
    idle, quiet = out["idle"], out["quiet-cpu-busy-disk"]
    assert isinstance(idle, RightSizing) and idle.memory is not None
    assert (idle.memory.source, idle.memory.demand, idle.memory.recommended) == (
        "balloon",
        1000,
        1536,
    )
    assert isinstance(quiet, RightSizing) and quiet.memory is not None
    assert quiet.memory.source == "trace"
    assert quiet.memory.recommended == 4096  # 3000 * 1.2 = 3600 -> 4096, right-sized
    assert quiet.memory.verdict == "right-sized"


def test_saving_is_priced_with_the_rate_card(fixtures: Path, hand_model: CostModel) -> None:
    r = _sized(fixtures, hand_model)["idle"]
    assert isinstance(r, RightSizing) and r.cpu is not None
    # 4 vCPU 8 GiB -> 1 vCPU 1.5 GiB at 5/vCPU and 1/GiB
    assert (r.cpu.recommended, r.oversized) == (1, True)
    assert r.monthly_saving == pytest.approx((4 * 5 + 8) - (1 * 5 + 1.5))


def test_insufficient_history_is_said_not_guessed(fixtures: Path, hand_model: CostModel) -> None:
    out = _sized(fixtures, hand_model)
    short = out["short-history"]
    assert isinstance(short, InsufficientData)
    assert "5 covered days" in short.reason and "memory" in short.reason
    gappy = out["gappy"]  # 10 covered days: enough for right-sizing (7), not for idle (14)
    assert isinstance(gappy, RightSizing) and gappy.memory is not None


def test_cpu_without_percent_uses_host_core_mhz(fixtures: Path, hand_model: CostModel) -> None:
    from corral.engines.sprawl import HostRecord

    vms, batch, _ = load_metric_fixture(fixtures / "idle_metrics.yaml")
    vms = [replace(vm, host="h") for vm in vms]
    mhz_only = replace(batch, cpu_pct=None)
    hosts = [HostRecord("h", 32, 1 << 19, core_mhz=2600.0)]
    out = right_size(vms, mhz_only, rate_card(hand_model), hosts=hosts)
    busy = next(r for r in out if isinstance(r, RightSizing) and r.vm_uuid == "busy-by-day")
    assert busy.cpu is not None and busy.cpu.source == "cpu_mhz/core_mhz"
    assert busy.cpu.demand == pytest.approx(2000 / 2600, abs=1e-3)
    no_host = right_size(vms, mhz_only, rate_card(hand_model))
    assert all(
        isinstance(r, RightSizing) and r.cpu is None
        for r in no_host
        if not isinstance(r, InsufficientData)
    )


def test_powered_off_vms_are_not_right_sized(fixtures: Path, hand_model: CostModel) -> None:
    from corral.engines.sprawl import VMState

    vms, batch, _ = load_metric_fixture(fixtures / "idle_metrics.yaml")
    off = [replace(vm, state=VMState.shutoff) for vm in vms]
    assert right_size(off, batch, rate_card(hand_model)) == []
