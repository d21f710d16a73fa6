"""Paths of the planning fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

FLEETS = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"


@pytest.fixture(scope="session")
def fleets_dir() -> Path:
    return FLEETS
