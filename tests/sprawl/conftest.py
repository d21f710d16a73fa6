"""Fixtures of the sprawl tests: data files under tests/fixtures/sprawl."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from corral.engines.costing import CostModel, load_cost_model
from corral.engines.sprawl import MetricBatch, MetricWindow, VMRecord, stack_windows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sprawl"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def hand_model() -> CostModel:
    return load_cost_model(FIXTURES / "costmodels" / "hand_checked.yaml")


@pytest.fixture(scope="session")
def default_model() -> CostModel:
    return load_cost_model()


def load_metric_fixture(path: Path) -> tuple[list[VMRecord], MetricBatch, datetime]:
    """Expand a compact metric fixture (24 hourly values per series) into records and a batch."""
    spec = yaml.safe_load(path.read_text())
    end = int(spec["end"].timestamp())
    spd, total_days = 288, int(spec["days"])
    start = end - total_days * 86400
    vms, windows = [], []
    for uuid, v in spec["vms"].items():
        vms.append(
            VMRecord(
                uuid, uuid, vcpus=v["vcpus"], memory_mib=v["memory_mib"], owner="o", purpose="p"
            )
        )
        days = int(v.get("days", total_days))
        ts = np.arange(end - days * 86400, end, 300, dtype=np.int64)
        series = {k: _expand(v[k], days, spd, v, k) for k in SERIES if k in v}
        memory = {
            src: _expand(vals, days, spd, v, src) for src, vals in v.get("memory", {}).items()
        }
        windows.append(MetricWindow(uuid, ts, memory_mib=memory, **series))
    batch = stack_windows(windows)
    assert batch.start == start or batch.start > start
    return vms, batch, datetime.fromtimestamp(end, tz=UTC)


SERIES = ("cpu_mhz", "cpu_pct", "disk_bytes_s", "net_bytes_s")


def _expand(hourly: list[float], days: int, spd: int, vm: dict[str, Any], name: str) -> np.ndarray:
    hours = np.array(hourly if len(hourly) == 24 else hourly * 24, dtype=np.float32)
    day = np.repeat(hours, spd // 24)
    out = np.tile(day, days).reshape(days, spd)
    for o in vm.get("overrides", []):
        if o["series"] == name:
            out[o["day"], o["hour"] * 12 : (o["hour"] + 1) * 12] = o["value"]
    for d in vm.get("missing_days", []):
        out[d, :] = np.nan
    return out.reshape(-1)
