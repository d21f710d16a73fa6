"""The HA manager's simulator on scenario files (``corral ha simulate``).

A scenario file (YAML) is read within safeload's bounds and played by the same
manager code that runs live (:mod:`corral.engines.ha_manager`). Its expected
event log sits beside it as ``NAME.log``; ``write_expected`` (re)writes it, to be
reviewed in the diff.
"""

from __future__ import annotations

from pathlib import Path

from corral import safeload
from corral.engines.ha_manager.scenario import Scenario, SimResult, scenario_from_mapping, simulate
from corral.errors import NotFoundError, ValidationError

__all__ = ["Scenario", "SimResult", "expected_log_path", "load_scenario", "run", "write_expected"]


def load_scenario(path: Path) -> Scenario:
    if not path.is_file():
        raise NotFoundError(f"Scenario file {path} does not exist; give the path of a YAML file.")
    return scenario_from_mapping(
        safeload.load_file(path, "scenario file", ValidationError), str(path)
    )


def run(path: Path) -> SimResult:
    """Play the scenario in ``path``."""
    return simulate(load_scenario(path))


def expected_log_path(path: Path) -> Path:
    return path.with_suffix(".log")


def write_expected(path: Path) -> Path:
    """Play the scenario and write its log as the expectation; returns the log's path."""
    target = expected_log_path(path)
    target.write_text(run(path).log(), encoding="utf-8")
    return target
