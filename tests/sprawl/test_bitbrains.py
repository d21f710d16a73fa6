"""The engines on a few real Bitbrains Rnd July traces (VMs chosen for their shapes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corral.engines.costing import CostModel
from corral.engines.sprawl import Finding, InsufficientData, analyse, build_detectors
from corral.engines.sprawl.bitbrains import load_bitbrains, month_dir, read_vm
from corral.engines.sprawl.model import epoch_to_datetime
from corral.errors import NotFoundError


@pytest.fixture(scope="module")
def july(shared_data: Path) -> Path:
    return month_dir(shared_data / "bitbrains-rnd", "2013-7")


def test_read_one_trace(july: Path) -> None:
    vm, window = read_vm(july / "1.csv.gz")
    assert (vm.vcpus, vm.memory_mib) == (2, 8192)  # 8,388,608 KB is the most frequent size
    assert vm.disk_gb == 50.0  # not in the trace: the stated assumption
    assert np.all(np.diff(window.timestamps) == 300)
    assert window.cpu_mhz is not None and window.disk_bytes_s is not None
    assert np.nanmax(window.cpu_mhz) > 100
    assert "trace" in window.memory_mib


def test_first_files_through_detectors_and_rightsizing(
    shared_data: Path, default_model: CostModel
) -> None:
    fleet = load_bitbrains(shared_data / "bitbrains-rnd", limit=12)
    assert len(fleet.vms) == 12 and fleet.metrics.samples >= 8000
    now = epoch_to_datetime(fleet.metrics.end)
    result = analyse(
        fleet.vms,
        now,
        default_model,
        metrics=fleet.metrics,
        detectors=build_detectors(enabled=("idle",)),
    )
    decided = {f.subject for f in result.findings} | {i.subject for i in result.insufficient}
    idle = {f.subject for f in result.findings}
    # VM 2 runs at 0 MHz all month with a trickle of disk writes: idle by any measure
    assert "bitbrains-rnd-2" in idle
    # VM 1 peaks far above 100 MHz on most days: not idle
    assert "bitbrains-rnd-1" not in idle
    for f in result.findings:
        assert isinstance(f, Finding) and f.monthly_cost_held > 0
        assert f.evidence.measures["covered_days"] >= 14
    assert all(isinstance(i, InsufficientData) for i in result.insufficient)
    assert decided <= {vm.uuid for vm in fleet.vms}
    assert result.rightsizing and all(
        r.monthly_saving == r.monthly_saving for r in result.rightsizing
    )
    assert any(r.oversized for r in result.rightsizing)


def test_missing_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="--data-dir"):
        load_bitbrains(tmp_path)
