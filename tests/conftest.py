"""Shared fixtures: where the public data lives, and the project root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_path() -> Path:
    """The shared data folder: $CORRAL_SHARED_DATA, else ../shared/data beside the repo."""
    env = os.environ.get("CORRAL_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_path()
    if not path.is_dir():
        pytest.fail(f"shared data folder {path} not found; set CORRAL_SHARED_DATA")
    return path
