"""Small facts the simulator rests on: power curves, the regression, trace loading, bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corral.engines.simulation.lower_bound import bound_power_w
from corral.engines.simulation.model import planetlab_host_types
from corral.engines.simulation.planetlab import load_day
from corral.engines.simulation.policies import describe_policies, make_policy
from corral.engines.simulation.policies.iqr_mmt import IqrMmt
from corral.engines.simulation.policies.lr_mmt import regression_weights
from corral.engines.simulation.policies.mad_mmt import MadMmt
from corral.engines.simulation.power import power_at, power_table
from corral.errors import NotFoundError, ValidationError


def test_power_curve_is_specpower_and_linear_between_points() -> None:
    table = power_table(planetlab_host_types())
    u = np.array([0.0, 0.05, 1.0])
    g4 = power_at(table, u, np.zeros(3, dtype=np.int64))
    g5 = power_at(table, u, np.ones(3, dtype=np.int64))
    assert g4.tolist() == pytest.approx([86.0, 87.7, 117.0])
    assert g5.tolist() == pytest.approx([93.7, 95.35, 135.0])


def test_regression_weights_equal_least_squares_extrapolation() -> None:
    rng = np.random.default_rng(7)
    history = rng.random(10)  # most recent first
    chronological = history[::-1]
    slope, intercept = np.polyfit(np.arange(1, 11), chronological, 1)
    assert regression_weights() @ history == pytest.approx(intercept + slope * 11)


def test_iqr_takes_cloudsims_quartile_positions() -> None:
    data = np.arange(1.0, 13.0)[None, :]  # n = 12: positions round(3.25) - 1 and round(9.75) - 1
    assert IqrMmt().spread(data)[0] == pytest.approx(10.0 - 3.0)
    assert MadMmt().spread(np.array([[1.0, 2.0, 3.0, 4.0, 100.0]]))[0] == pytest.approx(1.0)


def test_bound_uses_fewest_g5_hosts() -> None:
    g5 = planetlab_host_types()[1]
    watts = bound_power_w(np.array([0.0, 5320.0, 5321.0]), g5)
    assert watts[0] == 0.0
    assert watts[1] == pytest.approx(135.0)
    assert watts[2] == pytest.approx(2 * (116.0 + 5.0 * (5321 / 10640 * 10 - 5)), rel=1e-6)


def test_order_file_must_match_the_day(planetlab_dir: Path, order_dir: Path) -> None:
    with pytest.raises(ValidationError, match="does not list"):
        load_day(planetlab_dir, "20110306", order_dir / "20110303.txt")


def test_missing_day_is_a_clear_error(planetlab_dir: Path) -> None:
    with pytest.raises(NotFoundError, match="not in"):
        load_day(planetlab_dir, "19990101")


def test_vm_types_follow_cloudsim_split(planetlab_dir: Path) -> None:
    workload = load_day(planetlab_dir, "20110306")
    n = workload.size
    quarter = -(-n // 4)
    assert workload.vm_type[0] == 0
    assert workload.vm_type[quarter] == 1
    assert workload.vm_type[-1] == 3
    assert workload.util.shape == (n, 289)
    assert np.array_equal(workload.util[:, 288], workload.util[:, 287])
    assert list(workload.names) == sorted(workload.names)


def test_policy_names_parse() -> None:
    assert make_policy("lr-mmt-1.2").name == "lr-mmt-1.2"
    assert make_policy("THR-MMT-0.8").name == "thr-mmt-0.8"
    with pytest.raises(NotFoundError):
        make_policy("nope")
    families = {row["policy"] for row in describe_policies()}
    assert {"lr-mmt", "thr-mmt", "iqr-mmt", "mad-mmt", "corral"} <= families
