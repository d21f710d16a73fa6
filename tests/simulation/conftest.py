"""Shared loaders for the simulator tests (data comes from the shared folder, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.engines.simulation.model import Workload
from corral.engines.simulation.planetlab import load_day


@pytest.fixture(scope="session")
def planetlab_dir(shared_data: Path) -> Path:
    return shared_data / "planetlab"


@pytest.fixture(scope="session")
def order_dir(shared_data: Path) -> Path:
    return shared_data / "published-results" / "cloudsim-vm-order"


@pytest.fixture(scope="session")
def day_20110303(planetlab_dir: Path, order_dir: Path) -> Workload:
    return load_day(planetlab_dir, "20110303", order_dir / "20110303.txt")
