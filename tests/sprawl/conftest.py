"""Fixtures of the sprawl tests: data files under tests/fixtures/sprawl."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.engines.costing import CostModel, load_cost_model

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
