"""Shared loaders for the simulator tests (data comes from the shared folder, never copied)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from corral.engines.simulation import make_policy, planetlab_fleet, planetlab_vm_types, simulate
from corral.engines.simulation.model import SimulationResult, Workload
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


@pytest.fixture(scope="session")
def run_20110303(day_20110303: Workload) -> Callable[[str], SimulationResult]:
    """Simulate a policy on 20110303 once per test session."""

    @cache
    def run(policy: str) -> SimulationResult:
        return simulate(planetlab_fleet(), planetlab_vm_types(), day_20110303, make_policy(policy))

    return run
