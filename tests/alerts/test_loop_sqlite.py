"""On SQLite two ``corral alerts run`` processes on one machine: one evaluates, the other
stands by on the file lock beside the database file and leads once the first is killed."""

from __future__ import annotations

import os
from pathlib import Path

from tests.alerts.test_loop import RULES, Loop, _write


def test_a_second_loop_on_one_sqlite_file_stands_by_until_the_first_dies(
    tmp_path: Path,
) -> None:
    (tmp_path / "alerts.yaml").write_text(RULES)
    _write(tmp_path / "metrics.duckdb", 50.0)
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'corral.db'}",
        "CORRAL_METRICS_URL": f"duckdb://{tmp_path / 'metrics.duckdb'}",
        "CORRAL_ALERT_RULES": str(tmp_path / "alerts.yaml"),
    }
    loops: list[Loop] = []
    try:
        first = Loop(env)
        loops.append(first)
        first.wait_for("evaluated: 0 condition(s)")
        second = Loop(env)
        loops.append(second)
        second.wait_for("standing by: another evaluator leads")
        first.kill()
        second.wait_for("evaluated: 0 condition(s)")  # its first round as the leader
    finally:
        for loop in loops:
            loop.kill()
    assert not any("standing by" in line for line in first.lines)
